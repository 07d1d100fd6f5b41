"""EmotionRecognizer: a trained model in, predictions for files or arrays out.

How a batch is run is :mod:`ser.forward`'s, the path training takes too: clips zero-padded to
the longest in the batch, normalised per clip over their real samples (what the exported
feature extractor does), the attention mask for the models that take one, and each clip's
result equal to its one-at-a-time result (probabilities within 1e-4), also for group-norm
encoders (wav2vec2-base), whose batches hold clips of equal length only.

Recordings longer than ``long_threshold`` seconds (default 20) are cut into windows of
``window`` seconds every ``hop`` seconds (default 4 / 2; the last window ends at the end of the
file), decoded one at a time (:mod:`ser.inference.windows`). Each window gets its own
prediction; the whole-file prediction is the **mean of the window probabilities** (each window
weighted equally) and its argmax.

Runtimes: the model itself runs in a :mod:`runtime <ser.inference.runtime>` that only turns a
prepared batch into logits: PyTorch (``runtime="torch"``) or ONNX Runtime on a folder written by
``ser export --onnx`` (``runtime="onnx"``); ``runtime="auto"`` (the default) takes ONNX Runtime
when the model folder holds an exported ``.onnx`` file and onnxruntime is installed (see
:func:`~ser.inference.runtime.choose_runtime`). Everything in this module runs the same for both.

Speed: batches are sorted by length (see :mod:`ser.data.batching`), decoding runs in
``num_workers`` worker processes while the model computes (by default only when a core is free
of model threads; :mod:`ser.inference.predict_many`). In PyTorch the conv feature encoder
runs clip by clip in time-major form (:mod:`ser.inference.speedups`), ``precision="auto"`` uses
bf16 autocast where a probe measured it faster on this processor
(:mod:`ser.inference.precision`), and ``quantize=True`` runs the Linear layers in int8 on the
CPU. ``threads=`` sets the CPU threads (torch's; with ONNX Runtime, how many clips run side by
side, one core each: :mod:`ser.inference.onnx_runtime`). ``predict`` may be called from several
threads (``ser serve`` does, its gate bounding the forward passes at once); ``predict_many``
serves one caller at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.audio import TARGET_SR, AudioError, audio_info, load_audio, to_mono
from ser.calibration import logit_scale, temperature_of
from ser.forward import ForwardPath
from ser.inference.loading import check_labels, load_for_inference
from ser.inference.predict_many import default_workers, predict_many
from ser.inference.results import Prediction, Result, WindowPrediction
from ser.inference.runtime import Runtime, as_runtime, choose_runtime
from ser.inference.stream import InputItem
from ser.inference.windows import WindowPlan, array_windows, file_windows, score_windows
from ser.labels import LABELS

log = logging.getLogger(__name__)

Gate = Callable[[], contextlib.AbstractContextManager[Any]]


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
        # calibrated probabilities by default (ser.calibration), applied by the forward path
        self.temperature, self.temperature_baked_in = temperature_of(model.config, source)
        self.raw_probabilities = raw_probabilities
        self.plan = WindowPlan(window=window, hop=hop, threshold=long_threshold)
        self.vad = vad  # a VadConfig for timeline() and stream(); None: its defaults
        self.source = source
        self.feature_extractor = feature_extractor
        self.sampling_rate = int(getattr(feature_extractor, "sampling_rate", TARGET_SR))
        self.runtime = runtime = as_runtime(model, device=device, precision=precision,
                                            quantize=quantize, fast_encoder=fast_encoder)
        self.device = runtime.device
        # waveforms -> normalised batch -> the runtime's logits -> probabilities (ser.forward)
        self.forward = ForwardPath.of(
            model.config, feature_extractor, runtime.logits,
            logit_scale=logit_scale(model.config, source, raw=raw_probabilities),
            cuts_rows=runtime.cuts_rows)
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
        ``threads`` sets torch's CPU thread count for the whole process (and the cores ONNX
        Runtime uses); ``clips_at_once`` (ONNX only): clips run side by side on them (default:
        one per core; 1: each clip on every core, for the latency of lone clips).
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
                quantize=bool(options.pop("quantize", False)), threads=threads,
                clips_at_once=options.pop("clips_at_once", None))
            options.pop("fast_encoder", None)
            return cls(onnx, feature_extractor, source=str(path), **options)
        if options.pop("clips_at_once", None) not in (None, 1):
            raise ValueError("clips_at_once is an option of the ONNX runtime; PyTorch runs one "
                             "batch on every core")
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
    def uses_mask(self) -> bool:
        """Whether the model takes an attention mask (else only equal lengths share a batch)."""
        return self.forward.uses_mask

    @property
    def do_normalize(self) -> bool:
        return self.forward.normalize

    @property
    def logit_scale(self) -> float:
        """What logits are multiplied by before the softmax (ser.calibration.logit_scale)."""
        return self.forward.logit_scale

    @property
    def model(self) -> PreTrainedModel:
        """The PyTorch model (PyTorch runtime only)."""
        model = getattr(self.runtime, "model", None)
        if model is None:
            raise AttributeError(f"the {self.runtime.name} runtime has no PyTorch model; "
                                 "use .config for the architecture and labels")
        return model

    # -- the forward pass (ser.forward) ------------------------------------------------------

    def probabilities_of_batch(self, values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """Probabilities [B, 6] of a zero-padded batch with its mask (1 on real samples), each
        row as if its clip ran alone."""
        return self.forward.batch_probabilities(values, mask)

    def probabilities(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities [N, 6] of mono clips already at the model's rate, as one batch."""
        return self.forward.clip_probabilities(clips)

    # -- one input ----------------------------------------------------------------------------

    def predict(self, audio: str | os.PathLike | np.ndarray,
                sampling_rate: int | None = None, *, batch_size: int = 8,
                gate: Gate | None = None) -> Prediction:
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
                return replace(self.predict_windows(str(audio), info.duration,
                                                    batch_size=batch_size, gate=gate),
                               warning=warning)
            clip = load_audio(audio, target_sr=self.sampling_rate)
        else:
            if sampling_rate is None:
                raise AudioError("<array>", "an array needs its sampling_rate", "not_audio")
            clip = to_mono(audio, sampling_rate, target_sr=self.sampling_rate)
            if self.plan.is_long(clip.size / self.sampling_rate):
                return self.predict_windows(clip, batch_size=batch_size, gate=gate)
        probs = self._gated_probabilities([clip], gate)[0]
        return Prediction.from_probabilities(probs, duration=clip.size / self.sampling_rate,
                                             warning=warning)

    def _gated_probabilities(self, clips: Sequence[np.ndarray], gate: Gate | None) -> np.ndarray:
        with gate() if gate is not None else contextlib.nullcontext():
            return self.probabilities(clips)

    def predict_windows(self, audio: str | os.PathLike | np.ndarray,
                        duration: float | None = None, *, batch_size: int = 8,
                        gate: Gate | None = None) -> Prediction:
        """A recording cut into windows (see the module docstring), whatever its length: a
        file, read window by window (``duration``: from its header when not given), or a mono
        array at the model's rate. ``gate`` is entered once per batch of windows."""
        if isinstance(audio, (str, os.PathLike)):
            if duration is None:
                duration = audio_info(audio).duration
            starts = self.plan.starts(duration)
            windows = file_windows(str(audio), starts, self.plan.window,
                                   target_sr=self.sampling_rate)
        else:
            duration = audio.size / self.sampling_rate
            starts = self.plan.starts(duration)
            windows = array_windows(audio, starts, self.plan.window,
                                    sampling_rate=self.sampling_rate)
        return score_windows(partial(self._gated_probabilities, gate=gate), windows, starts,
                             duration, window=self.plan.window, batch_size=batch_size)

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
        batching gains only ~5% and padding costs its full share; 30% on a GPU; no cap with the
        ONNX runtime, which runs each clip alone: :func:`default_max_padding`).
        """
        return predict_many(self, items, batch_size=batch_size, num_workers=num_workers,
                            sampling_rate=sampling_rate, max_batch_seconds=max_batch_seconds,
                            max_padding=max_padding, chunk_size=chunk_size)


# Moved out with their jobs, importable from here as before.
__all__ = ["EmotionRecognizer", "Prediction", "Result", "WindowPrediction", "default_workers"]
