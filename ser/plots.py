"""Figures shared by training, evaluation and inspection; matplotlib without a display."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def confusion_figure(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    title: str = "Confusion matrix (rows: true, normalised)",
    ax: plt.Axes | None = None,
) -> Figure:
    """Row-normalised heatmap with the share and count in each cell."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * counts.shape[0] + 1.5))
    else:
        fig = ax.figure
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(counts.shape[1]), labels[: counts.shape[1]], rotation=45, ha="right")
    ax.set_yticks(range(counts.shape[0]), labels[: counts.shape[0]])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, f"{shares[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                    fontsize=7, color=colour)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
