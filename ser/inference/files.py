"""Command-line inputs to a list of files, and the true label a file's name may carry."""

from __future__ import annotations

import errno
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ser.audio import AUDIO_EXTENSIONS
from ser.data.kaggle import parse_kaggle_name
from ser.data.ravdess import parse_ravdess_name
from ser.labels import LABELS

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Unresolved:
    """A command-line argument, or a folder found in one, that gives no file to read: reported
    as a failed row."""

    source: str
    error: str


class ExpandedInputs(NamedTuple):
    """``files`` to predict, ``unresolved`` rows to report as failed, and ``skipped``: files
    found in folders without an audio extension (listed in a note, not predicted)."""

    files: list[str]
    unresolved: list[Unresolved]
    skipped: list[str]


def expand_inputs(arguments: list[str]) -> ExpandedInputs:
    """Files, folders (recursive, audio extensions only) and glob patterns to files, in the
    order given (folders and globs sorted), each file once.

    A file named explicitly is taken whatever its extension (its content decides); an argument
    that matches nothing is returned as :class:`Unresolved`, so it is reported, not dropped.
    Nothing found in a folder is dropped in silence: an entry with an audio extension is kept
    even when it cannot be read (a dangling link, a file without read permission), so decoding
    reports it with its reason; a sub-folder that cannot be listed is Unresolved; other files
    are returned in ``skipped``.
    """
    files: list[str] = []
    unresolved: list[Unresolved] = []
    skipped: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            found, problems, others = walk_folder(path)
            unresolved.extend(problems)
            skipped.extend(others)
            if not found and not problems:
                unresolved.append(Unresolved(argument, f"{argument}: folder holds no audio files "
                                             f"({', '.join(AUDIO_EXTENSIONS)})"))
            for item in found:
                add(item)
        elif os.path.lexists(path) or not (_GLOB_CHARS & set(argument)):
            add(str(path))  # a missing plain path is passed on: decoding reports "file not found"
        else:
            matches = sorted(m for m in glob.glob(str(path), recursive=True)
                             if not os.path.isdir(m))
            if not matches:
                unresolved.append(Unresolved(argument, f"{argument}: no file matches"))
            for item in matches:
                add(item)
    return ExpandedInputs(files, unresolved, skipped)


def walk_folder(folder: Path) -> tuple[list[str], list[Unresolved], list[str]]:
    """``(audio entries, folders that cannot be listed, other files)`` under ``folder``, sorted.

    Links to folders are followed once (a link loop is listed, not walked again); entries that
    are not folders and carry an audio extension are returned even when they are dangling links
    or unreadable, so that the reader names them with the reason.
    """
    found: list[str] = []
    others: list[str] = []
    problems: list[Unresolved] = []
    visited: set[tuple[int, int]] = set()

    def refused(exc: OSError) -> None:
        where = exc.filename or str(folder)
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else (
            (exc.strerror or type(exc).__name__).lower())
        problems.append(Unresolved(str(where), f"{where}: folder cannot be listed ({reason}); "
                                   "the files in it were not searched"))

    for current, dirs, names in os.walk(folder, onerror=refused, followlinks=True):
        try:
            st = os.stat(current)
        except OSError as exc:
            refused(exc)
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:
            problems.append(Unresolved(current, f"{current}: a link back to a folder already "
                                       "searched (a loop); not searched again"))
            dirs[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in names:
            entry = os.path.join(current, name)
            (found if Path(name).suffix.lower() in AUDIO_EXTENSIONS else others).append(entry)
    return sorted(found), problems, sorted(others)


def true_label(path: str) -> str | None:
    """The label a file's name carries: the emotion of a Kaggle training name, or the class of
    a RAVDESS code (None for calm and surprised, which have none); None for other names."""
    kaggle = parse_kaggle_name(path)
    if kaggle is not None and kaggle.emotion in LABELS:
        return kaggle.emotion
    ravdess = parse_ravdess_name(path)
    if ravdess is not None:
        return ravdess.label
    return None


def note_skipped(skipped: list[str]) -> None:
    """Say on stderr which files found in folders were not taken (no audio extension)."""
    if skipped:
        print(f"note: {len(skipped)} files without an audio extension "
              f"({', '.join(AUDIO_EXTENSIONS)}) in the folders were not predicted: "
              f"{', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}", file=sys.stderr)
