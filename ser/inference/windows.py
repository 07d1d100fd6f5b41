"""Sliding windows over long recordings, read window by window so memory stays bounded.

A 10-minute recording at 48 kHz stereo is 230 MB as float32; decoding it whole to classify it
would cost more memory than the model. Each window is decoded on its own with
``load_audio(offset=, duration=)`` (libsndfile seeks, so only that slice is read), so the peak
memory of a long file is that of ``batch_size`` windows, whatever its length.

Each window gets its own prediction; the whole recording's is the **mean of the window
probabilities** (each window weighted equally) and its argmax (:func:`score_windows`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ser.audio import load_audio
from ser.inference.results import Prediction, WindowPrediction, summarise


@dataclass(frozen=True)
class WindowPlan:
    """When a recording counts as long, and how it is cut.

    ``threshold``: recordings longer than this (seconds) are cut into windows of ``window``
    seconds every ``hop`` seconds; the last window is aligned to the end of the recording, so
    the windows cover it entirely and all have the same length.
    """

    window: float = 4.0
    hop: float = 2.0
    threshold: float = 20.0

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ValueError(f"window must be positive, got {self.window}")
        if not 0 < self.hop <= self.window:
            raise ValueError(f"hop must be in (0, window={self.window}], got {self.hop}")
        if not self.threshold >= self.window:
            raise ValueError(f"the long-recording threshold ({self.threshold} s) must be at "
                             f"least the window ({self.window} s)")

    def is_long(self, duration: float) -> bool:
        return not math.isnan(duration) and duration > self.threshold

    def starts(self, duration: float) -> list[float]:
        """Window start times (seconds) covering ``[0, duration]``."""
        if duration <= self.window:
            return [0.0]
        count = int(math.floor((duration - self.window) / self.hop + 1e-9)) + 1
        starts = [round(i * self.hop, 6) for i in range(count)]
        last = round(duration - self.window, 6)
        if last - starts[-1] > 1e-6:
            starts.append(last)
        return starts


def file_windows(path: str | os.PathLike, starts: list[float], window: float, *,
                 target_sr: int) -> Iterator[np.ndarray]:
    """Decode one window at a time (raises AudioError naming the file for a broken window)."""
    size = int(round(window * target_sr))
    for start in starts:
        yield load_audio(path, offset=start, duration=window, target_sr=target_sr)[:size]


def array_windows(audio: np.ndarray, starts: list[float], window: float, *,
                  sampling_rate: int) -> Iterator[np.ndarray]:
    """Windows of audio already in memory (mono, at the model's rate)."""
    size = int(round(window * sampling_rate))
    for start in starts:
        first = int(round(start * sampling_rate))
        yield audio[first:first + size]


def score_windows(probabilities: Callable[[Sequence[np.ndarray]], np.ndarray],
                  windows: Iterable[np.ndarray], starts: list[float], duration: float, *,
                  window: float, batch_size: int) -> Prediction:
    """The prediction of a recording from its windows, scored ``batch_size`` at a time by
    ``probabilities`` (clips -> [N, 6]); one :class:`WindowPrediction` per window."""
    rows: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    for clip in windows:
        pending.append(clip)
        if len(pending) == batch_size:
            rows.append(probabilities(pending))
            pending = []
    if pending:
        rows.append(probabilities(pending))
    probs = np.concatenate(rows)
    per_window = []
    for start, p in zip(starts, probs):
        label, confidence, mapping = summarise(p)
        end = min(start + window, duration)
        per_window.append(WindowPrediction(start, round(end, 6), label, confidence, mapping))
    return Prediction.from_probabilities(probs.mean(axis=0), duration=duration,
                                         windows=tuple(per_window))
