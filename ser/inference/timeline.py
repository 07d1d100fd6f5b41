"""Emotion over time: a recording cut at its speech segments, one prediction per segment.

    timeline = recognizer.timeline("interview.wav")          # or (array, sampling_rate=...)
    for s in timeline.segments:                              # WindowPrediction: start, end, label...
        print(s.start, s.end, s.label, s.confidence)

Silence is never scored: the recording goes through a :class:`~ser.inference.vad.SpeechSegmenter`
and only its segments reach the model, each as one clip (at most ``max_segment`` s, 10 by
default). A file is read in blocks of ``block`` seconds (libsndfile seeks), so the memory of an
hour-long file is that of one block, one open segment and one batch of segments; a waveform
envelope (peak per bin, a few thousand bins) is kept for the plot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ser.audio import TARGET_SR, audio_info, load_audio, to_mono
from ser.inference.results import Prediction, WindowPrediction, summarise
from ser.inference.vad import SpeechSegment, SpeechSegmenter, VadConfig

if TYPE_CHECKING:
    from ser.inference.recognizer import EmotionRecognizer

ENVELOPE_BINS = 4000


@dataclass(frozen=True)
class Timeline:
    """The speech segments of one recording with their predictions (seconds from its start).

    ``envelope`` holds the peak absolute sample of each ``envelope_step`` seconds (for plots).
    """

    source: str
    duration: float
    segments: tuple[WindowPrediction, ...]
    envelope: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    envelope_step: float = 0.0

    @property
    def speech_seconds(self) -> float:
        return float(sum(s.end - s.start for s in self.segments))

    def overall(self) -> Prediction | None:
        """The recording's emotion: segment probabilities averaged, weighted by duration
        (None when no speech was found)."""
        if not self.segments:
            return None
        weights = np.array([s.end - s.start for s in self.segments])
        probs = np.array([[s.probabilities[k] for k in s.probabilities] for s in self.segments])
        mean = (weights[:, None] * probs).sum(axis=0) / weights.sum()
        return Prediction.from_probabilities(mean, duration=self.duration, windows=self.segments)


class _Envelope:
    """Peak absolute amplitude per fixed step, accumulated block by block."""

    def __init__(self, duration: float) -> None:
        self.step = max(0.01, duration / ENVELOPE_BINS) if duration > 0 else 0.01
        self.size = max(1, int(round(self.step * TARGET_SR)))
        self.step = self.size / TARGET_SR
        self.peaks: list[np.ndarray] = []
        self.carry = np.zeros(0, np.float32)

    def add(self, audio: np.ndarray) -> None:
        audio = np.concatenate([self.carry, audio]) if self.carry.size else audio
        full = audio.size - audio.size % self.size
        if full:
            self.peaks.append(np.abs(audio[:full]).reshape(-1, self.size).max(axis=1))
        self.carry = audio[full:].copy()

    def result(self) -> np.ndarray:
        if self.carry.size:
            self.peaks.append(np.array([np.abs(self.carry).max()], np.float32))
            self.carry = np.zeros(0, np.float32)
        return np.concatenate(self.peaks).astype(np.float32) if self.peaks else np.zeros(0)


def file_blocks(path: str | os.PathLike, duration: float, block: float) -> Iterator[np.ndarray]:
    """The file at 16 kHz mono, ``block`` seconds at a time (AudioError names the file)."""
    count = max(1, math.ceil(duration / block - 1e-9))
    for k in range(count):
        yield load_audio(path, offset=k * block, duration=block, min_samples=0)


def score_segments(recognizer: EmotionRecognizer,
                   segments: list[SpeechSegment]) -> list[WindowPrediction]:
    """One prediction per segment; the segments run as one batch."""
    if not segments:
        return []
    probs = recognizer.probabilities([s.audio for s in segments])
    out = []
    for s, p in zip(segments, probs):
        label, confidence, mapping = summarise(p)
        out.append(WindowPrediction(s.start, s.end, label, confidence, mapping))
    return out


def build_timeline(recognizer: EmotionRecognizer, blocks: Iterable[np.ndarray], *,
                   source: str, duration: float, vad: VadConfig | None = None,
                   batch_size: int = 8, progress: bool = False) -> Timeline:
    """Segment ``blocks`` (16 kHz mono) and score the segments, ``batch_size`` at a time."""
    segmenter = SpeechSegmenter(vad or getattr(recognizer, "vad", None))
    envelope = _Envelope(duration)
    scored: list[WindowPrediction] = []
    pending: list[SpeechSegment] = []
    bar = tqdm(total=round(duration, 1), unit="s", desc=os.path.basename(source) or source,
               disable=not progress, dynamic_ncols=True, leave=False)
    with bar:
        for audio in blocks:
            envelope.add(audio)
            pending.extend(segmenter.feed(audio))
            if len(pending) >= batch_size:
                scored.extend(score_segments(recognizer, pending))
                pending = []
            bar.update(round(audio.size / TARGET_SR, 1))
        pending.extend(segmenter.finish())
        scored.extend(score_segments(recognizer, pending))
    return Timeline(source, duration, tuple(scored), envelope.result(), envelope.step)


def timeline_of(recognizer: EmotionRecognizer, audio: str | os.PathLike | np.ndarray,
                sampling_rate: int | None = None, *, vad: VadConfig | None = None,
                batch_size: int = 8, block: float = 30.0, progress: bool = False) -> Timeline:
    """The timeline of a file (read block by block) or of an array (``sampling_rate`` needed)."""
    if isinstance(audio, (str, os.PathLike)):
        duration = audio_info(audio).duration
        return build_timeline(recognizer, file_blocks(audio, duration, block), source=str(audio),
                              duration=duration, vad=vad, batch_size=batch_size,
                              progress=progress)
    if sampling_rate is None:
        from ser.audio import AudioError
        raise AudioError("<array>", "an array needs its sampling_rate", "not_audio")
    clip = to_mono(audio, sampling_rate, target_sr=TARGET_SR, min_samples=0)
    size = int(block * TARGET_SR)
    blocks = (clip[i:i + size] for i in range(0, clip.size, size))
    return build_timeline(recognizer, blocks, source="<array>", duration=clip.size / TARGET_SR,
                          vad=vad, batch_size=batch_size, progress=progress)


__all__ = ["Timeline", "build_timeline", "file_blocks", "score_segments", "timeline_of"]
