"""What ``ser inspect`` found, as data: per part (a Kaggle split, RAVDESS speech) the count tables
and what the audio headers say, then the problems, notes, figure and verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.corpus_report.text import report_text
from ser.data.problems import Problem


@dataclass
class AudioSummary:
    """What the headers of a set of files say."""

    files: int = 0
    readable: int = 0
    sample_rates: dict[int, int] = field(default_factory=dict)
    channels: dict[int, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)

    @property
    def duration_stats(self) -> tuple[float, float, float, float] | None:
        """(min, median, max, total) in seconds, None without readable files."""
        if not self.durations:
            return None
        d = np.asarray(self.durations, dtype=float)
        return float(d.min()), float(np.median(d)), float(d.max()), float(d.sum())


@dataclass
class Part:
    """One split of a Kaggle corpus, or the speech files of a RAVDESS one."""

    name: str
    heading: str
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    audio: AudioSummary = field(default_factory=AudioSummary)


@dataclass
class InspectReport:
    """Everything ``ser inspect`` found in one corpus folder; ``fatal``: unusable as it is."""

    root: Path
    layout: str | None
    parts: list[Part] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    figure: Path | None = None
    notes: list[str] = field(default_factory=list)
    fatal: bool = False
    fatal_reason: str | None = None

    @property
    def readable(self) -> int:
        return sum(p.audio.readable for p in self.parts)

    def to_text(self, max_per_kind: int | None = 50) -> str:
        """The report as plain text; at most ``max_per_kind`` problems of each kind (None: all)."""
        return report_text(self, max_per_kind)
