"""The files an evaluation runs on, with their true labels and the metadata to break down by."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)

DATASETS = ("ravdess", "indonesian", "kaggle_test")
# Metadata columns carried into predictions.csv, per dataset (after the contract columns).
META_COLUMNS: dict[str, tuple[str, ...]] = {
    "ravdess": ("actor", "gender", "emotion", "intensity", "statement"),
    "indonesian": ("id", "source", "intensity", "group"),
    "kaggle_test": ("id",),
}
# What the report and metrics.json break the scores down by.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "ravdess": ("actor", "gender", "intensity", "statement"),
    "indonesian": ("intensity", "source"),
    "kaggle_test": (),
}


@dataclass
class EvalSet:
    """``frame`` has ``path``, ``true`` (a label, or None: unlabelled, calm or surprised) and
    the metadata of :data:`META_COLUMNS`; ``notes`` are what the report says about the data."""

    name: str
    root: Path
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    actors: tuple[int, ...] = ()


def run_dir_of(model_path: str | Path) -> Path | None:
    """The training run a model path belongs to (RUN/model, RUN/checkpoints/x.ckpt), if any."""
    path = Path(model_path).expanduser()
    candidates = [path.parent]
    if path.parent.name == "checkpoints":
        candidates.insert(0, path.parent.parent)
    for run in candidates:
        if (run / "config.yaml").is_file() or (run / "split.csv").is_file():
            return run
    return None


def _actors(value) -> object:
    if isinstance(value, ListConfig):
        return OmegaConf.to_container(value)
    return value


def load_eval_set(dataset: DictConfig, model_path: str | Path) -> EvalSet:
    name = dataset.name
    if name == "ravdess":
        return _ravdess(dataset)
    if name == "indonesian":
        return _indonesian(dataset, model_path)
    if name == "kaggle_test":
        return _kaggle_test(dataset)
    raise ValueError(f"dataset.name must be one of {DATASETS}, got {name!r}")


def _ravdess(dataset: DictConfig) -> EvalSet:
    from ser.data.ravdess import load_ravdess

    index = load_ravdess(dataset.root, actors=_actors(dataset.actors))
    frame = index.frame.rename(columns={"label": "true"})
    notes = list(index.warnings)
    if index.skipped_song:
        notes.append(f"{index.skipped_song} song files skipped (speech only)")
    if index.skipped_unparsed:
        notes.append(f"{len(index.skipped_unparsed)} files with names that are not RAVDESS codes "
                     f"skipped (first: {index.skipped_unparsed[0]})")
    return EvalSet("ravdess", Path(dataset.root), frame, notes,
                   tuple(sorted(frame["actor"].unique().tolist())))


def split_file_for(dataset: DictConfig, model_path: str | Path) -> Path | None:
    if dataset.get("split_csv"):
        path = Path(dataset.split_csv).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"dataset.split_csv={path}: no such file (a training run's "
                                    "split.csv, columns file,split)")
        return path
    run = run_dir_of(model_path)
    if run is not None and (run / "split.csv").is_file():
        return run / "split.csv"
    return None


def _indonesian(dataset: DictConfig, model_path: str | Path) -> EvalSet:
    from ser.data.kaggle import load_kaggle

    frame = load_kaggle(dataset.root, "train").rename(columns={"label": "true"})
    notes: list[str] = []
    split = dataset.get("split", "val")
    if split not in ("val", "all"):
        raise ValueError(f"dataset.split must be 'val' or 'all', got {split!r}")
    split_csv = split_file_for(dataset, model_path) if split == "val" else None
    if split_csv is not None:
        table = pd.read_csv(split_csv, dtype=str, keep_default_na=False)
        if not {"file", "split"} <= set(table.columns):
            raise ValueError(f"{split_csv}: columns {list(table.columns)}; expected file,split")
        val = set(table.loc[table["split"] == "val", "file"])
        missing = val - set(frame["id"])
        frame = frame[frame["id"].isin(val)].reset_index(drop=True)
        notes.append(f"validation split of {split_csv} ({len(val)} files)")
        if missing:
            notes.append(f"{len(missing)} validation files of the split are not in the data "
                         f"(first: {sorted(missing)[:3]})")
        if frame.empty:
            raise ValueError(f"none of the validation files of {split_csv} is in {dataset.root}")
    else:
        notes.append("every labelled file of the corpus (no training split given or found): "
                     "files the model was trained on are included, so scores are optimistic"
                     if split == "val" else "every labelled file of the corpus (split=all)")
    return EvalSet("indonesian", Path(dataset.root), frame, notes)


def _kaggle_test(dataset: DictConfig) -> EvalSet:
    from ser.data.kaggle import load_kaggle

    test_csv = Path(dataset.root).expanduser() / "test.csv"
    frame = load_kaggle(dataset.root, "test").rename(columns={"label": "true"})
    notes: list[str] = []
    if test_csv.is_file():
        ids = pd.read_csv(test_csv, dtype=str, keep_default_na=False)["id"].tolist()
        # Every test id keeps its row (in test.csv order): one without a file fails, named.
        present = dict(zip(frame["id"], frame["path"]))
        folder = test_csv.parent / "test"
        seen: set[str] = set()
        rows = []
        for i in ids:
            if i in seen:
                continue
            seen.add(i)
            rows.append({"id": i, "path": present.get(i, str(folder / i)), "true": None})
        if len(rows) != len(frame):
            notes.append(f"{len(rows) - len(frame)} test ids have no file in {folder}")
        frame = pd.DataFrame(rows)
    return EvalSet("kaggle_test", Path(dataset.root), frame, notes)
