"""What a prediction is: the top label, its probability and the six probabilities, per file
(:class:`Prediction`), per window of a long recording (:class:`WindowPrediction`), and per input
of a batch run, with the reason where there is none (:class:`Result`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.labels import LABELS


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
        label, confidence, mapping = summarise(probs)
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


def summarise(probs: np.ndarray) -> tuple[str, float, dict[str, float]]:
    """(top label, its probability, {label: probability}) of six probabilities in order."""
    probs = np.asarray(probs, dtype=np.float64)
    top = int(np.argmax(probs))
    return LABELS[top], float(probs[top]), {label: float(p) for label, p in zip(LABELS, probs)}


__all__ = ["Prediction", "Result", "WindowPrediction", "summarise"]
