"""Temperature scaling: an over-confident model gets a lower validation ECE, the same labels, and
its exported folder gives calibrated probabilities everywhere (pipeline, recognizer, .ckpt)."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from test_inference import RATE, sharpened_classifier, speechlike

from ser.calibration import (
    calibrate_export,
    ece,
    fit_temperature,
    nll,
    softmax,
)
from ser.inference import EmotionRecognizer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_ece_of_known_cases():
    labels = np.array([0, 0, 1, 1])
    certain_right = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert ece(certain_right, labels) == pytest.approx(0.0)
    certain_half_wrong = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert ece(certain_half_wrong, labels) == pytest.approx(0.5)


def test_temperature_undoes_over_confidence_and_keeps_labels():
    rng = np.random.default_rng(0)
    n, k = 3000, 6
    true_logits = rng.normal(size=(n, k)) * 1.5
    labels = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])  # calibrated at T=1
    over = true_logits * 4.0  # the same model, made over-confident on purpose
    t = fit_temperature(over, labels)
    assert t == pytest.approx(4.0, rel=0.15)
    raw, cal = softmax(over), softmax(over, 1.0 / t)
    assert ece(cal, labels) < 0.5 * ece(raw, labels)
    assert nll(cal, labels) < nll(raw, labels)
    assert (raw.argmax(1) == cal.argmax(1)).all()


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory) -> dict:
    """A tiny model made over-confident (head x 4) as a training run: model/ and
    checkpoints/last.ckpt. Validation: 20 labels per clip drawn from its probabilities at
    temperature 4 (what a calibrated model would say), so the exported model is over-confident
    by a known factor. Then calibrate_export on that folder."""
    run = tmp_path_factory.mktemp("calibrated-run")
    module = sharpened_classifier()
    with torch.no_grad():
        module.model.classifier.weight.mul_(4.0)
        module.model.classifier.bias.mul_(4.0)
    module.export(run / "model")
    trainer = L.Trainer(max_epochs=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(module)
    trainer.save_checkpoint(run / "checkpoints" / "last.ckpt")
    clips = [speechlike(0.8, seed=s) for s in range(48)]
    raw_rec = EmotionRecognizer.from_pretrained(run / "model", device="cpu")
    assert raw_rec.temperature == 1.0  # nothing fitted yet
    raw = raw_rec.probabilities(clips)
    assert raw.min() > 0  # no underflow: log(raw) is the logits up to a constant per row
    logits = np.log(raw)
    rng = np.random.default_rng(0)
    truth = softmax(logits, 1 / 4.0)
    labels = np.array([rng.choice(6, p=p) for p in truth for _ in range(20)])
    block = calibrate_export({"validation": (np.repeat(logits, 20, axis=0), labels)}, run / "model",
                             run / "figures" / "reliability.png")
    return {"run": run, "clips": clips, "raw": raw, "labels": labels, "block": block}


def test_calibration_lowers_validation_ece_and_keeps_labels(calibrated_run):
    block = calibrated_run["block"]
    v = block["validation"]
    assert block["temperature"] == pytest.approx(4.0, rel=0.3)
    assert v["ece_after"] < 0.5 * v["ece_before"]
    assert v["nll_after"] < v["nll_before"]
    assert v["labels_unchanged"]
    assert (calibrated_run["run"] / "figures" / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_exported_folder_gives_calibrated_probabilities_raw_on_request(calibrated_run):
    run, t = calibrated_run["run"], calibrated_run["block"]["temperature"]
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["calibration_temperature"] == pytest.approx(t)
    assert config["calibration_temperature_baked_in"] is True
    expected = softmax(np.log(calibrated_run["raw"]), 1.0 / t)
    cal = EmotionRecognizer.from_pretrained(run / "model", device="cpu")
    got = cal.probabilities(calibrated_run["clips"])
    np.testing.assert_allclose(got, expected, atol=2e-4)
    assert (got.argmax(1) == calibrated_run["raw"].argmax(1)).all()
    raw = EmotionRecognizer.from_pretrained(run / "model", device="cpu", raw_probabilities=True)
    np.testing.assert_allclose(raw.probabilities(calibrated_run["clips"]), calibrated_run["raw"],
                               atol=2e-4)
    # the run's Lightning checkpoint holds the raw weights: T comes from RUN/model/config.json
    ckpt = EmotionRecognizer.from_pretrained(run / "checkpoints" / "last.ckpt", device="cpu")
    np.testing.assert_allclose(ckpt.probabilities(calibrated_run["clips"]), expected, atol=2e-4)


def test_transformers_pipeline_returns_the_calibrated_probabilities(calibrated_run):
    from transformers import pipeline

    run, t = calibrated_run["run"], calibrated_run["block"]["temperature"]
    classify = pipeline("audio-classification", model=str(run / "model"), device="cpu")
    expected = softmax(np.log(calibrated_run["raw"][:3]), 1.0 / t)
    for clip, want in zip(calibrated_run["clips"][:3], expected):
        top = classify({"raw": clip, "sampling_rate": RATE}, top_k=1)[0]
        assert top["score"] == pytest.approx(float(want.max()), abs=1e-3)


def test_baking_twice_is_refused(calibrated_run):
    from ser.calibration import bake_temperature

    with pytest.raises(ValueError, match="already baked"):
        bake_temperature(calibrated_run["run"] / "model", 2.0)


def test_ser_predict_gives_calibrated_probabilities_and_raw_ones_on_request(calibrated_run,
                                                                           tmp_path):
    import pandas as pd
    import soundfile as sf

    from ser.cli import main
    from ser.labels import LABELS

    clip = tmp_path / "clip.wav"
    sf.write(clip, calibrated_run["clips"][0], RATE, subtype="FLOAT")  # the same samples
    t = calibrated_run["block"]["temperature"]
    columns = [f"p_{k}" for k in LABELS]
    got = {}
    for name, flags in (("calibrated", []), ("raw", ["--raw-probabilities"])):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--model", str(calibrated_run["run"] / "model"), str(clip),
                     "--out", str(out), "--workers", "0", *flags]) == 0
        got[name] = pd.read_csv(out)[columns].to_numpy()[0]
    np.testing.assert_allclose(got["raw"], calibrated_run["raw"][0], atol=2e-4)
    np.testing.assert_allclose(got["calibrated"],
                               softmax(np.log(calibrated_run["raw"][:1]), 1.0 / t)[0], atol=2e-4)
