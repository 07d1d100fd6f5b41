"""Temperature scaling: probabilities that mean what they say.

Why: a fine-tuned classifier is over-confident (its 0.95 is right far less than 95 % of the
time). One scalar T, fitted on the validation split at the end of training by minimising the
negative log-likelihood of ``softmax(logits / T)``, fixes most of it without moving any label
(dividing all logits by one positive number keeps their order).

Where T lives (design): ``transformers.pipeline("audio-classification")`` applies a plain
softmax to the logits and reads no temperature from the config (checked in transformers 5.x,
``AudioClassificationPipeline.postprocess``). So the export **bakes T in**: the classifier's
output layer (``classifier.weight`` and ``classifier.bias``) is divided by T in
``model.safetensors``, and ``config.json`` records ``calibration_temperature: T`` and
``calibration_temperature_baked_in: true``. (Not ``temperature``: transformers 5 treats that
key as a text-generation setting and drops it when it loads a model config.) Every consumer of the folder (pipeline, ``ser predict``,
``ser serve``, :class:`~ser.inference.EmotionRecognizer`) then gets calibrated probabilities;
the raw ones are ``softmax(T * logits)``, which the recognizer gives with
``raw_probabilities=True`` (:func:`logit_scale`). A Lightning ``.ckpt`` of the run holds the raw
weights: its recognizer divides by the T recorded in ``RUN/model/config.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger(__name__)

N_BINS = 15
HEAD = ("classifier.weight", "classifier.bias")
T_KEY, BAKED_KEY = "calibration_temperature", "calibration_temperature_baked_in"  # config.json


# -- the numbers -------------------------------------------------------------------------------


def softmax(logits: np.ndarray, scale: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) * scale
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = np.asarray(probs, np.float64)[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def confidence_bins(probs: np.ndarray, labels: np.ndarray,
                    n_bins: int = N_BINS) -> list[tuple[float, float, float]]:
    """(mean confidence, accuracy, share of samples) of each non-empty equal-width confidence
    bin over (0, 1]: what the ECE sums and the reliability diagram draws."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    return [(float(conf[inside].mean()), float(correct[inside].mean()), float(inside.mean()))
            for inside in (bins == b for b in range(n_bins)) if inside.any()]


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error: |accuracy - mean confidence| per equal-width confidence bin
    (``n_bins`` over (0, 1]), weighted by the share of samples in the bin."""
    return float(sum(share * abs(accuracy - conf)
                     for conf, accuracy, share in confidence_bins(probs, labels, n_bins)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T > 0 minimising the NLL of ``softmax(logits / T)``: golden-section search on log T in
    [1/20, 20] (the NLL is convex in 1/T, so unimodal there)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("no labelled samples to fit a temperature on")

    def loss(log_t: float) -> float:
        return nll(softmax(logits, math.exp(-log_t)), labels)

    lo, hi = math.log(0.05), math.log(20.0)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = loss(b)
    return float(math.exp((lo + hi) / 2))


def scores(probs_raw: np.ndarray, probs_cal: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """ECE and NLL before (raw) and after (calibrated) temperature scaling on one data set."""
    return {"n": int(len(labels)), "ece_before": ece(probs_raw, labels),
            "ece_after": ece(probs_cal, labels), "nll_before": nll(probs_raw, labels),
            "nll_after": nll(probs_cal, labels),
            "labels_unchanged": bool((probs_raw.argmax(1) == probs_cal.argmax(1)).all())}


# -- the exported model ------------------------------------------------------------------------


def bake_temperature(model_dir: str | os.PathLike, temperature: float) -> None:
    """Divide the exported classifier layer by ``temperature`` and record it in config.json
    (see the module docstring). Refuses a folder already baked: T would be applied twice."""
    from safetensors.torch import load_file, save_file

    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    if config.get(BAKED_KEY):
        raise ValueError(f"{model_dir}: a temperature ({config.get(T_KEY)}) is already "
                         "baked into its weights")
    weights = model_dir / "model.safetensors"
    state = load_file(weights)
    missing = [k for k in HEAD if k not in state]
    if missing:
        raise ValueError(f"{weights}: no {missing}; cannot bake a temperature into this head")
    for key in HEAD:
        state[key] = (state[key].double() / temperature).to(state[key].dtype).contiguous()
    save_file(state, weights, metadata={"format": "pt"})
    config[T_KEY] = float(temperature)
    config[BAKED_KEY] = True
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    from ser.checksums import write_checksums

    write_checksums(model_dir)  # the weights changed: record their new digest
    log.info("temperature %.4f baked into %s (classifier layer / T)", temperature, weights)


def temperature_of(config: Any, source: str | os.PathLike | None = None) -> tuple[float, bool]:
    """(T, baked in) of a loaded model: from its config, else, for a Lightning checkpoint of a
    training run (``RUN/checkpoints/x.ckpt``), from ``RUN/model/config.json`` (not baked into
    the checkpoint's weights). (1.0, False) when none is known."""
    t = getattr(config, T_KEY, None)
    if t is not None:
        return float(t), bool(getattr(config, BAKED_KEY, False))
    if source:
        path = Path(source).expanduser()
        if path.suffix == ".ckpt" and path.parent.name == "checkpoints":
            exported = path.parent.parent / "model" / "config.json"
            if exported.is_file():
                t = json.loads(exported.read_text()).get(T_KEY)
                if t is not None:
                    return float(t), False
    return 1.0, False


def logit_scale(config: Any, source: str | os.PathLike | None = None, *,
                raw: bool = False) -> float:
    """What the recognizer multiplies the model's logits by before the softmax: calibrated
    (default) or raw probabilities, whether T is baked into the weights or not."""
    t, baked = temperature_of(config, source)
    if raw:
        return t if baked else 1.0
    return 1.0 if baked else 1.0 / t


# -- at the end of training --------------------------------------------------------------------


def logits_of(module: Any) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) of a LightningModule's last test pass, labelled samples only."""
    import torch

    outputs = getattr(module, "test_outputs", None) or []
    if not outputs:
        return np.zeros((0, 0)), np.zeros(0, int)
    logits = torch.cat([o["logits"] for o in outputs]).float().cpu().numpy()
    labels = torch.cat([o["labels"] for o in outputs]).cpu().numpy()
    known = labels >= 0
    return logits[known], labels[known]


def calibrate_export(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], model_dir: Path,
                     figure: Path, fit_on: str = "validation") -> dict[str, Any]:
    """Fit T on ``sets[fit_on]``, bake it into ``model_dir``, score every set before and after
    and draw the reliability diagram; returns metrics.json's ``calibration`` block."""
    from ser.figures.calibration import reliability_diagram

    logits, labels = sets.get(fit_on, (np.zeros((0, 0)), np.zeros(0)))
    if len(labels) == 0:
        log.warning("no labelled %s samples: the exported probabilities are not calibrated",
                    fit_on)
        return {"temperature": None, "fitted_on": None,
                "note": f"not calibrated: no labelled {fit_on} samples"}
    t = fit_temperature(logits, labels)
    bake_temperature(model_dir, t)
    block: dict[str, Any] = {"temperature": t, "fitted_on": fit_on, "bins": N_BINS,
                             "baked_into": str(model_dir)}
    if not 0.051 < t < 19.9:
        block["note"] = (f"T = {t:.3g} is at the search bound [0.05, 20]: the validation "
                         "predictions carry (almost) no information; probabilities ~uniform")
        log.warning("%s", block["note"])
    drawn = {}
    for name, (lg, lb) in sets.items():
        if len(lb):
            raw, cal = softmax(lg), softmax(lg, 1.0 / t)
            block[name] = scores(raw, cal, lb)
            drawn[name] = (raw, cal, lb)
    block["figure"] = str(reliability_diagram(drawn, figure,
                                              f"Reliability, temperature {t:.3f} fitted on "
                                              f"{fit_on}"))
    v = block[fit_on]
    log.info("temperature %.3f (fitted on %s, n=%d): ECE %.3f -> %.3f, NLL %.3f -> %.3f", t,
             fit_on, v["n"], v["ece_before"], v["ece_after"], v["nll_before"], v["nll_after"])
    return block


# -- in an evaluation --------------------------------------------------------------------------


def evaluation_calibration(table: Any, temperature: float, figure: Path,
                           name: str) -> dict[str, Any] | None:
    """ECE/NLL of an evaluation's predictions (calibrated ``p_*`` columns) and of the raw
    probabilities they came from, ``softmax(T * log p)`` (exact for a single forward pass; for
    a long file's window mean it is an approximation). None without true labels."""
    from ser.figures.calibration import reliability_diagram
    from ser.labels import LABEL2ID, LABELS

    if "true" not in table.columns:
        return None
    rows = table[table["pred"].isin(LABELS) & table["true"].isin(LABELS)]  # failed rows: pred ""
    if rows.empty:
        return None
    cal = rows[[f"p_{k}" for k in LABELS]].to_numpy(np.float64)
    cal = cal / cal.sum(axis=1, keepdims=True)
    labels = rows["true"].map(LABEL2ID).to_numpy(int)
    raw = softmax(np.log(np.clip(cal, 1e-30, None)), temperature)
    block = {"temperature": temperature, "bins": N_BINS, **scores(raw, cal, labels)}
    block["figure"] = str(reliability_diagram(
        {name: (raw, cal, labels)}, figure, f"Reliability, temperature {temperature:.3f}"))
    return block
