"""``ser inspect``'s figure: files per class (``class_distribution.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ser.figures import new_figure, save_figure


def class_distribution(counts: dict[str, int], title: str, target: Path,
                       unmapped: Sequence[str] = ()) -> None:
    """One bar per class with its count on top; classes in ``unmapped`` (RAVDESS emotions
    without one of the six labels) in grey."""
    fig = new_figure(figsize=(max(6.0, 0.9 * len(counts) + 2), 4.5), layout="constrained")
    ax = fig.add_subplot()
    names = list(counts)
    colors = ["#bbbbbb" if n in unmapped else "#4c72b0" for n in names]
    bars = ax.bar(names, [counts[n] for n in names], color=colors)
    ax.bar_label(bars, labels=[str(counts[n]) for n in names], padding=2)
    ax.set_title(title)
    ax.set_xlabel("class")
    ax.set_ylabel("files")
    ax.margins(y=0.12)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, target, dpi=100, tight=False)
