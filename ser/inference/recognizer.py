"""EmotionRecognizer: a trained model in, predictions for files or arrays out.

How a batch is run. Clips are zero-padded to the longest in the batch and normalised per clip
over their real samples (what the exported feature extractor does), under ``inference_mode``.

* Layer-norm feature encoders (``feat_extract_norm="layer"``: XLSR, large models, the tiny one)
  take an attention mask, so padding does not change a clip's prediction: batched results equal
  one-at-a-time results (same label, probabilities within 1e-4).
* Group-norm feature encoders (``feat_extract_norm="group"``: wav2vec2-base) normalise each
  channel over the whole input, padding included, and were trained without masks. For them a
  batch is split into groups of clips of exactly equal length and each group runs unpadded, so
  results are again those of one clip at a time; clips of differing lengths gain nothing from
  batching with such a model.

Recordings longer than ``long_threshold`` seconds (default 20) are cut into windows of
``window`` seconds every ``hop`` seconds (default 4 / 2; the last window ends at the end of the
file), decoded one at a time. Each window gets its own prediction; the whole-file prediction is
the **mean of the window probabilities** (each window weighted equally) and its argmax.

Runtimes: the model itself runs in a :mod:`runtime <ser.inference.runtime>` that only turns a
prepared batch into logits: PyTorch (``runtime="torch"``) or ONNX Runtime on a folder written by
``ser export --onnx`` (``runtime="onnx"``); ``runtime="auto"`` (the default) takes ONNX Runtime
when the model folder holds an exported ``.onnx`` file and onnxruntime is installed (see
:func:`~ser.inference.runtime.choose_runtime`). Everything in this module runs the same for both.

Speed: batches are sorted by length (see :mod:`ser.data.batching`), decoding runs in
``num_workers`` worker processes while the model computes (by default only when a core is free
of model threads). In PyTorch the conv feature encoder runs clip by clip in time-major form
(:mod:`ser.inference.speedups`), ``precision="auto"`` uses bf16 autocast where a probe measured
it faster on this processor (:mod:`ser.inference.precision`), and ``quantize=True`` runs the
Linear layers in int8 on the CPU. ``threads=`` sets the CPU threads (torch's, and ONNX
Runtime's). One recognizer serves one caller at a time (it is not thread-safe).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.audio import TARGET_SR, AudioError, audio_info, load_audio, to_mono
from ser.calibration import logit_scale, temperature_of
from ser.data.batching import ChunkedBatchSampler, collate_clips
from ser.inference.loading import check_labels, load_for_inference
from ser.inference.precision import PRECISIONS
from ser.inference.runtime import Runtime, TorchRuntime, choose_runtime
from ser.inference.stream import (
    DurationPlanner,
    InputDataset,
    InputItem,
    decode_item,
    item_name,
)
from ser.inference.windows import WindowPlan, array_windows, file_windows
from ser.labels import LABELS
from ser.preprocessing import normalize_waveforms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowPrediction:
    """One window of a long recording: ``start``/``end`` in seconds."""

    start: float
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    """The top label, its probability, and the probabilities of the six labels in order.

    ``duration`` is the audio's length in seconds; ``windows`` is empty unless the recording was
    long enough to be cut into windows, in which case the top-level figures are the mean of the
    window probabilities. ``warning`` says why the prediction may not cover the whole recording
    (a file cut short of what its header declares); None otherwise.
    """

    label: str
    confidence: float
    probabilities: dict[str, float]
    duration: float | None = None
    windows: tuple[WindowPrediction, ...] = ()
    warning: str | None = None

    @classmethod
    def from_probabilities(cls, probs: np.ndarray, **extra: Any) -> Prediction:
        label, confidence, mapping = _summarise(probs)
        return cls(label, confidence, mapping, **extra)


@dataclass(frozen=True)
class Result:
    """One input of :meth:`EmotionRecognizer.predict_many`: a prediction, or why there is none."""

    index: int
    source: str
    prediction: Prediction | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None

    @property
    def warning(self) -> str | None:
        """Why the prediction may cover only part of the recording (see Prediction.warning)."""
        return self.prediction.warning if self.prediction is not None else None


def _summarise(probs: np.ndarray) -> tuple[str, float, dict[str, float]]:
    probs = np.asarray(probs, dtype=np.float64)
    top = int(np.argmax(probs))
    return LABELS[top], float(probs[top]), {label: float(p) for label, p in zip(LABELS, probs)}


class EmotionRecognizer:
    """Predicts the six emotions for audio files or arrays (see the module docstring).

    Built from a PyTorch model it takes the model over: switches it to eval mode, moves it to
    ``device``, patches its feature encoder's ``forward`` (and quantizes it in place with
    ``quantize=True``). Use :meth:`from_pretrained`, or pass a model you will not train again,
    or a ready :class:`~ser.inference.runtime.Runtime` (then ``device``, ``precision``,
    ``quantize`` and ``fast_encoder`` are the runtime's business and must stay at their
    defaults).
    """

    def __init__(
        self,
        model: PreTrainedModel | Runtime,
        feature_extractor: FeatureExtractionMixin,
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
        quantize: bool = False,
        fast_encoder: bool = True,
        window: float = 4.0,
        hop: float = 2.0,
        long_threshold: float = 20.0,
        source: str = "",
        raw_probabilities: bool = False,
        vad: Any = None,
    ) -> None:
        check_labels(model.config, source or type(model).__name__)
        # calibrated probabilities by default (ser.calibration): the one place T is applied
        self.temperature, self.temperature_baked_in = temperature_of(model.config, source)
        self.raw_probabilities = raw_probabilities
        self.logit_scale = logit_scale(model.config, source, raw=raw_probabilities)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.plan = WindowPlan(window=window, hop=hop, threshold=long_threshold)
        self.vad = vad  # a VadConfig for timeline() and stream(); None: its defaults
        self.source = source
        self.feature_extractor = feature_extractor
        self.sampling_rate = int(getattr(feature_extractor, "sampling_rate", TARGET_SR))
        self.do_normalize = bool(getattr(feature_extractor, "do_normalize", True))
        if isinstance(model, PreTrainedModel):
            runtime: Runtime = TorchRuntime(
                model, device=torch.device(device) if device is not None else _default_device(),
                precision=precision, quantize=quantize, fast_encoder=fast_encoder)
        elif (device, precision, quantize, fast_encoder) != (None, "auto", False, True):
            raise ValueError("device, precision, quantize and fast_encoder belong to the runtime "
                             f"when a {type(model).__name__} is passed; set them when building it")
        else:
            runtime = model
        self.runtime = runtime
        self.device = runtime.device
        self.uses_mask = runtime.uses_mask
        self.quantized = bool(getattr(runtime, "quantized", False))
        log.info("recognizer on %s: %s", self.device, runtime.description)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = None,
        backbone: str | None = None,
        *,
        threads: int | None = None,
        trust_checkpoint: bool = False,
        runtime: str = "auto",
        **options: Any,
    ) -> EmotionRecognizer:
        """Load a Hugging Face folder (or hub id), a Lightning ``.ckpt``, a state dict
        (``emotion_model.pth``; ``backbone`` names its architecture), or a folder written by
        ``ser export --onnx``.

        ``runtime``: ``torch``, ``onnx`` or ``auto`` (ONNX Runtime when the folder holds an
        exported ``.onnx`` file, see :func:`~ser.inference.runtime.choose_runtime`).
        ``threads`` sets torch's CPU thread count for the whole process (and ONNX Runtime's).
        ``options`` go to the constructor: ``precision``, ``quantize``, ``window``, ``hop``,
        ``long_threshold``, ``vad``, ``raw_probabilities`` (True: the model's uncalibrated
        softmax; default: calibrated by the temperature fitted at the end of training, see
        :mod:`ser.calibration`).
        """
        if threads is not None:
            torch.set_num_threads(int(threads))
        chosen = choose_runtime(path, runtime)
        if chosen == "onnx":
            from ser.inference.onnx_runtime import load_onnx

            if device is not None and torch.device(device).type != "cpu":
                raise ValueError(f"the ONNX runtime runs on the CPU only, not {device}")
            onnx, feature_extractor = load_onnx(
                path, precision=options.pop("precision", "auto"),
                quantize=bool(options.pop("quantize", False)), threads=threads)
            options.pop("fast_encoder", None)
            return cls(onnx, feature_extractor, source=str(path), **options)
        loaded = load_for_inference(path, backbone=backbone, trust_checkpoint=trust_checkpoint)
        return cls(loaded.model, loaded.feature_extractor, device=device, source=str(path),
                   **options)

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS

    @property
    def config(self):
        """The model's Hugging Face config (labels, architecture), whatever the runtime."""
        return self.runtime.config

    @property
    def model(self) -> PreTrainedModel:
        """The PyTorch model (PyTorch runtime only)."""
        model = getattr(self.runtime, "model", None)
        if model is None:
            raise AttributeError(f"the {self.runtime.name} runtime has no PyTorch model; "
                                 "use .config for the architecture and labels")
        return model

    # -- the forward pass ---------------------------------------------------------------------

    def _forward(self, values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        if self.do_normalize:
            values = normalize_waveforms(values, mask)
        logits = torch.from_numpy(self.runtime.logits(values, mask))
        # the one place the calibration temperature is applied, whatever the runtime
        return (logits.float() * self.logit_scale).softmax(-1).numpy()

    def probabilities_of_batch(self, values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """Probabilities [B, 6] of a zero-padded batch with its mask (1 on real samples)."""
        if values.shape[0] == 0:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        lengths = mask.sum(dim=1)
        if self.uses_mask or bool((lengths == lengths[0]).all()):
            longest = int(lengths.max())
            return self._forward(values[:, :longest], mask[:, :longest])
        # Group-norm encoders: padding would change the result; run equal lengths together.
        out = np.empty((values.shape[0], len(LABELS)), dtype=np.float32)
        for length in torch.unique(lengths).tolist():
            rows = torch.nonzero(lengths == length).flatten()
            out[rows.numpy()] = self._forward(values[rows, :length], mask[rows, :length])
        return out

    def probabilities(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities [N, 6] of mono clips already at the model's rate, as one batch."""
        batch = collate_clips([{"input_values": c, "label": -1, "index": i, "error": None}
                               for i, c in enumerate(clips)])
        return self.probabilities_of_batch(batch["input_values"], batch["attention_mask"])

    # -- one input ----------------------------------------------------------------------------

    def predict(self, audio: str | os.PathLike | np.ndarray,
                sampling_rate: int | None = None, *, batch_size: int = 8,
                gate: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                ) -> Prediction:
        """Predict one file (path) or array (``sampling_rate`` required; (samples,) or
        (samples, channels)). Raises :class:`~ser.audio.AudioError` for unusable audio.

        ``gate``, if given, is entered around each forward pass (once per batch of windows of a
        long recording): a server uses it to share the model fairly between callers."""
        warning = None
        if isinstance(audio, (str, os.PathLike)):
            info = audio_info(audio)
            warning = info.warning
            if warning:
                log.warning("%s: %s", audio, warning)
            if self.plan.is_long(info.duration):
                return replace(self._predict_long_file(str(audio), info.duration, batch_size,
                                                       gate), warning=warning)
            clip = load_audio(audio, target_sr=self.sampling_rate)
        else:
            if sampling_rate is None:
                raise AudioError("<array>", "an array needs its sampling_rate", "not_audio")
            clip = to_mono(audio, sampling_rate, target_sr=self.sampling_rate)
            if self.plan.is_long(clip.size / self.sampling_rate):
                return self._predict_long_array(clip, batch_size, gate)
        probs = self._gated_probabilities([clip], gate)[0]
        return Prediction.from_probabilities(probs, duration=clip.size / self.sampling_rate,
                                             warning=warning)

    def _gated_probabilities(self, clips: Sequence[np.ndarray],
                             gate: Callable[[], contextlib.AbstractContextManager[Any]] | None,
                             ) -> np.ndarray:
        with gate() if gate is not None else contextlib.nullcontext():
            return self.probabilities(clips)

    # -- long recordings ----------------------------------------------------------------------

    def _predict_long_file(self, path: str, duration: float, batch_size: int,
                           gate: Callable[[], Any] | None = None) -> Prediction:
        starts = self.plan.starts(duration)
        windows = file_windows(path, starts, self.plan.window, target_sr=self.sampling_rate)
        return self._predict_windows(windows, starts, duration, batch_size, gate)

    def _predict_long_array(self, clip: np.ndarray, batch_size: int,
                            gate: Callable[[], Any] | None = None) -> Prediction:
        duration = clip.size / self.sampling_rate
        starts = self.plan.starts(duration)
        windows = array_windows(clip, starts, self.plan.window, sampling_rate=self.sampling_rate)
        return self._predict_windows(windows, starts, duration, batch_size, gate)

    def _predict_windows(self, windows: Iterable[np.ndarray], starts: list[float],
                         duration: float, batch_size: int,
                         gate: Callable[[], Any] | None = None) -> Prediction:
        rows: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        for clip in windows:
            pending.append(clip)
            if len(pending) == batch_size:
                rows.append(self._gated_probabilities(pending, gate))
                pending = []
        if pending:
            rows.append(self._gated_probabilities(pending, gate))
        probs = np.concatenate(rows)
        per_window = []
        for start, p in zip(starts, probs):
            label, confidence, mapping = _summarise(p)
            end = min(start + self.plan.window, duration)
            per_window.append(WindowPrediction(start, round(end, 6), label, confidence, mapping))
        return Prediction.from_probabilities(probs.mean(axis=0), duration=duration,
                                             windows=tuple(per_window))

    # -- emotion over time (speech segments, see ser.inference.timeline / .live) ---------------

    def timeline(self, audio: str | os.PathLike | np.ndarray, sampling_rate: int | None = None,
                 *, batch_size: int = 8, progress: bool = False) -> Any:
        """One prediction per speech segment of a file or array: a
        :class:`~ser.inference.timeline.Timeline`. Silence is not scored."""
        from ser.inference.timeline import timeline_of

        return timeline_of(self, audio, sampling_rate, vad=self.vad, batch_size=batch_size,
                           progress=progress)

    def stream(self, chunks: Iterable[Any], sampling_rate: int = 16_000, *,
               partial_hop: float | None = 1.0) -> Iterator[Any]:
        """Live recognition of audio chunks (float or int16 arrays, or int16 bytes): yields a
        :class:`~ser.inference.live.StreamEvent` per finished segment, and partials."""
        from ser.inference.live import stream_events

        return stream_events(self, chunks, sampling_rate=sampling_rate, vad=self.vad,
                             partial_hop=partial_hop)

    # -- many inputs --------------------------------------------------------------------------

    def predict_many(
        self,
        items: Iterable[InputItem],
        *,
        batch_size: int = 8,
        num_workers: int | None = None,
        sampling_rate: int | None = None,
        max_batch_seconds: float | None = 96.0,
        max_padding: float | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[Result]:
        """Yield one :class:`Result` per item, in input order; a broken item gives a Result
        with its error, and the rest go on.

        Items are paths, ``(array, sampling_rate)`` pairs, or arrays with ``sampling_rate``.
        Audio is decoded in ``num_workers`` processes (0: in this one; None: one if a core is
        left over from the model's threads, see :func:`default_workers`), chunk by chunk
        (``chunk_size`` items, default 16 batches), so memory stays bounded however many items
        there are. ``max_batch_seconds`` caps a batch's padded audio (items x longest);
        ``max_padding`` caps the share of padding in a batch (default 5% on the CPU, where
        batching gains only ~5% and padding costs its full share; 30% on a GPU).
        """
        items = list(items)
        if num_workers is None:
            num_workers = default_workers()
        chunk = chunk_size or batch_size * 16
        planner = DurationPlanner(items, chunk_size=chunk, sampling_rate=sampling_rate)
        if max_padding is None:
            max_padding = 0.05 if self.device.type == "cpu" else 0.3
        sampler = ChunkedBatchSampler(planner, batch_size, self.plan.is_long, max_batch_seconds,
                                      max_padding)
        dataset = InputDataset(items, sampling_rate=sampling_rate, target_sr=self.sampling_rate)
        loader = DataLoader(
            dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_clips,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=2 if num_workers > 0 else None,
            multiprocessing_context=_worker_context() if num_workers > 0 else None,
        )
        done: dict[int, Result] = {}
        position = 0

        def drain() -> Iterator[Result]:
            nonlocal position
            while position < len(items):
                if position in done:
                    yield done.pop(position)
                    position += 1
                elif self.plan.is_long(planner.duration(position)):
                    done[position] = self._long_result(items[position], position,
                                                       planner.duration(position),
                                                       sampling_rate, batch_size,
                                                       planner.warning(position))
                else:
                    return

        for batch in loader:
            for index, error in batch["failed"]:
                done[index] = Result(index, item_name(items[index], index), error=error)
            if batch["index"].numel():
                probs = self.probabilities_of_batch(batch["input_values"],
                                                    batch["attention_mask"])
                seconds = (batch["attention_mask"].sum(dim=1) / self.sampling_rate).tolist()
                for row, index in enumerate(batch["index"].tolist()):
                    prediction = Prediction.from_probabilities(probs[row], duration=seconds[row],
                                                               warning=planner.warning(index))
                    done[index] = Result(index, item_name(items[index], index), prediction)
            yield from drain()
        yield from drain()
        if position != len(items):  # a bug, not a data problem: say which item went missing
            raise RuntimeError(f"predict_many lost item {position} ({items[position]!r})")

    def _long_result(self, item: InputItem, index: int, duration: float,
                     sampling_rate: int | None, batch_size: int,
                     warning: str | None = None) -> Result:
        name = item_name(item, index)
        try:
            if isinstance(item, (str, os.PathLike)):
                prediction = self._predict_long_file(str(item), duration, batch_size)
            else:
                clip = decode_item(item, index, sampling_rate=sampling_rate,
                                   target_sr=self.sampling_rate)
                prediction = self._predict_long_array(clip, batch_size)
        except AudioError as exc:
            return Result(index, name, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the others
            log.warning("%s: cannot be used (%r)", name, exc)
            return Result(index, name, error=f"{name}: cannot be used ({exc!r})")
        return Result(index, name, replace(prediction, warning=warning))


def _worker_context() -> str | None:
    """fork where there is one: the workers only decode audio (no torch state, no CUDA), and a
    spawned worker would re-import torch and transformers (seconds) on every call. A process
    started by spawn inherits spawn as its default, hence the explicit choice."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def default_workers(threads: int | None = None) -> int:
    """One decoding process when a core is left over from the model's threads, else none:
    on a machine whose cores all compute, a decoding process slows the model more than it
    saves (measured: 25% slower on 2 cores with 2 threads)."""
    threads = threads or torch.get_num_threads()
    return 1 if (os.cpu_count() or 1) > threads else 0


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
