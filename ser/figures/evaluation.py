"""The evaluation folder's figures, each written as a PNG under the run's ``figures/``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.evaluation.metrics_json import scored, summary_of, unmapped
from ser.figures import confusion_figure, new_figure, save_figure
from ser.labels import LABELS, RAVDESS_UNMAPPED


def overview(frame: pd.DataFrame, path: Path, title: str) -> Path:
    """One RAVDESS figure: share correct per emotion, where calm and surprised went, and the
    row-normalised confusion heatmap of the six classes."""
    fig = new_figure(figsize=(22, 5))
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    rows = scored(frame)
    share = rows.assign(ok=rows["true"] == rows["pred"]).groupby("true")["ok"].mean()
    values = [float(share.get(label, np.nan)) for label in LABELS]
    summary = summary_of(frame)
    ax = axes[0]
    ax.bar(LABELS, np.nan_to_num(values), color="tab:green")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share correct")
    accuracy = summary["accuracy"]
    ax.set_title(f"share correct: {accuracy:.1%} of {summary['n']}" if summary["n"]
                 else "share correct: no scored files")
    ax.tick_params(axis="x", rotation=45)
    where = unmapped(frame)
    for ax, emotion in zip(axes[1:3], RAVDESS_UNMAPPED):
        counts = [where[emotion][label] for label in LABELS]
        ax.bar(LABELS, counts, color="tab:orange")
        ax.set_title(f"where {emotion} went (n={sum(counts)})")
        ax.set_ylabel("files")
        ax.tick_params(axis="x", rotation=45)
    confusion_figure(summary["confusion"]["matrix"], LABELS, ax=axes[3])
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def confusion(summary: Mapping[str, Any], path: Path, title: str) -> Path:
    fig = confusion_figure(summary["confusion"]["matrix"], LABELS, title=title)
    save_figure(fig, path)
    return path


def accuracy_bars(table: Mapping[str, Mapping[str, Any]], path: Path, title: str,
                  xlabel: str) -> Path:
    """WA and UA per group, with the group's n under its name."""
    names = list(table)
    wa = [table[k]["accuracy"] for k in names]
    ua = [table[k]["ua"] for k in names]
    x = np.arange(len(names))
    fig = new_figure(figsize=(max(4.0, 0.7 * len(names) + 2), 3.8))
    ax = fig.subplots()
    ax.bar(x - 0.2, np.nan_to_num(wa), width=0.4, label="accuracy (WA)")
    ax.bar(x + 0.2, np.nan_to_num(ua), width=0.4, label="UA")
    ax.set_xticks(x, [f"{k}\n(n={table[k]['n']})" for k in names])
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def prediction_distribution(counts: Mapping[str, Mapping[str, float]], path: Path,
                            title: str) -> Path:
    """Unlabelled data: how many files each class got, and their mean confidence."""
    n = [counts[label]["n"] for label in LABELS]
    conf = [counts[label]["mean_confidence"] for label in LABELS]
    fig = new_figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.bar(LABELS, n, color="tab:blue")
    ax.set_ylabel("files predicted")
    ax.set_title(title)
    twin = ax.twinx()
    twin.plot(LABELS, np.nan_to_num(conf), "o-", color="tab:red")
    twin.set_ylim(0, 1)
    twin.set_ylabel("mean confidence", color="tab:red")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def noise_curve(rows: list[Mapping[str, Any]], path: Path) -> Path:
    """Scores against SNR; the clean score is drawn as dashed lines."""
    noisy = [r for r in rows if r["snr_db"] is not None]
    clean = next((r for r in rows if r["snr_db"] is None), None)
    fig = new_figure(figsize=(6, 4))
    ax = fig.subplots()
    snrs = [r["snr_db"] for r in noisy]
    for key, colour in (("accuracy", "tab:blue"), ("ua", "tab:orange"),
                        ("macro_f1", "tab:green")):
        ax.plot(snrs, [r[key] for r in noisy], "o-", color=colour, label=key)
        if clean is not None:
            ax.axhline(clean[key], color=colour, linestyle="--", linewidth=0.8)
    ax.set_xlabel("SNR (dB, white noise); dashed: clean")
    ax.set_ylim(0, 1)
    ax.set_title("Scores under added noise")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path
