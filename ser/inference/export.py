"""``ser export --model PATH --onnx OUT [--int8]``: an ONNX model that ONNX Runtime runs.

OUT is a folder; it gets

* ``model.onnx``: ``input_values`` [batch, time] float32 (normalised audio, as the recognizer
  prepares it) and, for layer-norm encoders, ``attention_mask`` [batch, time] int64, to
  ``logits`` [batch, 6]; batch and time are dynamic axes;
* ``model.int8.onnx`` with ``--int8``: the same with int8 MatMuls (dynamic) and, given
  ``calibration`` audio, convolutions (static, their ranges measured on it), see
  :mod:`ser.inference.onnx_int8`;
* ``config.json`` (the six labels, the architecture) and ``preprocessor_config.json`` (rate,
  normalisation), so the folder is a model path of its own;
* ``onnx_export.json``: what was exported from where, and the parity check.

Parity check: a few seeded speech-like clips of several lengths run through PyTorch (the plain
model, fp32) and through ONNX Runtime, one at a time and, with a mask, as one padded batch. The
largest logit difference is printed and stored; fp32 beyond :data:`PARITY_TOLERANCE` fails the
export. For int8 the label agreement with PyTorch fp32 is reported (a warning if any differs):
int8 moves probabilities by ~1e-3, which can swap two close classes.

The exporter is ``torch.onnx.export``; ``exporter="dynamo"`` (torch.export, opset 18) or
``"legacy"`` (TorchScript tracing, opset 17). Both were checked on Wav2Vec2 with dynamic axes
(see ``bench/BENCHMARKS.md``); the legacy one is the default because it exports the same graph
in seconds where the dynamo one took minutes on a base-size model on a 2-core machine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from ser.backbones import uses_attention_mask
from ser.checksums import write_checksums
from ser.data.batching import collate_clips
from ser.forward import ForwardPath, model_logits
from ser.inference.loading import LoadedModel, load_for_inference
from ser.inference.onnx_int8 import CALIBRATION_CLIPS, quantize_int8
from ser.inference.runtime import ONNX_EXTRA_HINT, ONNX_FILES

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-3
PARITY_SECONDS = (0.7, 1.9, 3.3)
EXPORTERS = {"legacy": 17, "dynamo": 18}  # exporter -> opset
DEFAULT_EXPORTER = "legacy"


class ExportError(RuntimeError):
    """The export ran but its result cannot be trusted (parity failed), or cannot run."""


class _Logits(nn.Module):
    """The classifier with tensors in and logits out (no ModelOutput), as ONNX needs."""

    def __init__(self, model: PreTrainedModel, with_mask: bool) -> None:
        super().__init__()
        self.model = model
        self.with_mask = with_mask

    def forward(self, input_values: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_values=input_values,
                          attention_mask=attention_mask if self.with_mask else None).logits


@dataclass
class ExportResult:
    folder: Path
    files: dict[str, Path]
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    int8: dict[str, Any] | None = None  # what the int8 file runs in int8, and how


def _example(with_mask: bool) -> tuple[torch.Tensor, ...]:
    values = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    if not with_mask:
        return (values,)
    mask = torch.ones(2, 16000, dtype=torch.long)
    mask[1, 12000:] = 0
    return values, mask


def export_graph(model: PreTrainedModel, file: Path, *, exporter: str = DEFAULT_EXPORTER) -> None:
    """Write ``model`` (fp32, CPU, eval) to ``file`` with dynamic batch and time axes."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {sorted(EXPORTERS)}, got {exporter!r}")
    with_mask = uses_attention_mask(model.config)
    wrapper = _Logits(model.eval(), with_mask).eval()
    attention = model.config._attn_implementation
    # Eager attention exports as matmul, additive mask, softmax. Hugging Face's default (SDPA)
    # exports with a NaN guard (IsNaN and Where over every attention matrix) and the mask turned
    # into a bias again in every layer: 9 % of ONNX Runtime's time on the XLSR-large
    # architecture, and the int8 model ran 1.28x faster without them (bench/BENCHMARKS.md).
    model.set_attn_implementation("eager")
    try:
        _export(wrapper, file, with_mask, exporter)
    finally:
        model.set_attn_implementation(attention)


def _export(wrapper: nn.Module, file: Path, with_mask: bool, exporter: str) -> None:
    names = ["input_values", "attention_mask"] if with_mask else ["input_values"]
    example = _example(with_mask)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python branches on shapes
        if exporter == "dynamo":
            batch, time_axis = torch.export.Dim("batch", max=1024), torch.export.Dim("time",
                                                                                     min=400)
            program = torch.onnx.export(
                wrapper, example, dynamo=True, input_names=names, output_names=["logits"],
                dynamic_shapes={n: {0: batch, 1: time_axis} for n in names},
                opset_version=EXPORTERS[exporter], verbose=False)
            program.save(str(file))
        else:
            torch.onnx.export(
                wrapper, example, str(file), dynamo=False, input_names=names,
                output_names=["logits"], opset_version=EXPORTERS[exporter],
                dynamic_axes={**{n: {0: "batch", 1: "time"} for n in names},
                              "logits": {0: "batch"}})


def parity_clips(sampling_rate: int, seconds: tuple[float, ...] = PARITY_SECONDS
                 ) -> list[np.ndarray]:
    """Seeded speech-like clips: a pitched buzz and noise under a syllable-rate envelope."""
    clips = []
    for i, length in enumerate(seconds):
        rng = np.random.default_rng(1000 + i)
        t = np.arange(int(length * sampling_rate)) / sampling_rate
        buzz = sum(np.sin(2 * np.pi * rng.uniform(90, 250) * h * t) / h for h in range(1, 5))
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 6) * t), 0.05, None)
        clips.append((envelope * (buzz + rng.normal(0, 0.3, t.size))).astype(np.float32))
    return clips


def _torch_path(model: PreTrainedModel, normalize: bool) -> ForwardPath:
    """The one forward path over the plain PyTorch model, fp32 (the export's reference)."""
    return ForwardPath(partial(model_logits, model), uses_mask=uses_attention_mask(model.config),
                       normalize=normalize)


def calibration_feeds(model: PreTrainedModel, clips: Sequence[np.ndarray], *,
                      normalize: bool = True) -> list[dict[str, np.ndarray]]:
    """ONNX inputs of each clip alone, prepared by the one forward path (:mod:`ser.forward`)."""
    path = _torch_path(model, normalize)
    feeds = []
    for clip in clips:
        values = torch.from_numpy(np.asarray(clip, dtype=np.float32))[None]
        inputs = path.inputs(values, torch.ones_like(values, dtype=torch.long))
        feed = {"input_values": inputs.values.numpy()}
        if inputs.attention_mask is not None:
            feed["attention_mask"] = inputs.attention_mask.numpy()
        feeds.append(feed)
    return feeds


def check_parity(model: PreTrainedModel, file: Path, clips: list[np.ndarray], *,
                 normalize: bool = True, sampling_rate: int = 16000) -> dict[str, Any]:
    """Logits of PyTorch fp32 and of ONNX Runtime on ``clips``, prepared by the one forward
    path (:mod:`ser.forward`): one at a time, and as one padded batch where the model takes a
    mask. Returns the largest difference and the label agreement."""
    from ser.inference.onnx_runtime import OnnxRuntime

    runtime = OnnxRuntime(file, model.config)
    path = _torch_path(model, normalize)
    groups = [[c] for c in clips] + ([clips] if path.uses_mask and len(clips) > 1 else [])
    worst, agree, total, scale = 0.0, 0, 0, 0.0
    for group in groups:
        batch = collate_clips([{"input_values": c, "label": -1, "index": i, "error": None}
                               for i, c in enumerate(group)])
        inputs = path.inputs(batch["input_values"], batch["attention_mask"])
        with torch.inference_mode():
            reference = path.logits_of(inputs).numpy()
        got = runtime.logits(inputs).numpy()
        worst = max(worst, float(np.abs(got - reference).max()))
        scale = max(scale, float(np.abs(reference).max()))
        agree += int((got.argmax(1) == reference.argmax(1)).sum())
        total += len(group)
    return {"max_logit_diff": worst, "max_abs_logit": scale, "labels_agree": f"{agree}/{total}",
            "labels_agree_all": agree == total, "checks": total,
            "clip_seconds": [round(c.size / sampling_rate, 3) for c in clips]}


def export_onnx(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    int8: bool = False,
    backbone: str | None = None,
    trust_checkpoint: bool = False,
    exporter: str = DEFAULT_EXPORTER,
    tolerance: float = PARITY_TOLERANCE,
    calibration: Sequence[np.ndarray] | None = None,
    calibration_source: str = "",
) -> ExportResult:
    """Export ``model_path`` (any model path ``ser predict`` takes) to the folder ``out``.

    ``calibration``: mono clips at the model's rate whose ranges the int8 convolutions are
    calibrated on (the first :data:`~ser.inference.onnx_int8.CALIBRATION_CLIPS`), described by
    ``calibration_source`` in ``onnx_export.json``; None: the convolutions stay fp32 (ranges
    from made-up clips cost labels on real speech, see :mod:`ser.inference.onnx_int8`)."""
    try:
        import onnxruntime  # noqa: F401  - the parity check and --int8 need it
    except ImportError as exc:
        raise ExportError(f"ser export --onnx needs onnxruntime and onnx ({exc}): "
                          f"{ONNX_EXTRA_HINT}") from exc
    folder = Path(out).expanduser()
    if folder.suffix == ".onnx":
        raise ExportError(f"--onnx takes a folder (it gets {', '.join(ONNX_FILES.values())}, "
                          f"config.json and preprocessor_config.json), not {folder}")
    loaded: LoadedModel = load_for_inference(model_path, backbone=backbone,
                                             trust_checkpoint=trust_checkpoint)
    model = loaded.model.float().eval()
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / ONNX_FILES["fp32"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
        staged = Path(tmp) / fp32.name
        export_graph(model, staged, exporter=exporter)
        log.info("exported %s in %.0f s", staged.name, time.perf_counter() - started)
        rate = int(getattr(loaded.feature_extractor, "sampling_rate", 16000))
        normalize = bool(getattr(loaded.feature_extractor, "do_normalize", True))
        clips = parity_clips(rate)
        parity = {fp32.name: check_parity(model, staged, clips, normalize=normalize,
                                          sampling_rate=rate)}
        diff = parity[fp32.name]["max_logit_diff"]
        limit = tolerance * max(1.0, parity[fp32.name]["max_abs_logit"])
        if not diff <= limit:
            raise ExportError(f"{model_path}: the ONNX model's logits differ from PyTorch's by "
                              f"{diff:.3g} (limit {limit:.3g}); not written")
        files = {"fp32": fp32}
        staged_int8 = Path(tmp) / ONNX_FILES["int8"]
        if int8:
            # fp32 convolutions for group-norm encoders and without calibration audio
            # (ser.inference.onnx_int8 says why)
            layer_norm = uses_attention_mask(model.config)
            feeds = (calibration_feeds(model, calibration[:CALIBRATION_CLIPS], normalize=normalize)
                     if calibration and layer_norm else None)
            why_fp32 = ("a group-norm feature encoder, where static int8 moved the logits too far"
                        if not layer_norm else "no calibration audio (ser export --calibrate "
                        "AUDIO runs them in static int8)")
            int8_record = quantize_int8(staged, staged_int8, feeds, why_fp32)
            if feeds:
                int8_record["calibration"] = calibration_source or f"{len(feeds)} clip(s)"
            parity[staged_int8.name] = check_parity(model, staged_int8, clips,
                                                    normalize=normalize, sampling_rate=rate)
            if not parity[staged_int8.name]["labels_agree_all"]:
                log.warning("int8: labels agree with PyTorch fp32 on %s parity checks only",
                            parity[staged_int8.name]["labels_agree"])
            files["int8"] = folder / ONNX_FILES["int8"]
        for precision, target in files.items():
            shutil.move(str(Path(tmp) / target.name), target)
        for extra in (p for p in Path(tmp).iterdir() if p.name.endswith(".data")):
            shutil.move(str(extra), folder / extra.name)  # external weights of a >2 GB model
    if not int8 and (folder / ONNX_FILES["int8"]).exists():
        (folder / ONNX_FILES["int8"]).unlink()  # an int8 file of an older export would win
        log.info("removed the int8 model of an earlier export from %s", folder)
    model.config.save_pretrained(folder)
    loaded.feature_extractor.save_pretrained(folder)
    record = {
        "source": str(model_path), "exporter": exporter, "opset": EXPORTERS[exporter],
        "torch": torch.__version__, "onnxruntime": _version("onnxruntime"),
        "onnx": _version("onnx"), "inputs": ["input_values", "attention_mask"]
        if uses_attention_mask(model.config) else ["input_values"],
        "files": {p: t.name for p, t in files.items()}, "parity": parity,
        "tolerance": tolerance, "seconds": round(time.perf_counter() - started, 1),
    }
    if int8:
        record["int8"] = int8_record
    (folder / "onnx_export.json").write_text(json.dumps(record, indent=2) + "\n")
    write_checksums(folder)  # loading the ONNX file verifies it (ser.checksums)
    return ExportResult(folder, files, parity, record.get("int8"))


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
