"""Runtimes: what turns one prepared batch into logits. Preparing it (normalisation, the
attention mask) and the probabilities are :class:`ser.forward.ForwardPath`'s, the path training
takes too; everything around it (decoding, batching, windows, per-file errors) is
:class:`~ser.inference.recognizer.EmotionRecognizer`'s. A runtime is only "logits of a batch",
and its speed-ups are its options.

* :class:`TorchRuntime`: the Hugging Face model in PyTorch (fp32, bf16 autocast, or int8 Linear
  layers), with the time-major feature encoder of :mod:`ser.inference.speedups`.
* :class:`ser.inference.onnx_runtime.OnnxRuntime`: a model exported by ``ser export --onnx``,
  run by ONNX Runtime (fp32 or int8 MatMuls); needs the optional ``onnx`` extra.

How ``runtime="auto"`` chooses is :func:`choose_runtime`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Protocol

import torch
from transformers import PretrainedConfig, PreTrainedModel

from ser.forward import ModelInputs, model_logits
from ser.inference.loaded_model import ModelLoadError
from ser.inference.precision import PRECISIONS, autocast_dtype
from ser.inference.speedups import clip_lengths, quantize_int8, use_time_major_encoder

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx")
# File names `ser export --onnx` writes into a model folder, by precision.
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
ONNX_EXTRA_HINT = "pip install 'ser[onnx]' (onnxruntime, onnx, onnxscript)"


class Runtime(Protocol):
    """Logits [B, num_labels] (float32, CPU) of prepared inputs (CPU; see
    :class:`ser.forward.ModelInputs`). Rows are cut to the longest clip already; for a model
    that takes no attention mask every row has the same length, unless the runtime says
    ``cuts_rows = True`` (it runs each row alone, cut to its clip: the ONNX runtime)."""

    name: str
    config: PretrainedConfig
    device: torch.device
    description: str
    cuts_rows: bool

    def logits(self, inputs: ModelInputs) -> torch.Tensor: ...


class TorchRuntime:
    """A Hugging Face model run by PyTorch. Takes the model over: eval mode, ``device``, a
    patched feature encoder (``fast_encoder``), int8 Linear layers in place (``quantize``)."""

    name = "torch"
    cuts_rows = False  # one padded batch, one call

    def __init__(self, model: PreTrainedModel, *, device: torch.device, precision: str = "auto",
                 quantize: bool = False, fast_encoder: bool = True) -> None:
        if quantize and device.type != "cpu":
            raise ValueError("int8 quantization (quantize=True) runs on the CPU only")
        self.device = device
        self.config = model.config
        model = model.eval().to(device)
        self.fast_encoder = fast_encoder and use_time_major_encoder(model)
        if quantize:
            model = quantize_int8(model)
        self.quantized = quantize
        self.model = model
        # int8 and bf16 do not compose here: the dynamic int8 Linear kernels take fp32
        # activations, so under autocast every Linear would cast back and forth.
        self.autocast_dtype = None if quantize else autocast_dtype(precision, device)
        self.description = "PyTorch " + ", ".join(filter(None, (
            "bf16 autocast" if self.autocast_dtype else "fp32",
            "int8 Linear" if quantize else "",
            "time-major conv encoder" if self.fast_encoder else "")))

    def logits(self, inputs: ModelInputs) -> torch.Tensor:
        lengths = inputs.lengths() if self.fast_encoder else None
        inputs = inputs.to(self.device)
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype)
                    if self.autocast_dtype is not None else contextlib.nullcontext())
        with torch.inference_mode(), autocast, clip_lengths(lengths):
            logits = model_logits(self.model, inputs)
        return logits.float().cpu().clone()  # clone: a plain tensor, not an inference-mode one


def as_runtime(model: PreTrainedModel | Runtime, *, device: str | torch.device | None = None,
               precision: str = "auto", quantize: bool = False,
               fast_encoder: bool = True) -> Runtime:
    """A :class:`TorchRuntime` with these options for a PyTorch model (``device``: CUDA if
    available, else the CPU); a ready runtime as it is, its options being its own."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if isinstance(model, PreTrainedModel):
        return TorchRuntime(
            model, device=torch.device(device) if device is not None else _default_device(),
            precision=precision, quantize=quantize, fast_encoder=fast_encoder)
    if (device, precision, quantize, fast_encoder) != (None, "auto", False, True):
        raise ValueError("device, precision, quantize and fast_encoder belong to the runtime "
                         f"when a {type(model).__name__} is passed; set them when building it")
    return model


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def onnxruntime_available() -> bool:
    """Whether onnxruntime imports (an import, not a file look-up: a broken install counts as
    missing)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_files(path: str | os.PathLike) -> dict[str, Path]:
    """The exported ONNX files of a model folder (or of the folder of an ``.onnx`` file),
    by precision (``fp32``, ``int8``)."""
    p = Path(path).expanduser()
    folder = p.parent if p.suffix == ".onnx" else p
    if not folder.is_dir():
        return {}
    return {precision: folder / name for precision, name in ONNX_FILES.items()
            if (folder / name).is_file()}


def choose_runtime(path: str | os.PathLike, runtime: str = "auto") -> str:
    """``torch`` or ``onnx`` for ``path``.

    ``auto``: ONNX Runtime when the model folder holds a file written by ``ser export --onnx``
    (``model.onnx`` / ``model.int8.onnx``), or ``path`` is such a file, and onnxruntime is
    installed; PyTorch otherwise. If the folder holds only ONNX files and onnxruntime is missing,
    that is an error (there is nothing PyTorch could load); if it holds PyTorch weights as well,
    PyTorch is used and a warning says why.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    exported = onnx_files(path)
    if runtime == "torch":
        if Path(path).suffix == ".onnx":
            raise ModelLoadError(f"{path} is an ONNX file; PyTorch cannot load it (use "
                                 "runtime='onnx', or the model folder it was exported from)")
        return "torch"
    if runtime == "onnx":
        if not exported:
            raise ModelLoadError(
                f"{path} holds no ONNX model ({' or '.join(ONNX_FILES.values())}); write one "
                f"with `ser export --model {path} --onnx DIR` and load DIR")
        if not onnxruntime_available():
            raise ModelLoadError(f"the ONNX runtime needs onnxruntime, which is not installed: "
                                 f"{ONNX_EXTRA_HINT}")
        return "onnx"
    if not exported:
        return "torch"
    if onnxruntime_available():
        return "onnx"
    folder = Path(path).expanduser()
    if folder.is_dir() and any((folder / n).is_file() for n in (
            "model.safetensors", "pytorch_model.bin")):
        log.warning("%s holds an ONNX export but onnxruntime is not installed; running the "
                    "PyTorch weights instead (%s for the faster runtime)", path, ONNX_EXTRA_HINT)
        return "torch"
    raise ModelLoadError(f"{path} holds only an ONNX model, and onnxruntime is not installed: "
                         f"{ONNX_EXTRA_HINT}")
