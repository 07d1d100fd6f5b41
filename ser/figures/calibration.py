"""The reliability diagram of temperature scaling (``figures/reliability.png``), drawn at the
end of training and in an evaluation (:mod:`ser.calibration`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ser.calibration import N_BINS, confidence_bins, ece
from ser.figures import new_figure, save_figure


def reliability_diagram(sets: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                        path: Path, title: str) -> Path:
    """One panel per data set: accuracy per confidence bin, raw and calibrated, against the
    diagonal. ``sets``: name -> (raw probabilities, calibrated probabilities, labels)."""
    fig = new_figure(figsize=(4.2 * len(sets), 4.2))
    axes = fig.subplots(1, len(sets), squeeze=False)
    edges = np.linspace(0, 1, N_BINS + 1)
    for ax, (name, (raw, cal, labels)) in zip(axes[0], sets.items()):
        for probs, label, colour in ((raw, "raw", "tab:red"), (cal, "calibrated", "tab:blue")):
            bins = confidence_bins(probs, labels)
            xs, ys = [b[0] for b in bins], [b[1] for b in bins]
            ax.plot(xs, ys, "o-", color=colour,
                    label=f"{label} (ECE {ece(probs, labels):.3f})")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xticks(edges[::3])
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)",
               ylabel="accuracy", title=f"{name} (n={len(labels)})")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, tight=False)
    return path
