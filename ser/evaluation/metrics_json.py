"""metrics.json figures from a predictions table, so every number can be recomputed from it.

A row is *scored* when it has a true label (one of the six) and a prediction; failed files and
RAVDESS calm/surprised are left out of the scores (the latter reported under ``unmapped``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ser.labels import LABEL2ID, LABELS, RAVDESS_UNMAPPED
from ser.metrics import classification_summary


def _has(series: pd.Series) -> pd.Series:
    return series.notna() & series.astype(str).ne("")


def scored(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a true label among the six and a prediction."""
    if "true" not in frame.columns:
        return frame.iloc[0:0]
    keep = _has(frame["true"]) & _has(frame["pred"]) & frame["true"].isin(LABELS)
    return frame[keep]


def summary_of(frame: pd.DataFrame) -> dict[str, Any]:
    """classification_summary over the scored rows (``n`` 0 and NaN scores when none)."""
    rows = scored(frame)
    return classification_summary([LABEL2ID[t] for t in rows["true"]],
                                   [LABEL2ID[p] for p in rows["pred"]])


def breakdown(frame: pd.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """``{value: {n, accuracy, ua}}`` of the scored rows, per value of ``column`` (sorted)."""
    rows = scored(frame)
    out: dict[str, dict[str, Any]] = {}
    if column not in rows.columns:
        return out
    for value, part in sorted(rows.groupby(rows[column].astype(str)), key=lambda kv: _key(kv[0])):
        s = summary_of(part)
        out[str(value)] = {"n": s["n"], "accuracy": s["accuracy"], "ua": s["ua"]}
    return out


def _key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def unmapped(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Where the predictions of RAVDESS emotions without a class went: ``{calm: {label: n}}``."""
    out: dict[str, dict[str, int]] = {}
    for emotion in RAVDESS_UNMAPPED:
        rows = frame[(frame.get("emotion") == emotion) & _has(frame["pred"])] \
            if "emotion" in frame.columns else frame.iloc[0:0]
        counts = rows["pred"].value_counts()
        out[emotion] = {label: int(counts.get(label, 0)) for label in LABELS}
    return out


def failed(frame: pd.DataFrame) -> list[dict[str, str]]:
    rows = frame[_has(frame["error"])]
    return [{"path": str(p), "error": str(e)} for p, e in zip(rows["path"], rows["error"])]


def failure_kinds(fails: list[dict[str, str]]) -> dict[str, int]:
    """How many failed rows per kind of reason (``missing_file``, ``unknown_label``, audio
    errors ...): the word before the first colon after the path, else ``other``."""
    counts: dict[str, int] = {}
    for fail in fails:
        text = fail["error"]
        if text.startswith(fail["path"]):
            text = text[len(fail["path"]):].lstrip(": ")
        head = text.split(":", 1)[0].strip()
        kind = head if head and " " not in head and len(head) < 40 else "unreadable"
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def prediction_counts(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per predicted label: how many files and their mean confidence (unlabelled test sets)."""
    rows = frame[_has(frame["pred"])]
    out = {}
    for label in LABELS:
        part = rows[rows["pred"] == label]
        out[label] = {"n": int(len(part)),
                      "mean_confidence": float(part["confidence"].mean()) if len(part) else
                      float("nan")}
    return out


def metrics_of(frame: pd.DataFrame, by: tuple[str, ...], *, ravdess: bool) -> dict[str, Any]:
    """The whole metrics.json block of one predictions table."""
    metrics: dict[str, Any] = summary_of(frame)
    fails = failed(frame)
    # Every input row is in the table: scored, failed (with its reason) or unscored by design
    # (no label among the six: RAVDESS calm/surprised, an unlabelled test set).
    metrics["n_rows"] = int(len(frame))
    metrics["n_files"] = int(len(frame))  # earlier name of n_rows, kept for readers of old runs
    metrics["n_scored"] = int(metrics["n"])
    metrics["n_failed"] = len(fails)
    metrics["failed_reasons"] = failure_kinds(fails)
    metrics["failed"] = fails
    for column in by:
        metrics[f"per_{column}"] = breakdown(frame, column)
    if ravdess:
        metrics["unmapped"] = unmapped(frame)
    if metrics["n"] == 0:
        metrics["predicted"] = prediction_counts(frame)
    return metrics


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The four figures compared across noise levels and logged as scalars."""
    out: dict[str, float] = {"n": int(metrics["n"])}
    out.update({k: (float(metrics[k]) if metrics.get(k) is not None else float("nan"))
                for k in ("accuracy", "ua", "macro_f1")})
    return out


def nan_to_none(value: Any) -> Any:
    """JSON has no NaN: an empty evaluation writes null."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_to_none(v) for v in value]
    return value
