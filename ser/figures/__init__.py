"""Every figure ser draws, and what they share: a pyplot-free figure, saving, the confusion matrix.

Why one package: training, evaluation, calibration, ``ser predict --timeline``, ``ser inspect``
and the notebooks draw the same confusion matrix, with the same look, from one place.

Figures are built with matplotlib's object API (:class:`~matplotlib.figure.Figure` on an Agg
canvas), never through pyplot, so importing or calling ser never switches the global backend
(a notebook's inline backend stays) and no figure stays open in pyplot after its caller drops
it. In a notebook, show a returned figure with ``display(fig)`` (or as a cell's last value);
``plt.show()`` shows only pyplot's own figures.

* :mod:`ser.figures.evaluation`: the evaluation folder's ``figures/*.png``
* :mod:`ser.figures.calibration`: the reliability diagram (training export and evaluation)
* :mod:`ser.figures.sweeps`: a sweep's scores against its swept parameters
* :mod:`ser.figures.timeline`: ``ser predict --timeline --plot``
* :mod:`ser.figures.corpus`: ``ser inspect``'s class distribution
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(**kwargs: Any) -> Figure:
    """A :class:`Figure` (``kwargs`` as for it) with its own Agg canvas, unknown to pyplot."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 110,
                tight: bool = True) -> None:
    """Write ``fig`` as a PNG; ``tight`` crops it to what is drawn."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)


def confusion_figure(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    title: str = "Confusion matrix (rows: true, normalised)",
    ax: Axes | None = None,
) -> Figure:
    """Row-normalised heatmap with the share and count in each cell."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    if ax is None:
        fig = new_figure(figsize=(1.1 * len(labels) + 2, 1.0 * counts.shape[0] + 1.5))
        ax = fig.subplots()
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
