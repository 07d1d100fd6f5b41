"""``ser predict --timeline --plot``: one file's emotions over time, above its waveform."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.patches import Rectangle

from ser.figures import new_figure, save_figure
from ser.labels import LABELS

if TYPE_CHECKING:  # only the type: drawing needs no model code
    from ser.inference.timeline import Timeline


def plot_timeline(timeline: Timeline, path: Path, *, title: str | None = None) -> Path:
    """Stacked emotion probabilities per segment over time (silence left blank, segments
    shaded), the waveform's envelope underneath."""
    fig = new_figure(figsize=(12, 5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    colours = matplotlib.colormaps["tab10"].colors
    for s in timeline.segments:
        low = 0.0
        for k, label in enumerate(LABELS):
            high = low + s.probabilities[label]
            top.fill_between([s.start, s.end], low, high, color=colours[k], linewidth=0,
                             step="pre")
            low = high
        for ax in (top, bottom):
            ax.axvspan(s.start, s.end, color="0.85", zorder=0)
        if s.end - s.start > timeline.duration / 60:
            top.text((s.start + s.end) / 2, 1.02, s.label, ha="center", va="bottom", fontsize=7)
    handles = [Rectangle((0, 0), 1, 1, color=colours[k]) for k in range(len(LABELS))]
    top.legend(handles, LABELS, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    top.set_ylim(0, 1.1)
    top.set_ylabel("probability")
    top.set_title(title or f"{timeline.source}: {len(timeline.segments)} speech segments, "
                  f"{timeline.speech_seconds:.1f} s of speech in {timeline.duration:.1f} s")
    env = timeline.envelope
    if env.size:
        t = (np.arange(env.size) + 0.5) * timeline.envelope_step
        bottom.fill_between(t, -env, env, color="0.3", linewidth=0)
    bottom.set_ylabel("waveform")
    bottom.set_xlabel("time (s)")
    bottom.set_xlim(0, max(timeline.duration, 1e-3))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path
