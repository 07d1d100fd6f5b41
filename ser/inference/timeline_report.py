"""``ser predict --timeline``: timelines of files as CSV rows, JSON and one PNG per file.

CSV: one row per speech segment, columns ``path,start,end,pred,confidence,p_marah,...,p_sedih``
(seconds from the file's start). A file without speech has no row; a file that cannot be read
has none either and is named, with its reason, in the summary (exit status 1). JSON:
``{"model", "n_files", "n_failed", "files": [{"path", "duration", "speech_seconds", "error",
"segments": [{start, end, pred, confidence, p_*}]}]}`` -- the same segments as the CSV.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from ser.audio import AudioError
from ser.inference.files import expand_inputs, note_skipped
from ser.inference.loading import ModelLoadError
from ser.inference.predictions_table import PROB_COLUMNS, WINDOW_COLUMNS
from ser.inference.timeline import Timeline
from ser.inference.vad import VadConfig
from ser.labels import LABELS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimelineResult:
    path: str
    timeline: Timeline | None
    error: str | None = None


def segment_rows(result: TimelineResult) -> list[dict[str, Any]]:
    rows = []
    for s in (result.timeline.segments if result.timeline else ()):
        rows.append({"path": result.path, "start": s.start, "end": s.end, "pred": s.label,
                     "confidence": s.confidence,
                     **{c: s.probabilities[label] for c, label in zip(PROB_COLUMNS, LABELS)}})
    return rows


def write_timelines(results: list[TimelineResult], out: Path, *, model: str = "") -> Path:
    """CSV (a row per segment) or JSON (a record per file), by the suffix."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        rows = [row for r in results for row in segment_rows(r)]
        pd.DataFrame(rows, columns=list(WINDOW_COLUMNS)).to_csv(out, index=False)
    elif out.suffix.lower() == ".json":
        files = []
        for r in results:
            t = r.timeline
            files.append({"path": r.path, "duration": t.duration if t else None,
                          "speech_seconds": t.speech_seconds if t else None, "error": r.error,
                          "segments": [{k: v for k, v in row.items() if k != "path"}
                                       for row in segment_rows(r)]})
        payload = {"model": model, "n_files": len(results),
                   "n_failed": sum(r.timeline is None for r in results), "files": files}
        out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"--out must end in .csv or .json, got {out.name}")
    return out


def plot_name(source: str, index: int) -> str:
    return f"{index:03d}_{Path(source).stem}.timeline.png"


def run_timeline(model: str, inputs: list[str], *, out: Path | None = None,
                 plot: Path | None = None, vad: VadConfig | None = None, batch_size: int = 8,
                 threads: int | None = None, backbone: str | None = None,
                 device: str | None = None, quantize: bool = False,
                 trust_checkpoint: bool = False, progress: bool | None = None,
                 raw_probabilities: bool = False, runtime: str = "auto") -> int:
    """Everything ``ser predict --timeline`` does; returns the exit status."""
    from ser.inference.recognizer import EmotionRecognizer

    if out is not None and Path(out).suffix.lower() not in (".csv", ".json"):
        print(f"error: --out {out} must end in .csv or .json", file=sys.stderr)
        return 2
    files, unresolved, skipped = expand_inputs(inputs)
    note_skipped(skipped)
    try:
        recognizer = EmotionRecognizer.from_pretrained(
            model, device=device, backbone=backbone, threads=threads,
            trust_checkpoint=trust_checkpoint, quantize=quantize, vad=vad,
            raw_probabilities=raw_probabilities, runtime=runtime)
    except (ModelLoadError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    show = progress if progress is not None else sys.stderr.isatty()
    results = [TimelineResult(u.source, None, u.error) for u in unresolved]
    for u in unresolved:
        print(f"File: {u.source} | Failed: {u.error}")
    for index, path in enumerate(tqdm(files, unit="file", disable=not show or len(files) < 2)):
        try:
            timeline = recognizer.timeline(path, batch_size=batch_size, progress=show)
        except AudioError as exc:
            results.append(TimelineResult(path, None, str(exc)))
            print(f"File: {path} | Failed: {exc}")
            continue
        results.append(TimelineResult(path, timeline))
        overall = timeline.overall()
        line = (f"File: {path} | {timeline.duration:.1f} s, {len(timeline.segments)} speech "
                f"segments ({timeline.speech_seconds:.1f} s of speech)")
        if overall is not None:
            line += f" | overall (duration-weighted mean of segments): {overall.label} " \
                    f"({overall.confidence:.2f})"
        print(line)
        if plot is not None:
            from ser.figures.timeline import plot_timeline

            print(f"plot: {plot_timeline(timeline, Path(plot) / plot_name(path, index))}")
    failed = [r for r in results if r.timeline is None]
    print(f"{len(results)} files, {len(failed)} failed" + (":" if failed else ""))
    for r in failed:
        print(f"  {r.error}")
    if out is not None:
        print(f"timeline: {write_timelines(results, out, model=str(model))}")
    return 1 if failed else 0


__all__ = ["TimelineResult", "run_timeline", "segment_rows", "write_timelines"]
