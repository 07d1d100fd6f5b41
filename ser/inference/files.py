"""Command-line inputs to a list of files, and the true label a file's name may carry."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ser.data.kaggle import parse_kaggle_name
from ser.data.ravdess import parse_ravdess_name
from ser.labels import LABELS

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Unresolved:
    """A command-line argument that names no file: reported as a failed row."""

    source: str
    error: str


def expand_inputs(arguments: list[str]) -> tuple[list[str], list[Unresolved]]:
    """Files, folders (recursive, audio extensions only) and glob patterns to files, in the
    order given (folders and globs sorted), each file once.

    A file named explicitly is taken whatever its extension (its content decides); an argument
    that matches nothing is returned as :class:`Unresolved`, so it is reported, not dropped.
    """
    files: list[str] = []
    unresolved: list[Unresolved] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*")
                           if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            if not found:
                unresolved.append(Unresolved(argument, f"{argument}: folder holds no audio files "
                                             f"({', '.join(AUDIO_EXTENSIONS)})"))
            for item in found:
                add(item)
        elif path.exists() or not (_GLOB_CHARS & set(argument)):
            add(str(path))  # a missing plain path is passed on: decoding reports "file not found"
        else:
            matches = sorted(m for m in glob.glob(str(path), recursive=True)
                             if os.path.isfile(m))
            if not matches:
                unresolved.append(Unresolved(argument, f"{argument}: no file matches"))
            for item in matches:
                add(item)
    return files, unresolved


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
