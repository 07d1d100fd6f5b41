"""Prediction results as rows, table lines, CSV and JSON (the ``predictions.csv`` contract).

CSV: one row per file, columns ``path,pred,confidence,p_marah,...,p_sedih,error,warning`` then
``true,correct`` (filled where the name gives the label; ``warning``: a prediction that covers
only part of the file, e.g. a WAV, Ogg or MP3 cut short, see :mod:`ser.truncation`); a long
recording's row holds its whole-file prediction (mean of its windows). Its windows go to an optional second CSV
(``path,start,end,pred,confidence,p_*``). JSON: ``{"model", "n_files", "n_failed", "files"}``,
each file a record with the CSV columns plus ``duration`` and ``windows`` (a list of
``{start, end, pred, confidence, p_*}``; empty for short files).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ser.inference.files import true_label
from ser.inference.results import Prediction, Result
from ser.labels import LABELS

PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{label}" for label in LABELS)
COLUMNS: tuple[str, ...] = ("path", "pred", "confidence", *PROB_COLUMNS, "error", "warning")
TRUTH_COLUMNS: tuple[str, ...] = ("true", "correct")
WINDOW_COLUMNS: tuple[str, ...] = ("path", "start", "end", "pred", "confidence", *PROB_COLUMNS)


@dataclass(frozen=True)
class FileResult:
    """A file's outcome with the true label its name gives (None where unknown)."""

    path: str
    prediction: Prediction | None
    error: str | None
    true: str | None

    @classmethod
    def of(cls, result: Result) -> FileResult:
        return cls(result.source, result.prediction, result.error, true_label(result.source))

    @property
    def warning(self) -> str | None:
        return self.prediction.warning if self.prediction is not None else None

    @property
    def correct(self) -> bool | None:
        if self.true is None or self.prediction is None:
            return None
        return self.prediction.label == self.true

    def row(self) -> dict[str, Any]:
        p = self.prediction
        row: dict[str, Any] = {"path": self.path, "pred": p.label if p else "",
                               "confidence": p.confidence if p else None}
        for column, label in zip(PROB_COLUMNS, LABELS):
            row[column] = p.probabilities[label] if p else None
        row["error"] = self.error or ""
        row["warning"] = self.warning or ""
        row["true"] = self.true or ""
        row["correct"] = self.correct
        return row

    def record(self) -> dict[str, Any]:
        record = self.row()
        record["error"] = self.error  # JSON says null where CSV leaves a cell empty
        record["warning"] = self.warning
        record["true"] = self.true
        p = self.prediction
        record["duration"] = p.duration if p else None
        record["windows"] = [
            {"start": w.start, "end": w.end, "pred": w.label, "confidence": w.confidence,
             **{c: w.probabilities[label] for c, label in zip(PROB_COLUMNS, LABELS)}}
            for w in (p.windows if p else ())
        ]
        return record


def table_line(result: FileResult) -> str:
    """The original project's line: ``File: X | True: Y | Predicted: Z (0.98) ✓``."""
    name = os.path.basename(result.path) or result.path
    if result.prediction is None:
        return f"File: {name} | Failed: {result.error}"
    p = result.prediction
    line = f"File: {name} | "
    if result.true is not None:
        line += f"True: {result.true} | "
    line += f"Predicted: {p.label} ({p.confidence:.2f})"
    if result.true is not None:
        line += " ✓" if result.correct else " ✗"
    if p.windows:
        line += f" | {len(p.windows)} windows"
    if p.warning:
        line += f" | warning: {p.warning}"
    return line


def summary(results: list[FileResult]) -> str:
    failed = [r for r in results if r.prediction is None]
    lines = [f"{len(results)} files, {len(failed)} failed" + (":" if failed else "")]
    lines += [f"  {r.error}" for r in failed]
    warned = [r for r in results if r.warning]
    if warned:
        lines.append(f"{len(warned)} predicted with a warning:")
        lines += [f"  {r.path}: {r.warning}" for r in warned]
    known = [r for r in results if r.correct is not None]
    if known:
        right = sum(bool(r.correct) for r in known)
        lines.append(f"accuracy on the {len(known)} files whose name gives the label: "
                     f"{right}/{len(known)} ({right / len(known):.1%})")
    return "\n".join(lines)


def write_results(results: list[FileResult], out: Path, *, model: str = "") -> Path:
    """CSV or JSON, by the file's suffix."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        columns = list(COLUMNS) + list(TRUTH_COLUMNS)
        frame = pd.DataFrame([r.row() for r in results], columns=columns)
        frame["correct"] = frame["correct"].astype("boolean")
        frame.to_csv(out, index=False)
    elif suffix == ".json":
        payload = {"model": model, "n_files": len(results),
                   "n_failed": sum(r.prediction is None for r in results),
                   "n_warnings": sum(bool(r.warning) for r in results),
                   "files": [r.record() for r in results]}
        out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"--out must end in .csv or .json, got {out.name}")
    return out


def write_windows(results: Iterable[FileResult], out: Path) -> Path:
    """One row per window of every long recording."""
    rows = []
    for r in results:
        for w in (r.prediction.windows if r.prediction else ()):
            rows.append({"path": r.path, "start": w.start, "end": w.end, "pred": w.label,
                         "confidence": w.confidence,
                         **{c: w.probabilities[label] for c, label in zip(PROB_COLUMNS, LABELS)}})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(WINDOW_COLUMNS)).to_csv(out, index=False)
    return out
