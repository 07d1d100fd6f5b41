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
    "indonesian": ("id", "source", "intensity", "speaker", "gender", "corpus"),
    "kaggle_test": ("id",),
}
# What the report and metrics.json break the scores down by.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "ravdess": ("actor", "gender", "intensity", "statement"),
    "indonesian": ("intensity", "source", "gender", "corpus"),
    "kaggle_test": (),
}


@dataclass
class EvalSet:
    """``frame`` has ``path``, ``true`` (a label, or None: unlabelled, calm or surprised),
    ``error`` (why a row cannot be used, None when it can: such rows are kept, never dropped)
    and the metadata of :data:`META_COLUMNS`; ``notes`` are what the report says about the data.
    ``split``: which part of a training run's split was evaluated, when one was."""

    name: str
    root: Path
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    actors: tuple[int, ...] = ()
    split: str | None = None


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
    frame["error"] = None
    actors = tuple(sorted(frame["actor"].unique().tolist()))
    notes = list(index.warnings)
    if index.skipped_song:
        notes.append(f"{index.skipped_song} song files not evaluated (speech only)")
    # A file in a selected actor's folder whose name is not a RAVDESS code keeps a row.
    unparsed = [p for p in index.skipped_unparsed
                if _folder_actor(p) is None or _folder_actor(p) in actors]
    if unparsed:
        frame = pd.concat([frame, pd.DataFrame({
            "path": unparsed, "true": None,
            "error": "unparsed_name: not a RAVDESS file name (03-01-EE-II-SS-RR-AA.wav), so its "
                     "emotion is unknown"})], ignore_index=True)
        notes.append(f"{len(unparsed)} files with names that are not RAVDESS codes are rows "
                     f"with an error (first: {unparsed[0]})")
    return EvalSet("ravdess", Path(dataset.root), frame, notes, actors)


def _folder_actor(path: str) -> int | None:
    name = Path(path).parent.name
    return int(name[6:]) if name.startswith("Actor_") and name[6:].isdigit() else None


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
    """The training run's test split by default (``dataset.split=test``; ``val`` or ``all``).

    Every row stays: CSV rows that cannot be used (unknown label, missing file, duplicate id,
    unsafe path) and split rows whose file is gone keep a row with the reason in ``error``.
    """
    from ser.data.kaggle import load_kaggle
    from ser.data.splits import read_split_file

    frame = load_kaggle(dataset.root, "train", keep_invalid=True).rename(columns={"label": "true"})
    notes: list[str] = []
    split = dataset.get("split", "test")
    if split not in ("test", "val", "all"):
        raise ValueError(f"dataset.split must be 'test', 'val' or 'all', got {split!r}")
    split_csv = split_file_for(dataset, model_path) if split != "all" else None
    if split_csv is not None:
        table = read_split_file(split_csv)
        wanted = table.loc[table["split"] == split, "file"].tolist()
        if not wanted:
            raise ValueError(
                f"{split_csv} has no {split!r} rows (splits in it: "
                f"{sorted(set(table['split']))}); a split.csv written before train/val/test "
                "splits has only train and val: use dataset.split=val")
        by_id = frame.drop_duplicates("id").set_index("id", drop=False)
        missing = [f for f in wanted if f not in by_id.index]
        present = by_id.loc[[f for f in wanted if f in by_id.index]]
        frame = pd.concat([present, pd.DataFrame({
            "id": missing, "path": [str(Path(dataset.root) / "train" / f) for f in missing],
            "true": None,
            "error": f"missing_file: listed in {split_csv} but not in {dataset.root}/train.csv"})],
            ignore_index=True)
        kind = "speaker-disjoint" if "speaker" in table.columns and _disjoint(table) else \
            "by file: speakers shared with training"
        notes.append(f"{'test' if split == 'test' else 'validation'} split of {split_csv} "
                     f"({len(wanted)} files; split {kind})")
        if split == "val":
            notes.append("the validation split selected the checkpoint: its scores are "
                         "optimistic; the test split (dataset.split=test) is the held-out one")
    else:
        notes.append("every labelled file of the corpus (no training split given or found): "
                     "files the model was trained on are included, so scores are optimistic"
                     if split != "all" else "every labelled file of the corpus (split=all)")
    return EvalSet("indonesian", Path(dataset.root), frame.reset_index(drop=True), notes,
                   split=split if split_csv is not None else "all")


def _disjoint(table: pd.DataFrame) -> bool:
    known = table[table["speaker"].astype(str).ne("")]
    return bool((known.groupby("speaker")["split"].nunique() <= 1).all())


def _kaggle_test(dataset: DictConfig) -> EvalSet:
    """Every row of test.csv in its order; a row whose file is missing, whose id leaves
    ``ROOT/test`` or repeats an earlier one keeps its row with the reason."""
    from ser.data.kaggle import load_kaggle

    frame = load_kaggle(dataset.root, "test", keep_invalid=True).rename(columns={"label": "true"})
    notes = []
    n_bad = int(frame["error"].notna().sum())
    if n_bad:
        notes.append(f"{n_bad} rows of test.csv cannot be predicted (see their error)")
    return EvalSet("kaggle_test", Path(dataset.root), frame, notes)
