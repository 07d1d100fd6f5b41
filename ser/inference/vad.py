"""Voice activity: where the speech is, found online, frame by frame, with Silero VAD.

One segmentation for every caller: ``ser predict --timeline``, :meth:`EmotionRecognizer.timeline`,
:meth:`EmotionRecognizer.stream`, the server's ``/stream`` WebSocket and ``/timeline`` upload all
feed audio to a :class:`SpeechSegmenter`. It works on 512-sample frames (32 ms at 16 kHz), keeps
only the audio of the open segment (plus a short pre-roll), and closes a segment after
``min_silence`` seconds below the lower threshold, so a file read block by block and a stream
fed chunk by chunk give the same segments whatever the chunk sizes.

The detector is the Silero VAD model that the ``silero-vad`` package (MIT) ships inside itself,
so nothing is downloaded. Two forms of the same network are bundled: a TorchScript model (needs
only torch) and an ONNX one. ``backend="auto"`` takes the ONNX model when onnxruntime is
installed -- it ran 0.56 ms per 32 ms frame against 1.06 ms for TorchScript on this project's
2-core CPU (probabilities equal to 1e-6) -- and the TorchScript one otherwise; either way the
VAD costs ~2-3 % of real time, far less than the emotion model.

Speech starts when a frame's probability reaches ``threshold`` and ends after ``min_silence``
seconds below ``threshold - 0.15`` (hysteresis, as Silero's own helpers do). Segments shorter
than ``min_speech`` are dropped; each can keep ``pad`` seconds of audio on both sides (none by
default: measured on synthetic sentences laid out in silence, Silero's segments start within
35 ms of the true onset and end 0-100 ms after the true offset, median ~40 ms, already). A segment
reaching ``max_segment`` seconds is cut at its longest pause of at least ``min_pause`` seconds,
or, with no pause, exactly at ``max_segment``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ser.audio import TARGET_SR

FRAME = 512  # samples per VAD frame at 16 kHz: the only size Silero's 16 kHz model takes
FRAME_SECONDS = FRAME / TARGET_SR
BACKENDS = ("auto", "onnx", "jit")


@dataclass(frozen=True)
class VadConfig:
    """How speech is found and cut (seconds; probabilities in [0, 1])."""

    threshold: float = 0.5
    min_silence: float = 0.25
    min_speech: float = 0.25
    pad: float = 0.0
    max_segment: float = 10.0
    min_pause: float = 0.1
    backend: str = "auto"

    def __post_init__(self) -> None:
        if not 0.15 < self.threshold < 1:
            raise ValueError(f"VAD threshold must be in (0.15, 1), got {self.threshold}")
        if self.backend not in BACKENDS:
            raise ValueError(f"VAD backend must be one of {BACKENDS}, got {self.backend!r}")
        if not 0 <= self.pad <= self.min_silence:
            raise ValueError(f"pad ({self.pad} s) must be between 0 and min_silence "
                             f"({self.min_silence} s): the padding after a segment is read "
                             "from the silence that ends it")
        if not self.max_segment >= 1.0:
            raise ValueError(f"max_segment must be at least 1 s, got {self.max_segment}")
        if self.min_speech < 0 or self.min_pause <= 0 or self.min_silence <= 0:
            raise ValueError("min_speech must be >= 0, min_pause and min_silence > 0")

    @property
    def low_threshold(self) -> float:
        return self.threshold - 0.15


def resolve_backend(backend: str) -> str:
    if backend == "auto":
        return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "jit"
    return backend


def load_vad_model(backend: str = "auto"):
    """A fresh Silero model with its own recurrent state (one per stream or file).

    ``import silero_vad`` sets torch's global thread count to 1; the count is put back, so the
    emotion model keeps its threads.
    """
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError as exc:
        raise ImportError("voice activity detection needs the silero-vad package: "
                          "pip install 'ser[vad]' (or silero-vad==6.2.3)") from exc
    finally:
        torch.set_num_threads(threads)
    return load_silero_vad(onnx=resolve_backend(backend) == "onnx")


@dataclass(frozen=True)
class SpeechSegment:
    """Speech from ``start`` to ``end`` seconds (padding included), with its audio at 16 kHz."""

    start: float
    end: float
    audio: np.ndarray = field(repr=False)


class SpeechSegmenter:
    """Online speech segmentation of one recording or stream (16 kHz mono float32 in).

    ``feed(samples)`` returns the segments that finished; ``open_segment()`` gives the one still
    open (for partial results); ``finish()`` closes the recording. Memory: the open segment's
    audio (at most ``max_segment`` s) plus a few frames.
    """

    def __init__(self, config: VadConfig | None = None, model=None) -> None:
        self.config = config or VadConfig()
        self.model = model if model is not None else load_vad_model(self.config.backend)
        self.model.reset_states()
        c = self.config
        self._min_silence = max(1, round(c.min_silence / FRAME_SECONDS))
        self._min_speech = round(c.min_speech / FRAME_SECONDS)
        self._max_frames = max(2, int(c.max_segment / FRAME_SECONDS))
        self._min_pause = max(1, round(c.min_pause / FRAME_SECONDS))
        self._pad = round(c.pad * TARGET_SR)
        self._carry = np.zeros(0, dtype=np.float32)  # < one frame, not yet seen by the model
        self._frames = 0                              # frames seen so far
        self._audio: list[np.ndarray] = []            # kept audio, from sample self._base on
        self._base = 0
        self._start: int | None = None                # first frame of the open segment
        self._start_padded = True
        self._quiet_from: int | None = None           # first frame of the current quiet run
        self._pause: tuple[int, int] | None = None    # longest pause inside the open segment
        self.probabilities: list[float] | None = None  # set to [] to record every frame's

    # -- input --------------------------------------------------------------------------------

    @property
    def seconds(self) -> float:
        """Audio seen by the detector so far."""
        return self._frames * FRAME_SECONDS

    def feed(self, samples: np.ndarray) -> list[SpeechSegment]:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._carry.size:
            samples = np.concatenate([self._carry, samples])
        usable = samples.size - samples.size % FRAME
        self._carry = samples[usable:].copy()
        if not usable:
            return []
        self._audio.append(samples[:usable])
        frames = samples[:usable].reshape(-1, FRAME)
        done: list[SpeechSegment] = []
        with torch.inference_mode():
            for frame in frames:
                p = float(self.model(torch.from_numpy(frame).unsqueeze(0), TARGET_SR))
                if self.probabilities is not None:
                    self.probabilities.append(p)
                done.extend(self._step(p))
        self._trim()
        return done

    def finish(self) -> list[SpeechSegment]:
        """End of the recording: close the open segment (if long enough)."""
        done: list[SpeechSegment] = []
        if self._start is not None:
            end = self._quiet_from if self._quiet_from is not None else self._frames
            segment = self._close(self._start, end, pad_start=self._start_padded, pad_end=True)
            if segment is not None:
                done.append(segment)
            self._start = None
        self._audio, self._base = [], self._frames * FRAME
        return done

    def open_segment(self) -> SpeechSegment | None:
        """The segment still open, from its start to now (None in silence)."""
        if self._start is None or self._frames - self._start < max(1, self._min_speech):
            return None
        start = self._start * FRAME - (self._pad if self._start_padded else 0)
        return self._segment(max(0, start), self._frames * FRAME)

    def pending_segment(self) -> SpeechSegment | None:
        """The segment that closes, exactly as it will be, if the quiet run now under way lasts
        ``min_silence``; None while speech goes on (or the padding is not yet in).

        Lets a live caller score a segment while the silence that ends it is still being
        confirmed (:class:`~ser.inference.live.LiveSession`): the same audio, so the same result.
        """
        if self._start is None or self._quiet_from is None:
            return None
        if self._frames * FRAME < self._quiet_from * FRAME + self._pad:
            return None
        return self._close(self._start, self._quiet_from, pad_start=self._start_padded,
                           pad_end=True)

    # -- the state machine --------------------------------------------------------------------

    def _step(self, p: float) -> Iterator[SpeechSegment]:
        i = self._frames
        self._frames += 1
        c = self.config
        if self._start is None:
            if p >= c.threshold:
                self._start, self._start_padded = i, True
                self._quiet_from, self._pause = None, None
            return
        if p >= c.threshold:
            if self._quiet_from is not None:
                length = i - self._quiet_from
                if length >= self._min_pause and (self._pause is None
                                                  or length > self._pause[1] - self._pause[0]):
                    self._pause = (self._quiet_from, i)
                self._quiet_from = None
        elif p < c.low_threshold and self._quiet_from is None:
            self._quiet_from = i
        if self._quiet_from is not None and self._frames - self._quiet_from >= self._min_silence:
            segment = self._close(self._start, self._quiet_from, pad_start=self._start_padded,
                                  pad_end=True)
            self._start, self._quiet_from, self._pause = None, None, None
            if segment is not None:
                yield segment
            return
        if self._frames - self._start >= self._max_frames:
            yield from self._split()

    def _split(self) -> Iterator[SpeechSegment]:
        """The open segment reached max_segment: cut at its longest pause, or right here."""
        start = self._start
        assert start is not None
        if self._pause is not None and self._pause[0] - start >= max(1, self._min_speech):
            end, resume, pad = self._pause[0], self._pause[1], True
        else:
            end, resume, pad = self._frames, self._frames, False
        segment = self._close(start, end, pad_start=self._start_padded, pad_end=pad)
        self._start, self._start_padded, self._pause = resume, pad, None
        if self._quiet_from is not None and self._quiet_from < resume:
            self._quiet_from = None
        if segment is not None:
            yield segment

    def _close(self, start: int, end: int, *, pad_start: bool,
               pad_end: bool) -> SpeechSegment | None:
        if end - start < max(1, self._min_speech):
            return None
        first = start * FRAME - (self._pad if pad_start else 0)
        last = end * FRAME + (self._pad if pad_end else 0)
        return self._segment(max(0, first), min(last, self._frames * FRAME))

    def _segment(self, first: int, last: int) -> SpeechSegment:
        kept = np.concatenate(self._audio) if len(self._audio) > 1 else self._audio[0]
        self._audio = [kept]
        audio = kept[max(0, first - self._base):last - self._base].copy()
        return SpeechSegment(round(first / TARGET_SR, 4), round(last / TARGET_SR, 4), audio)

    def _trim(self) -> None:
        """Drop audio no segment can still need: before the open segment's padded start, or,
        in silence, all but the pre-roll of a segment that might start with the next frame."""
        if self._start is not None:
            keep_from = self._start * FRAME - self._pad
        else:
            keep_from = self._frames * FRAME - self._pad
        keep_from = max(self._base, keep_from)
        if keep_from - self._base < 8 * TARGET_SR and self._start is not None:
            return  # cheap: trim at most every few seconds while speech is open
        kept = np.concatenate(self._audio) if len(self._audio) > 1 else self._audio[0]
        self._audio = [kept[keep_from - self._base:]]
        self._base = keep_from


__all__ = ["BACKENDS", "FRAME", "FRAME_SECONDS", "SpeechSegment", "SpeechSegmenter",
           "VadConfig", "load_vad_model", "resolve_backend"]
