"""A folder given to ``ser audit`` -> the audio files in it, whatever its layout.

Why: users point the audit at the Kaggle root, a RAVDESS root or any folder; the first two are
read through their loaders (the files the project actually uses: train and test, or train only
when the folder is the training data), the last one recursively.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ser.audio import AUDIO_EXTENSIONS

log = logging.getLogger(__name__)


def _is_ravdess(root: Path) -> bool:
    from ser.data.ravdess import find_actor_dirs

    try:
        find_actor_dirs(root)
    except FileNotFoundError:
        return False
    return True


def corpus_files(root: str | os.PathLike, *, training: bool = False) -> tuple[str, list[str]]:
    """(layout, absolute paths): layout is 'kaggle', 'ravdess' or 'folder'.

    ``training``: the folder is what a model trained on, so of a Kaggle root only train/ counts
    (its test/ files have no labels and were never trained on).

    Raises FileNotFoundError when ``root`` is not a folder or holds no audio file.
    """
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {'not a folder' if path.exists() else 'does not exist'}")
    if (path / "train.csv").is_file():
        from ser.data.kaggle import load_kaggle

        files = list(load_kaggle(path, "train")["path"])
        if not training and (path / "test.csv").is_file():
            files += list(load_kaggle(path, "test")["path"])
        return "kaggle", files
    if _is_ravdess(path):
        from ser.data.ravdess import load_ravdess

        return "ravdess", list(load_ravdess(path, actors="all").frame["path"])
    files = sorted(str(p) for p in path.rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(
            f"{path}: no Kaggle layout (train.csv), no RAVDESS Actor_XX folders and no audio "
            f"files ({', '.join(AUDIO_EXTENSIONS)}) in it or below it")
    return "folder", files
