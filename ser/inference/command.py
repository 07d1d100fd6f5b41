"""``ser predict``: predict files, folders and globs; print a line per file; write CSV/JSON.

Exit status: 0 when every file was predicted, 1 when any failed (each is named, with its
reason, in the summary at the end), 2 when the model cannot be loaded.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm import tqdm

from ser.inference.files import expand_inputs, note_skipped
from ser.inference.loading import ModelLoadError
from ser.inference.predictions_table import (
    FileResult,
    summary,
    table_line,
    write_results,
    write_windows,
)
from ser.inference.recognizer import EmotionRecognizer
from ser.inference.windows import WindowPlan

log = logging.getLogger(__name__)


def run_predict(
    model: str,
    inputs: list[str],
    *,
    out: Path | None = None,
    windows_out: Path | None = None,
    batch_size: int = 8,
    window: float = 4.0,
    hop: float = 2.0,
    long_threshold: float = 20.0,
    threads: int | None = None,
    workers: int | None = None,
    backbone: str | None = None,
    device: str | None = None,
    quantize: bool = False,
    trust_checkpoint: bool = False,
    raw_probabilities: bool = False,
    runtime: str = "auto",
    progress: bool | None = None,
) -> int:
    """Everything ``ser predict`` does; returns the exit status."""
    if out is not None and Path(out).suffix.lower() not in (".csv", ".json"):
        print(f"error: --out {out} must end in .csv or .json", file=sys.stderr)
        return 2
    if windows_out is not None and Path(windows_out).suffix.lower() != ".csv":
        print(f"error: --windows-out {windows_out} must end in .csv", file=sys.stderr)
        return 2
    try:
        WindowPlan(window=window, hop=hop, threshold=long_threshold)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files, unresolved, skipped = expand_inputs(inputs)
    note_skipped(skipped)
    try:
        recognizer = EmotionRecognizer.from_pretrained(
            model, device=device, backbone=backbone, threads=threads,
            trust_checkpoint=trust_checkpoint, quantize=quantize, window=window, hop=hop,
            raw_probabilities=raw_probabilities,
            long_threshold=long_threshold, runtime=runtime)
    except (ModelLoadError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2

    results: list[FileResult] = [FileResult(u.source, None, u.error, None) for u in unresolved]
    for line in map(table_line, results):
        print(line)
    bar = tqdm(total=len(files), unit="file", file=sys.stderr, disable=progress is False or (
        progress is None and not sys.stderr.isatty()), dynamic_ncols=True)
    with bar:
        for result in recognizer.predict_many(files, batch_size=batch_size, num_workers=workers):
            file_result = FileResult.of(result)
            results.append(file_result)
            bar.write(table_line(file_result), file=sys.stdout)
            bar.update(1)
    print(summary(results))
    if out is not None:
        print(f"predictions: {write_results(results, out, model=str(model))}")
    if windows_out is not None:
        print(f"windows: {write_windows(results, windows_out)}")
    return 1 if any(r.prediction is None for r in results) else 0
