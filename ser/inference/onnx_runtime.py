"""The ONNX Runtime backend: a folder written by ``ser export --onnx`` run on the CPU.

The folder holds ``model.onnx`` (fp32) and, with ``--int8``, ``model.int8.onnx`` (dynamic int8
MatMuls), next to ``config.json`` (labels, architecture) and ``preprocessor_config.json`` (rate,
normalisation). ``precision="auto"`` takes the int8 file when there is one (the export checked
its labels against PyTorch), ``fp32`` the fp32 file; ``quantize=True`` asks for the int8 file.
bf16 is not offered: ONNX Runtime's CPU provider has no bf16 MatMul kernels to speak of.

Only onnxruntime, the config and the feature extractor are loaded: no PyTorch weights, so the
process holds one copy of the model (the int8 file of a large model is ~1/4 of the fp32 one).

**Clips side by side, one core each.** A batch's clips run at once on ``threads`` Python
threads (ONNX Runtime releases the GIL, and a session may be run from several threads), each
cut to its own length, each on a single-threaded run (at most 8 at once, a default batch; with
more cores each clip gets several threads). ONNX Runtime's own intra-op threads meet at a
barrier after every operator, so each operator waits for the slower core; clips side by side
never wait for each other. XLSR-large int8, 24 files, 2 cores, one process, alternated rounds:
5.6-5.9 s against 7.0-7.6 s with one clip on both cores at a time (paired ratio 1.25-1.33x),
and 6.5-6.7 s with both at once on a two-thread session; 4.56x against 4.16x a ``pipeline()``
loop in ``bench/inference.py`` (``bench/BENCHMARKS.md``). The cost: a lone clip runs on one
core (1.9x the latency of both on 2 cores), so ``ser serve`` runs as many forward passes at
once as there are clips at once, and ``clips_at_once=1`` (``ser serve --clips-at-once 1``)
gives a lone clip every core instead. A second, multi-threaded session for lone clips would
hold the model twice (~400 MB more at the XLSR-large size).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.backbones import uses_attention_mask
from ser.checksums import ChecksumError, onnx_weight_files, verify_checksums
from ser.forward import ModelInputs
from ser.inference.loaded_model import ModelLoadError, check_labels, feature_extractor_of
from ser.inference.runtime import ONNX_EXTRA_HINT, onnx_files

log = logging.getLogger(__name__)


# A batch holds at most 8 clips by default (predict_many's batch_size), so more clips at once
# would leave cores idle; beyond 8 cores each clip gets several threads (not measured here:
# 2 cores only).
MAX_DEFAULT_CLIPS_AT_ONCE = 8


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelLoadError(f"the ONNX runtime needs onnxruntime, which is not installed "
                             f"({exc}): {ONNX_EXTRA_HINT}") from exc
    return onnxruntime


def pick_onnx_file(path: str | os.PathLike, *, precision: str = "auto",
                   quantize: bool = False) -> Path:
    """The ONNX file to run for ``path`` (a folder, or an ``.onnx`` file taken as it is)."""
    p = Path(path).expanduser()
    if p.suffix == ".onnx":
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist")
        return p
    found = onnx_files(p)
    if precision == "bf16":
        raise ModelLoadError("precision='bf16' is not available with ONNX Runtime on the CPU; "
                             "use runtime='torch' for bf16, or int8 (ser export --int8)")
    if quantize or precision == "auto" and "int8" in found:
        if "int8" not in found:
            raise ModelLoadError(f"{p} has no int8 ONNX model (model.int8.onnx); write it with "
                                 f"`ser export --model MODEL --onnx {p} --int8`")
        return found["int8"]
    if "fp32" not in found:
        raise ModelLoadError(f"{p} has no fp32 ONNX model (model.onnx); found "
                             f"{sorted(f.name for f in found.values()) or 'none'}")
    return found["fp32"]


class OnnxRuntime:
    """Logits of a batch from an exported ONNX model (see :class:`ser.inference.runtime.Runtime`)."""

    name = "onnx"
    cuts_rows = True  # each row runs alone, cut to its clip: padding costs nothing

    def __init__(self, file: Path, config, *, threads: int | None = None,
                 clips_at_once: int | None = None) -> None:
        """``threads``: cores to use (default: torch's thread count); ``clips_at_once``: clips
        run side by side on them, each on ``threads // clips_at_once`` of them (default: one
        per core up to :data:`MAX_DEFAULT_CLIPS_AT_ONCE`, for throughput; 1: one clip on every
        core, for the latency of a lone clip)."""
        if clips_at_once is not None and clips_at_once < 1:
            raise ValueError(f"clips_at_once must be at least 1, got {clips_at_once}")
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        cores = max(1, int(threads or torch.get_num_threads()))
        self.clips_at_once = min(cores, int(clips_at_once or MAX_DEFAULT_CLIPS_AT_ONCE))
        options.intra_op_num_threads = max(1, cores // self.clips_at_once)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: ORT warns about unused initializers
        try:
            self.session = ort.InferenceSession(str(file), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ModelLoadError(f"{file}: ONNX Runtime cannot load it ({exc})") from exc
        inputs = {i.name for i in self.session.get_inputs()}
        if "input_values" not in inputs:
            raise ModelLoadError(f"{file}: inputs are {sorted(inputs)}, not input_values "
                                 "(and attention_mask); it was not written by ser export")
        self.file = file
        self.config = config
        self.device = torch.device("cpu")
        self.feeds_mask = "attention_mask" in inputs
        if uses_attention_mask(config) and not self.feeds_mask:
            raise ModelLoadError(f"{file}: the model takes an attention mask but the ONNX file "
                                 "has no attention_mask input; export it again")
        self.quantized = "int8" in file.name
        self.description = (f"ONNX Runtime {ort.__version__} {file.name} "
                            f"({self.clips_at_once} clip(s) at once, "
                            f"{options.intra_op_num_threads} thread(s) each)")
        # made here, not on first use: ser serve calls logits from several threads at once
        self._pool = (ThreadPoolExecutor(self.clips_at_once, thread_name_prefix="ser-onnx")
                      if self.clips_at_once > 1 else None)

    def logits(self, inputs: ModelInputs) -> torch.Tensor:
        """Each row alone, cut to its clip (``inputs.mask`` holds every row's length, with or
        without a mask input), up to ``clips_at_once`` at a time (see the module docstring)."""
        values = inputs.values.detach().cpu().numpy().astype(np.float32, copy=False)
        mask = inputs.mask.detach().cpu().numpy().astype(np.int64, copy=False)
        feeds = []
        for row, length in enumerate(inputs.lengths()):
            feed = {"input_values": values[row:row + 1, :length]}
            if self.feeds_mask:
                feed["attention_mask"] = mask[row:row + 1, :length]
            feeds.append(feed)
        if len(feeds) == 1 or self._pool is None:
            rows = [self._run(feed) for feed in feeds]
        else:
            rows = list(self._pool.map(self._run, feeds))
        return torch.from_numpy(np.concatenate(rows).astype(np.float32, copy=False))

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(["logits"], feed)[0])


def load_onnx(path: str | os.PathLike, *, precision: str = "auto", quantize: bool = False,
              threads: int | None = None, clips_at_once: int | None = None
              ) -> tuple[OnnxRuntime, FeatureExtractionMixin]:
    """The runtime and feature extractor of an exported folder (or of an ``.onnx`` file's)."""
    file = pick_onnx_file(path, precision=precision, quantize=quantize)
    folder = str(file.parent)
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: no usable config.json next to {file.name} ({exc}); "
                             "export the model with `ser export --onnx`") from exc
    check_labels(config, folder)
    try:  # the graph and its external weights (a model over 2 GB), if the manifest lists them
        verify_checksums(folder, only=[file.name, *(p.name for p in onnx_weight_files(folder)
                                                    if p.name.startswith(file.name))])
    except ChecksumError as exc:
        raise ModelLoadError(str(exc)) from exc
    runtime = OnnxRuntime(file, config, threads=threads, clips_at_once=clips_at_once)
    log.info("loaded ONNX model %s", file)
    return runtime, feature_extractor_of(folder, config)
