"""Corpus folders: which layout a folder is in, the audio files it holds, and their headers.

Why one module: ``ser inspect``, ``ser audit``, training and inference all look at folders of
audio, and they must agree on what a Kaggle root or a RAVDESS root is and read file headers the
same way. Layouts: Kaggle (``train.csv``/``test.csv`` with ``train/``/``test/``, read by
:mod:`ser.data.kaggle`), RAVDESS (``Actor_XX`` folders in the root or one level down, read by
:mod:`ser.data.ravdess`), or a plain folder of audio files (searched recursively). A run's
``split.csv`` is read by :func:`ser.data.splits.read_split_file`, next to its writer.

Headers are read on a thread pool (libsndfile releases the GIL, and header reads wait on the
disk, not the CPU), so thousands of files take seconds; no audio is decoded. A header that cannot
be read is a result with its reason, never an exception: damage inside the audio data shows only
when the file is decoded.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ser.audio import AUDIO_EXTENSIONS, AudioError, AudioInfo, audio_info
from ser.data.kaggle import load_kaggle
from ser.data.ravdess import find_actor_dirs, load_ravdess

log = logging.getLogger(__name__)

KAGGLE = "kaggle"
RAVDESS = "ravdess"
FOLDER = "folder"
# Header reads wait on the disk, not the CPU: more threads than cores pay off.
HEADER_THREADS = 16


# --------------------------------------------------------------------------------------------
# Layouts and files


def detect_layout(root: str | os.PathLike, *, train_csv_only: bool = False) -> str | None:
    """"kaggle", "ravdess" or None; Kaggle wins when a folder looks like both.

    A Kaggle root has train.csv or test.csv (``train_csv_only``: train.csv, for callers that
    list its training files); a RAVDESS root has Actor_XX folders in it or one level down.
    """
    path = Path(root)
    markers = ("train.csv",) if train_csv_only else ("train.csv", "test.csv")
    if any((path / name).is_file() for name in markers):
        return KAGGLE
    try:
        find_actor_dirs(path)
    except OSError:  # FileNotFoundError: no Actor_XX folders; others: the folder is unreadable
        return None
    return RAVDESS


def corpus_files(root: str | os.PathLike, *, training: bool = False) -> tuple[str, list[str]]:
    """(layout, absolute paths): layout is 'kaggle', 'ravdess' or 'folder'.

    The first two are read through their loaders (the files the project actually uses: train and
    test, or train only), any other folder recursively. ``training``: the folder is what a model
    trained on, so of a Kaggle root only train/ counts (its test/ files have no labels and were
    never trained on).

    Raises FileNotFoundError when ``root`` is not a folder or holds no audio file.
    """
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {'not a folder' if path.exists() else 'does not exist'}")
    layout = detect_layout(path, train_csv_only=True)
    if layout == KAGGLE:
        files = list(load_kaggle(path, "train")["path"])
        if not training and (path / "test.csv").is_file():
            files += list(load_kaggle(path, "test")["path"])
        return KAGGLE, files
    if layout == RAVDESS:
        return RAVDESS, list(load_ravdess(path, actors="all").frame["path"])
    files = sorted(str(p) for p in path.rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(
            f"{path}: no Kaggle layout (train.csv), no RAVDESS Actor_XX folders and no audio "
            f"files ({', '.join(AUDIO_EXTENSIONS)}) in it or below it")
    return FOLDER, files


# --------------------------------------------------------------------------------------------
# Headers


def read_header(path: str) -> AudioInfo | AudioError:
    """The header of one file, or why it cannot be read (as an AudioError, not raised)."""
    try:
        return audio_info(path)
    except AudioError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 — one odd file must not end a scan of thousands
        return AudioError(path, f"header cannot be read ({type(exc).__name__}: {exc})", "not_audio")


def read_headers(paths: Sequence[str], workers: int | None = None,
                 ) -> list[AudioInfo | AudioError]:
    """:func:`read_header` of every file, in order, on ``workers`` threads (default
    :data:`HEADER_THREADS`)."""
    if not paths:
        return []
    workers = max(1, min(workers or HEADER_THREADS, len(paths)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(read_header, paths))


def header_scan(paths: list[str], *,
                threads: int = HEADER_THREADS) -> tuple[np.ndarray, dict[int, str]]:
    """Durations as :func:`header_durations`, and ``{position: warning}`` for the files that hold
    less than a whole recording (:mod:`ser.truncation`), each logged once:
    such a file still decodes, so nothing else would tell that its clip is only a part."""
    infos = read_headers(paths, threads)
    durations = np.fromiter((math.nan if isinstance(i, AudioError) else i.duration
                             for i in infos), dtype=np.float64, count=len(paths))
    warnings = {i: info.warning for i, info in enumerate(infos)
                if not isinstance(info, AudioError) and info.warning is not None}
    for i, warning in warnings.items():
        log.warning("%s: %s", paths[i], warning)
    bad = int(np.isnan(durations).sum())
    if bad:
        first = paths[int(np.flatnonzero(np.isnan(durations))[0])]
        log.warning("%d of %d files have unreadable headers (first: %s); each will be reported "
                    "with its reason when loaded", bad, len(paths), first)
    return durations, warnings


def header_durations(paths: list[str], *, threads: int = HEADER_THREADS) -> np.ndarray:
    """Seconds per file from the headers (no decoding); NaN where the header cannot be read.

    A NaN keeps the file in the frame so that its error is reported, with its reason, when it is
    loaded; the samplers treat it as length 0. Files cut short are logged (see header_scan).
    """
    return header_scan(paths, threads=threads)[0]
