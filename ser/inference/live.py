"""Live recognition: audio chunks in, an event per finished speech segment (and partials) out.

    for event in recognizer.stream(chunks, sampling_rate=16000):   # chunks: float or int16 arrays
        print(event.kind, event.start, event.end, event.label, event.confidence)

Events (``StreamEvent.payload()`` is what the server's ``/stream`` sends as JSON):

* ``segment``: a speech segment that ended (``min_silence`` after its last speech, or cut at
  ``max_segment``), scored as one clip -- the same segments and labels as
  :meth:`EmotionRecognizer.timeline` on the same audio.
* ``partial``: the segment still open, scored from its start to now, every ``partial_hop``
  seconds of audio; a later partial or the final ``segment`` event replaces it.

Latency: a segment is final only after ``min_silence`` (0.25 s) of quiet, and scoring it takes
as long again on a base-size model. So once the quiet begins, the segment as it would close is
scored at once (:meth:`~ser.inference.vad.SpeechSegmenter.pending_segment`); when the silence is
confirmed the event goes out with that result, which is the same audio and so the same
prediction. If speech resumes the early result is dropped (the price: one extra model call per
pause shorter than ``min_silence``). A caller behind real time turns this off with the partials
(``feed(..., keeping_up=False)``).

Chunks may have any size; audio at another rate is resampled to 16 kHz as it arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from ser.audio import TARGET_SR
from ser.inference.results import WindowPrediction
from ser.inference.timeline import score_segments
from ser.inference.vad import SpeechSegment, SpeechSegmenter, VadConfig

if TYPE_CHECKING:
    from ser.inference.recognizer import EmotionRecognizer


@dataclass(frozen=True)
class StreamEvent:
    """``kind`` is ``segment`` (final) or ``partial`` (the open segment so far)."""

    kind: str
    segment: WindowPrediction

    @property
    def start(self) -> float:
        return self.segment.start

    @property
    def end(self) -> float:
        return self.segment.end

    @property
    def label(self) -> str:
        return self.segment.label

    @property
    def confidence(self) -> float:
        return self.segment.confidence

    def payload(self) -> dict[str, Any]:
        s = self.segment
        return {"type": self.kind, "start": s.start, "end": s.end, "emotion": s.label,
                "confidence": s.confidence, "probabilities": dict(s.probabilities)}


def pcm_to_float(chunk: np.ndarray | bytes) -> np.ndarray:
    """int16 PCM (array or little-endian bytes) to float32 in [-1, 1); floats pass through."""
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        chunk = np.frombuffer(chunk, dtype="<i2")
    chunk = np.asarray(chunk).reshape(-1)
    if chunk.dtype == np.int16:
        return chunk.astype(np.float32) / 32768.0
    return chunk.astype(np.float32, copy=False)


class LiveSession:
    """One stream's state: resampler, segmenter and partial clock (not thread-safe)."""

    def __init__(self, recognizer: EmotionRecognizer, *, sampling_rate: int = TARGET_SR,
                 vad: VadConfig | None = None, partial_hop: float | None = 1.0,
                 vad_model: Any = None) -> None:
        if recognizer.sampling_rate != TARGET_SR:
            raise ValueError(f"live recognition runs at {TARGET_SR} Hz; the model expects "
                             f"{recognizer.sampling_rate} Hz")
        if partial_hop is not None and partial_hop <= 0:
            raise ValueError(f"partial_hop must be positive or None, got {partial_hop}")
        self.recognizer = recognizer
        self.sampling_rate = int(sampling_rate)
        self.segmenter = SpeechSegmenter(vad or getattr(recognizer, "vad", None), vad_model)
        self.partial_hop = partial_hop
        self._resampler = (soxr.ResampleStream(self.sampling_rate, TARGET_SR, 1, dtype="float32")
                           if self.sampling_rate != TARGET_SR else None)
        self._last_partial = 0.0
        self.received = 0  # samples at the input rate
        # The pending segment scored early: ((start, end), its prediction), see the docstring.
        self._early: tuple[tuple[float, float], WindowPrediction] | None = None
        self.early_scored = 0  # how many pending segments were scored early
        self.early_used = 0    # ... and became final unchanged

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds."""
        return self.received / self.sampling_rate

    def feed(self, chunk: np.ndarray | bytes, *, keeping_up: bool = True) -> list[StreamEvent]:
        """Events caused by this chunk. ``keeping_up=False`` (a server behind real time) skips
        the extra model calls: the partial update and the early scoring of a pending segment."""
        audio = pcm_to_float(chunk)
        self.received += audio.size
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        events = self._finals(self.segmenter.feed(audio))
        if keeping_up:
            if self.partial_hop is not None:
                events.extend(self._partial())
            self._score_early()
        return events

    def finish(self) -> list[StreamEvent]:
        """End of the stream: the open segment becomes final."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            events = self._finals(self.segmenter.feed(tail))
        else:
            events = []
        return events + self._finals(self.segmenter.finish())

    def _finals(self, segments: list[SpeechSegment]) -> list[StreamEvent]:
        if not segments:
            return []
        self._last_partial = self.segmenter.seconds
        early, self._early = self._early, None
        if early is not None and len(segments) == 1 and (segments[0].start,
                                                          segments[0].end) == early[0]:
            self.early_used += 1
            return [StreamEvent("segment", early[1])]
        return [StreamEvent("segment", s) for s in score_segments(self.recognizer, segments)]

    def _score_early(self) -> None:
        pending = self.segmenter.pending_segment()
        if pending is None:
            self._early = None  # speech resumed: the early result no longer applies
            return
        key = (pending.start, pending.end)
        if self._early is None or self._early[0] != key:
            self._early = (key, score_segments(self.recognizer, [pending])[0])
            self.early_scored += 1

    def _partial(self) -> list[StreamEvent]:
        assert self.partial_hop is not None
        now = self.segmenter.seconds
        if now - self._last_partial < self.partial_hop:
            return []
        open_segment = self.segmenter.open_segment()
        if open_segment is None:
            self._last_partial = now
            return []
        self._last_partial = now
        return [StreamEvent("partial", s) for s in score_segments(self.recognizer, [open_segment])]


def stream_events(recognizer: EmotionRecognizer, chunks: Iterable[np.ndarray | bytes], *,
                  sampling_rate: int = TARGET_SR, vad: VadConfig | None = None,
                  partial_hop: float | None = 1.0) -> Iterator[StreamEvent]:
    """Feed ``chunks`` to a :class:`LiveSession`, yielding events as soon as they exist."""
    session = LiveSession(recognizer, sampling_rate=sampling_rate, vad=vad,
                          partial_hop=partial_hop)
    for chunk in chunks:
        yield from session.feed(chunk)
    yield from session.finish()


__all__ = ["LiveSession", "StreamEvent", "pcm_to_float", "stream_events"]
