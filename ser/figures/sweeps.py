"""A sweep's scores against each swept parameter (``notebooks/03_sweeps.ipynb``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from ser.figures import new_figure

SWEEP_METRICS: tuple[str, ...] = ("val_ua_best", "ravdess_ua")


def sweep_figure(
    frame: pd.DataFrame,
    parameters: pd.DataFrame,
    *,
    metrics: Sequence[str] = SWEEP_METRICS,
    title: str | None = None,
) -> Figure:
    """One panel per swept parameter: each metric of ``metrics`` that the sweep has (a column of
    ``frame`` with a number in it) against the parameter's value, one point per job, a line
    through the mean per value; the best job (first row of ``frame`` with a number in the first
    metric present, as :func:`ser.sweeps.summarize_sweep` sorts) is ringed and named.

    ``frame`` is a sweep summary, ``parameters`` :func:`ser.sweeps.sweep_parameters` of it. With
    no swept parameter the metrics are drawn against the job number. Numbers spanning a factor of
    10 or more get a log axis; other values are categories in sorted order.
    """
    present = [m for m in metrics if m in frame.columns
               and pd.to_numeric(frame[m], errors="coerce").notna().any()]
    if not present:
        raise ValueError(f"the sweep has none of the metrics {list(metrics)} "
                         f"(columns: {list(frame.columns)})")
    if parameters.shape[1]:
        axes_of = {name: parameters[name] for name in parameters.columns}
    else:
        axes_of = {"job": frame["job"].astype(float)}
    scores = {m: pd.to_numeric(frame[m], errors="coerce") for m in present}
    scored = scores[present[0]].notna()
    best = frame.index[scored.to_numpy()][0] if scored.any() else None

    n = len(axes_of)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = new_figure(figsize=(5.0 * cols, 3.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, values) in zip(axes.flat, axes_of.items()):
        numeric = pd.api.types.is_numeric_dtype(values)
        if numeric:
            x = values.astype(float)
            positive = x[x.notna() & (x > 0)]
            if len(positive) == x.notna().sum() and len(positive) and \
                    positive.max() / positive.min() >= 10:
                ax.set_xscale("log")
            ticks = sorted(x.dropna().unique())
            if len(ticks) <= 8:  # a tick at each value tried, written short (3e-05, not 0.00003)
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
        else:
            order = sorted({str(v) for v in values if v is not None and v == v})
            x = values.map(lambda v: order.index(str(v)) if str(v) in order else math.nan)
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
        for colour, metric in zip(colours, present):
            y = scores[metric]
            ok = x.notna() & y.notna()
            ax.plot(x[ok], y[ok], "o", color=colour, alpha=0.6, label=metric)
            mean = y[ok].groupby(x[ok]).mean().sort_index()
            ax.plot(mean.index, mean.to_numpy(), "-", color=colour, linewidth=1)
            if best is not None and ok.get(best, False):
                ax.plot([x[best]], [y[best]], "o", markersize=13, markerfacecolor="none",
                        markeredgecolor="black", markeredgewidth=1.5)
        ax.set_xlabel(name)
        ax.set_ylabel("score")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title is None and best is not None:
        title = f"best: job {frame.loc[best, 'job']} (ringed)"
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
