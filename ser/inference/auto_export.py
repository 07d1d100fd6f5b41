"""The ONNX export at the end of training, so that ``ser predict --model RUN/model`` with no
flags runs the fastest path this toolkit has measured on the CPU (ONNX Runtime int8: see
``bench/BENCHMARKS.md``, issue 17) instead of PyTorch fp32.

Why int8 is checked here and not only at export: ``ser export``'s parity check runs a few
synthetic clips, which says the graph is right but not whether int8's ~1e-3 shifts of the
probabilities swap the top label of *this* model on real speech. At the end of training the
validation clips are at hand, so the int8 model's top labels are compared with the fp32 ONNX
model's (itself equal to PyTorch within the export's 1e-3 parity) on up to ``check_clips`` of
them; the first of them also calibrate the int8 convolutions (:mod:`ser.inference.onnx_int8`).
int8 is kept only when they agree on at least ``min_int8_agreement`` (99 %) of the clips;
otherwise ``model.int8.onnx`` is removed, the log says why, and the default path is fp32 ONNX.
Every figure goes to ``metrics.json`` under ``onnx``.

Without onnxruntime (the ``onnx`` extra) nothing is exported: the log says so with the install
hint, ``metrics.json`` records why, and ``ser predict`` runs the PyTorch weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser.checksums import write_checksums
from ser.inference.runtime import ONNX_EXTRA_HINT, ONNX_FILES, onnxruntime_available

log = logging.getLogger(__name__)

MIN_INT8_AGREEMENT = 0.99
CHECK_CLIPS = 300


def top_labels(model_dir: Path, clips: Sequence[tuple[Any, int] | None], *,
               precision: str) -> list[str | None]:
    """The top label of each decoded clip by the ONNX model of ``precision`` (None where the
    clip could not be decoded)."""
    from ser.inference.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer.from_pretrained(model_dir, runtime="onnx", precision=precision)
    present = [c for c in clips if c is not None]
    labels = iter(r.prediction.label if r.ok else None
                  for r in recognizer.predict_many(present, num_workers=0))
    return [next(labels) if c is not None else None for c in clips]


def decode_clips(files: Sequence[str]) -> list[tuple[Any, int] | None]:
    """Each file decoded at the model rate, None where it cannot be (counted in no figure)."""
    from ser.audio import TARGET_SR, AudioError, load_audio

    clips: list[tuple[Any, int] | None] = []
    for f in files:
        try:
            clips.append((load_audio(f), TARGET_SR))
        except AudioError:
            clips.append(None)
    return clips


def int8_agreement(model_dir: Path, clips: Sequence[tuple[Any, int] | None]) -> dict[str, Any]:
    """How often the int8 model's top label equals the fp32 model's on the decoded ``clips``."""
    fp32 = top_labels(model_dir, clips, precision="fp32")
    int8 = top_labels(model_dir, clips, precision="auto")  # the int8 file, as ser predict runs
    scored = [(a, b) for a, b in zip(fp32, int8) if a is not None and b is not None]
    agree = sum(a == b for a, b in scored)
    return {"clips": len(scored), "agree": agree,
            "fraction": agree / len(scored) if scored else None}


def export_trained_model(model_dir: str | Path, check_files: Sequence[str], *,
                         enabled: bool = True, int8: bool = True,
                         min_int8_agreement: float = MIN_INT8_AGREEMENT,
                         check_clips: int = CHECK_CLIPS, check_set: str = "validation"
                         ) -> dict[str, Any]:
    """Export ``model_dir`` to ONNX in place (fp32, and int8 if it agrees); metrics.json's
    ``onnx`` block. ``check_files``: audio of the ``check_set`` split, the first
    ``check_clips`` of which judge int8."""
    model_dir = Path(model_dir)
    if not enabled:
        return {"exported": False, "reason": "disabled (onnx_export.enabled=false)"}
    if not onnxruntime_available():
        log.warning("model not exported to ONNX: onnxruntime is not installed (%s); "
                    "ser predict --model %s will run the PyTorch weights, in fp32",
                    ONNX_EXTRA_HINT, model_dir)
        return {"exported": False, "reason": f"onnxruntime not installed: {ONNX_EXTRA_HINT}"}
    from ser.inference.export import ExportError, export_onnx
    from ser.inference.onnx_int8 import CALIBRATION_CLIPS

    started = time.perf_counter()
    # Each clip decoded once: the int8 convolutions are calibrated on the first ones, and all
    # of them judge int8 against fp32 (ser.inference.onnx_int8).
    clips = decode_clips(list(check_files)[:check_clips]) if int8 else []
    calibration = [c[0] for c in clips if c is not None][:CALIBRATION_CLIPS]
    try:
        result = export_onnx(model_dir, model_dir, int8=int8, calibration=calibration or None,
                             calibration_source=f"{len(calibration)} {check_set} clips")
    except ExportError as exc:
        log.warning("model not exported to ONNX: %s; ser predict will run the PyTorch weights",
                    exc)
        return {"exported": False, "reason": str(exc)}
    block: dict[str, Any] = {
        "exported": True, "files": {p: f.name for p, f in result.files.items()},
        "parity": result.parity}
    if int8:
        agreement = {"set": check_set, **int8_agreement(model_dir, clips)}
        fraction = agreement["fraction"]
        kept = fraction is not None and fraction >= min_int8_agreement
        agreement.update(min_fraction=min_int8_agreement, kept=kept)
        block["int8_agreement"] = agreement
        if kept:
            log.info("int8 ONNX model kept: top labels agree with fp32 on %d of %d %s clips",
                     agreement["agree"], agreement["clips"], check_set)
        else:
            why = ("no clip to check it on" if fraction is None else
                   f"top labels agree with fp32 on {agreement['agree']} of {agreement['clips']} "
                   f"{check_set} clips ({fraction:.1%} < {min_int8_agreement:.0%})")
            log.warning("int8 ONNX model removed: %s; ser predict runs the fp32 ONNX model", why)
            (model_dir / ONNX_FILES["int8"]).unlink(missing_ok=True)
            del block["files"]["int8"]
            write_checksums(model_dir)
    block["default"] = block["files"].get("int8") or block["files"]["fp32"]
    block["seconds"] = round(time.perf_counter() - started, 1)
    log.info("ONNX export in %s (%.0f s): ser predict --model %s runs %s", model_dir,
             block["seconds"], model_dir, block["default"])
    return block


__all__ = ["decode_clips", "export_trained_model", "int8_agreement"]
