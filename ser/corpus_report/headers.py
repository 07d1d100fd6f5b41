"""What the audio headers of a corpus say, read on a thread pool (no decoding): a table of one
row per file for notebooks, and the totals and problems for ``ser inspect``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ser.audio import MIN_SAMPLES, TARGET_SR, AudioError
from ser.corpus_report.report import AudioSummary
from ser.data.corpora import read_headers
from ser.data.problems import Problem


AUDIO_COLUMNS: tuple[str, ...] = ("path", "sample_rate", "channels", "frames", "duration", "error")


def audio_table(paths: Iterable[str], workers: int | None = None) -> pd.DataFrame:
    """One row per file, in the order given, from its header (no decoding).

    Columns :data:`AUDIO_COLUMNS`: ``sample_rate``, ``channels`` and ``frames`` are nullable
    integers, ``duration`` seconds (float); a file whose header cannot be read has them empty and
    the reason in ``error`` (None otherwise). For per-file views (duration histograms, rates per
    class) that :func:`summarise_audio` only gives as totals; join it to a corpus index
    (``load_kaggle(root)`` or ``load_ravdess(root, "all").frame``) on ``path``.
    """
    paths = [str(p) for p in paths]
    infos = read_headers(paths, workers)
    good = [None if isinstance(i, AudioError) else i for i in infos]
    return pd.DataFrame({
        "path": pd.Series(paths, dtype=object),
        "sample_rate": pd.array([i.sample_rate if i else None for i in good], dtype="Int64"),
        "channels": pd.array([i.channels if i else None for i in good], dtype="Int64"),
        "frames": pd.array([i.frames if i else None for i in good], dtype="Int64"),
        "duration": pd.Series([i.duration if i else np.nan for i in good], dtype=float),
        "error": pd.Series([f"{i.reason} ({i.kind})" if isinstance(i, AudioError) else None
                            for i in infos], dtype=object),
    }, columns=list(AUDIO_COLUMNS))


def summarise_audio(paths: Sequence[str], workers: int | None = None,
                    ) -> tuple[AudioSummary, list[Problem]]:
    """Header of every file (threads: libsndfile releases the GIL); bad files become problems."""
    results = read_headers(paths, workers)
    summary = AudioSummary(files=len(paths))
    rates: Counter[int] = Counter()
    channels: Counter[int] = Counter()
    problems: list[Problem] = []
    for path, info in zip(paths, results):
        if isinstance(info, AudioError):
            problems.append(Problem(
                "unreadable_audio", f"{path}: {info.reason} ({info.kind}).",
                "Replace the file with a good copy or remove it (and its CSV row); training and "
                "evaluation skip it.", path=path))
            continue
        summary.readable += 1
        rates[info.sample_rate] += 1
        channels[info.channels] += 1
        summary.durations.append(info.duration)
        samples = info.frames * TARGET_SR / info.sample_rate if info.sample_rate else 0
        if samples < MIN_SAMPLES:
            problems.append(Problem(
                "too_short",
                f"{path}: {info.duration * 1000:.0f} ms of audio; the backbone needs at least "
                f"{MIN_SAMPLES / TARGET_SR * 1000:.0f} ms.",
                "Replace or remove the file; training and evaluation skip it.", path=path))
    summary.sample_rates = dict(sorted(rates.items()))
    summary.channels = dict(sorted(channels.items()))
    return summary, problems
