"""Ids are paths relative to ``ROOT/train`` or ``ROOT/test``: an id that leaves its folder
(``..``, an absolute path, a drive) is refused, so a CSV can never make the toolkit read
elsewhere; and whether the file an id names is there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def safe_id(file_id: str) -> bool:
    """An id names a file inside its split folder: relative, no ``..``, not empty."""
    if not file_id or file_id.startswith(("/", "\\")) or os.path.isabs(file_id):
        return False
    parts = re.split(r"[\\/]", file_id)
    return ".." not in parts and ":" not in parts[0]


def list_files(folder: Path) -> set[str] | None:
    """Names of the regular, non-hidden files in ``folder``; None when it is not a folder."""
    if not folder.is_dir():
        return None
    with os.scandir(folder) as entries:
        return {e.name for e in entries if not e.name.startswith(".") and e.is_file()}


def has_file(folder: Path, files: set[str], file_id: str) -> bool:
    """Whether a safe id names a file of ``folder`` (``files`` is its flat listing)."""
    if not safe_id(file_id):
        return False
    if file_id in files:
        return True
    # ids with a sub-folder ("a/b.wav") are not in the flat listing; check them directly.
    return ("/" in file_id or os.sep in file_id) and (folder / file_id).is_file()
