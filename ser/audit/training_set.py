"""What a model was trained on, and what of the same data it was not.

Why: leakage means an evaluated clip was in the training split. A match with a validation, test
or Kaggle-test clip says the corpora overlap, not that the model saw the clip, so it is reported
apart ("also found in held-out data"). A training run knows its split: ``RUN/split.csv``
(``file,split[,label,speaker,gender,corpus]``, ``split`` one of train/val/test; ``file`` is the
Kaggle id relative to ``ROOT/train``) and ``RUN/config.yaml`` (``data.root`` = ROOT).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ser.data.corpora import KAGGLE, corpus_files
from ser.data.splits import read_split_file

log = logging.getLogger(__name__)

TRAIN = "train"
KAGGLE_TEST = "kaggle-test"


@dataclass
class TrainingSet:
    """``train``: files trained on; ``held_out``: path -> part (val, test, kaggle-test) of the
    same data that was not trained on; ``source`` says where the list came from."""

    train: list[str]
    held_out: dict[str, str] = field(default_factory=dict)
    source: str = ""
    layout: str = "folder"
    missing: list[str] = field(default_factory=list)  # split.csv rows with no file

    def describe(self) -> str:
        parts = pd.Series(list(self.held_out.values()), dtype=object).value_counts()
        held = ", ".join(f"{k} {v}" for k, v in parts.items()) or "none"
        return f"{len(self.train)} training files ({self.source}); held out: {held}"


def _data_root(run: Path) -> Path:
    from omegaconf import OmegaConf

    config = run / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: not found; the split's data root is data.root of a "
                                "training run's config.yaml (or give the root explicitly)")
    root = OmegaConf.select(OmegaConf.load(config), "data.root")
    if not root:
        raise ValueError(f"{config}: no data.root")
    return Path(str(root)).expanduser()


def _kaggle_test_files(root: Path) -> dict[str, str]:
    from ser.data.kaggle import load_kaggle

    if not (root / "test.csv").is_file():
        return {}
    try:
        return {str(Path(p).resolve()): KAGGLE_TEST for p in load_kaggle(root, "test")["path"]}
    except (FileNotFoundError, ValueError) as exc:
        log.warning("%s: Kaggle test files not listed as held out (%s)", root, exc)
        return {}


def from_split_csv(split_csv: str | os.PathLike, data_root: str | os.PathLike | None = None
                   ) -> TrainingSet:
    """The rows of a run's ``split.csv`` whose split is ``train``; the other rows and the Kaggle
    test files are held out. ``data_root`` defaults to ``data.root`` of the config.yaml beside
    the split."""
    from ser.data.kaggle import load_kaggle

    path = Path(split_csv).expanduser().resolve()
    table = read_split_file(path)
    root = Path(data_root).expanduser() if data_root is not None else _data_root(path.parent)
    frame = load_kaggle(root, "train")
    by_id = dict(zip(frame["id"], frame["path"]))
    train: list[str] = []
    held: dict[str, str] = {}
    missing: list[str] = []
    for file, split in zip(table["file"], table["split"]):
        where = by_id.get(file)
        if where is None:
            missing.append(file)
            continue
        where = str(Path(where).resolve())
        if split == TRAIN:
            train.append(where)
        else:
            held[where] = split
    if missing:
        log.warning("%s: %d rows have no file under %s/train (first: %s); left out of the audit",
                    path, len(missing), root, missing[:3])
    if not train:
        raise ValueError(f"{path}: no usable train rows under {root}")
    for p, part in _kaggle_test_files(root).items():
        held.setdefault(p, part)
    return TrainingSet(train, held, f"train rows of {path}", "split.csv", missing)


def training_set(source: str | os.PathLike, data_root: str | os.PathLike | None = None
                 ) -> TrainingSet:
    """``source``: a split.csv, a training run folder (its split.csv), a Kaggle root (train/ is
    the training data, test/ held out), a RAVDESS root or any folder of audio (all of it)."""
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        return from_split_csv(path, data_root)
    if path.is_dir() and (path / "split.csv").is_file() and (path / "config.yaml").is_file():
        return from_split_csv(path / "split.csv", data_root)
    layout, files = corpus_files(path, training=True)
    held = _kaggle_test_files(path.resolve()) if layout == KAGGLE else {}
    what = "train/ of the Kaggle root" if layout == KAGGLE else f"every file ({layout} layout)"
    return TrainingSet(files, held, f"{what} {path}", layout)
