"""Every file of an evaluation set to a row of the predictions table: as recorded, and with
added noise. A file that cannot be used is a row with its reason, and the others go on.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from tqdm import tqdm

from ser.audio import AudioError, load_audio
from ser.augment import add_noise
from ser.evaluation.data import META_COLUMNS, EvalSet
from ser.inference import EmotionRecognizer
from ser.inference.predictions_table import COLUMNS, TRUTH_COLUMNS, FileResult, table_line
from ser.inference.results import Result

NOISE_CHUNK = 64  # files decoded and noised at a time: memory stays bounded on all of RAVDESS


def _meta_columns(data: EvalSet) -> list[str]:
    return [c for c in META_COLUMNS[data.name] if c in data.frame.columns]


def predictions_table(data: EvalSet, results: list[FileResult]) -> pd.DataFrame:
    """The contract columns, then true/correct, then the dataset's metadata, in data order."""
    table = pd.DataFrame([r.row() for r in results], columns=[*COLUMNS, *TRUTH_COLUMNS])
    table["correct"] = table["correct"].astype("boolean")
    for column in _meta_columns(data):
        table[column] = data.frame[column].to_numpy()
    return table


def _file_results(data: EvalSet, results: list[Result]) -> list[FileResult]:
    paths = data.frame["path"].tolist()
    truths = data.frame["true"].tolist()
    return [FileResult(paths[r.index], r.prediction, r.error,
                       truths[r.index] if isinstance(truths[r.index], str) else None)
            for r in results]


def unusable(data: EvalSet) -> dict[int, Result]:
    """Rows that cannot be predicted (known before reading audio), as failed results."""
    errors = data.frame["error"] if "error" in data.frame.columns else pd.Series(dtype=object)
    paths = data.frame["path"].tolist()
    return {i: Result(i, paths[i], error=f"{paths[i]}: {e}")
            for i, e in errors.items() if isinstance(e, str) and e}


def predict_clean(recognizer: EmotionRecognizer, data: EvalSet, cfg: DictConfig) -> list[FileResult]:
    """Every row, with the first ``print_rows`` table lines and a progress bar; rows that
    cannot be used keep their reason and are not read."""
    bad = unusable(data)
    todo = [i for i in range(len(data.frame)) if i not in bad]
    paths = [data.frame["path"].iloc[i] for i in todo]
    shown = int(cfg.get("print_rows") or 0)
    progress = cfg.get("progress")
    bar = tqdm(total=len(paths), unit="file", file=sys.stderr, dynamic_ncols=True,
               disable=progress is False or (progress is None and not sys.stderr.isatty()))
    raw: list[Result] = list(bad.values())
    bar.update(len(bad))
    with bar:
        for result in recognizer.predict_many(paths, batch_size=cfg.batch_size,
                                              num_workers=cfg.get("num_workers")):
            result = Result(todo[result.index], result.source, result.prediction, result.error)
            raw.append(result)
            if len(raw) <= shown:
                bar.write(table_line(_file_results(data, [result])[0]), file=sys.stdout)
            bar.update(1)
    if len(raw) > shown > 0:
        print(f"... ({len(raw) - shown} more rows in predictions.csv)")
    raw.sort(key=lambda r: r.index)
    return _file_results(data, raw)


def predict_noisy(recognizer: EmotionRecognizer, data: EvalSet, snr_db: float, seed: int,
                  cfg: DictConfig) -> list[FileResult]:
    """Every file with white noise at ``snr_db``; the noise of a file depends only on the seed,
    the file's position and the SNR, so reruns give the same numbers."""
    paths = data.frame["path"].tolist()
    rate = recognizer.sampling_rate
    bad = unusable(data)
    out: list[Result] = list(bad.values())
    for start in range(0, len(paths), NOISE_CHUNK):
        items: list[tuple[np.ndarray, int]] = []
        where: list[int] = []
        for index in range(start, min(start + NOISE_CHUNK, len(paths))):
            if index in bad:
                continue
            try:
                clip = load_audio(paths[index], target_sr=rate)
            except AudioError as exc:
                out.append(Result(index, paths[index], error=str(exc)))
                continue
            rng = np.random.default_rng([seed, index, int(round((snr_db + 1000) * 1000))])
            items.append((add_noise(clip, float(snr_db), rng), rate))
            where.append(index)
        for r in recognizer.predict_many(items, batch_size=cfg.batch_size, num_workers=0):
            index = where[r.index]
            out.append(Result(index, paths[index], r.prediction,
                              f"{paths[index]}: {r.error}" if r.error else None))
    out.sort(key=lambda r: r.index)
    return _file_results(data, out)
