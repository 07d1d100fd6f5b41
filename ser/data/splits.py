"""Train / validation / test splits of a labelled corpus, and ``split.csv``, their record.

``speaker`` (the default): no speaker in two splits, each split close to its share of every
class x gender cell, so the validation score that selects the checkpoint and the test score that
is reported both come from voices the model never heard. ``stratified``: by file, per class; the
same speakers are then on every side, and scores are optimistic (callers say so).

The split is a pure function of the rows, the fractions and the seed; ``split.csv`` holds it so a
resumed run, ``evaluate.py dataset=indonesian`` and the leakage audit reuse it.
:func:`split_frame`, :func:`split_from_file` and :func:`describe_split` do the same on a corpus
frame (columns ``id``, ``label``, ``speaker``, ``gender``, ``corpus``), for the datamodules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.labels import LABELS

log = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
SPLIT_KINDS: tuple[str, ...] = ("speaker", "stratified")
# split.csv columns; older files have only file,split[,label] and are still read.
SPLIT_COLUMNS: tuple[str, ...] = ("file", "split", "label", "speaker", "gender", "corpus")


def _target(n: int, fraction: float) -> int:
    return int(np.floor(n * fraction + 0.5))  # round half up, unlike Python's round()


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0
            and val_fraction + test_fraction < 1.0):
        raise ValueError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be "
                         "in [0, 1) and leave some data for training")


def _keys(values: Sequence[Any]) -> np.ndarray:
    return pd.Series(list(values), dtype=object).fillna("<none>").astype(str).to_numpy()


def stratified_split(labels: Sequence[Any], val_fraction: float, test_fraction: float,
                     seed: int) -> np.ndarray:
    """Split name per row, by file: ``round(n_c * fraction)`` random rows of each class go to
    validation and as many to test. Deterministic for a seed (classes in sorted order)."""
    check_fractions(val_fraction, test_fraction)
    keys = _keys(labels)
    rng = np.random.default_rng(seed)
    out = np.full(len(keys), "train", dtype=object)
    for key in sorted(set(keys)):
        rows = rng.permutation(np.flatnonzero(keys == key))
        n_val, n_test = _target(len(rows), val_fraction), _target(len(rows), test_fraction)
        out[rows[:n_val]] = "val"
        out[rows[n_val:n_val + n_test]] = "test"
    return out


def speaker_split(speakers: Sequence[Any], labels: Sequence[Any], genders: Sequence[Any],
                  val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split name per row with every speaker on one side only.

    Speakers are visited in a seeded random order; each goes to the held-out split whose
    class x gender counts and size it brings closest to their targets (``n * fraction``),
    never moving the split's size away from its target, or to training when it fits neither. So both the size and the class and gender
    balance of validation and test follow the fractions as closely as whole speakers allow.
    Rows without a speaker must be given one (e.g. a speaker of their own) by the caller.
    """
    check_fractions(val_fraction, test_fraction)
    speaker_keys = pd.Series(list(speakers), dtype=object)
    if speaker_keys.isna().any():
        raise ValueError(f"{int(speaker_keys.isna().sum())} rows have no speaker; a speaker "
                         "split needs one for every row")
    speaker_keys = speaker_keys.astype(str).to_numpy()
    cells = pd.Categorical([f"{c}|{g}" for c, g in zip(_keys(labels), _keys(genders))])
    unique = sorted(set(speaker_keys))
    held_out = [(name, f) for name, f in (("val", val_fraction), ("test", test_fraction)) if f > 0]
    if len(unique) < len(held_out) + 1:
        raise ValueError(f"a speaker split into {1 + len(held_out)} parts needs at least "
                         f"{1 + len(held_out)} speakers, found {len(unique)}")
    codes = pd.Categorical(speaker_keys, categories=unique).codes
    counts = np.zeros((len(unique), len(cells.categories)), dtype=np.int64)
    np.add.at(counts, (codes, cells.codes), 1)
    totals = counts.sum(axis=0)
    # Targets are fractional (a small corpus has cells whose share rounds to 0).
    targets = {name: totals * f for name, f in held_out}
    sizes = {name: _target(int(totals.sum()), f) for name, f in held_out}
    current = {name: np.zeros(len(totals), dtype=np.int64) for name, _ in held_out}
    assigned = np.full(len(unique), "train", dtype=object)
    for g in np.random.default_rng(seed).permutation(len(unique)):
        # A speaker joins a held-out split only if it brings the split's size closer to its
        # target (no overshooting with a large speaker) and the size and class x gender cells
        # together closer to theirs; among the splits it fits, the one it helps most.
        gains = {}
        for name, _ in held_out:
            size_now, size_after = current[name].sum(), current[name].sum() + counts[g].sum()
            size_gain = abs(size_now - sizes[name]) - abs(size_after - sizes[name])
            cell_gain = (np.abs(current[name] - targets[name]).sum()
                         - np.abs(current[name] + counts[g] - targets[name]).sum())
            if size_gain > 0 and size_gain + cell_gain > 0:
                gains[name] = size_gain + cell_gain
        best = max(gains, key=lambda name: gains[name]) if gains else None
        if best is not None and gains[best] > 0:
            assigned[g] = best
            current[best] = current[best] + counts[g]
    for name, fraction in held_out:
        if not (assigned == name).any():
            raise ValueError(f"no speaker is small enough for a {name} share of {fraction} "
                             f"({len(unique)} speakers); raise {name}_fraction or use "
                             "split=stratified")
    if not (assigned == "train").any():
        raise ValueError("the speaker split left no speaker for training; lower the fractions")
    return assigned[codes]


def read_split_file(path: str | os.PathLike) -> pd.DataFrame:
    """A ``split.csv`` as a frame (all str), checked: columns, split names, no repeated file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} not found; give the split.csv of a training "
                                "run (columns file,split)")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("file", "split") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: columns {list(table.columns)} lack {missing}; expected "
                         f"{','.join(SPLIT_COLUMNS)}")
    bad = sorted(set(table["split"]) - set(SPLIT_NAMES))
    if bad:
        raise ValueError(f"{path}: split values {bad} are not one of {list(SPLIT_NAMES)}")
    dups = table["file"][table["file"].duplicated()].unique().tolist()
    if dups:
        raise ValueError(f"{path}: files listed more than once: {dups[:5]}")
    return table


def write_split_file(frame: pd.DataFrame, split: Sequence[str], path: str | os.PathLike) -> Path:
    """``file,split,label,speaker,gender,corpus`` for every row, train rows first, then val,
    then test, each in corpus order. ``frame`` has ``id``, ``label`` and the speaker columns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"file": frame["id"].to_numpy(), "split": np.asarray(split, dtype=object)})
    for column in SPLIT_COLUMNS[2:]:
        table[column] = frame[column].to_numpy() if column in frame.columns else None
    order = table["split"].map({name: i for i, name in enumerate(SPLIT_NAMES)})
    table = table.iloc[np.argsort(order.to_numpy(), kind="stable")]
    table.to_csv(path, index=False, columns=list(SPLIT_COLUMNS))
    return path


def shared_speakers(frame: pd.DataFrame, split: Sequence[str]) -> int:
    """How many known speakers appear in more than one split (0 for a speaker split)."""
    table = pd.DataFrame({"speaker": frame["speaker"].to_numpy(), "split": list(split)}).dropna()
    return int((table.groupby("speaker")["split"].nunique() > 1).sum())


def split_frame(frame: pd.DataFrame, kind: str, val_fraction: float, test_fraction: float,
                seed: int) -> np.ndarray:
    """Split name per row of a corpus frame, by speaker or ``stratified`` (see the module)."""
    if kind == "speaker":
        # A clip whose speaker is unknown (a name that does not parse) is its own speaker.
        speakers = frame["speaker"].where(frame["speaker"].notna(), "unknown:" + frame["id"])
        return speaker_split(speakers, frame["label"], frame["gender"], val_fraction,
                             test_fraction, seed)
    return stratified_split(frame["label"], val_fraction, test_fraction, seed)


def split_from_file(frame: pd.DataFrame, path: str | os.PathLike) -> np.ndarray:
    """Split name per row of a corpus frame as ``split.csv`` at ``path`` records it; every file
    of the frame must be listed (a file it lists that the frame lacks is only warned about)."""
    table = read_split_file(path)
    where = dict(zip(table["file"], table["split"]))
    unlisted = [f for f in frame["id"] if f not in where]
    if unlisted:
        raise ValueError(
            f"{path} does not list {len(unlisted)} of the {len(frame)} training files "
            f"(first: {unlisted[:3]}); it belongs to another version of the data. "
            "Leave split_from unset to draw a new split.")
    gone = len(set(where) - set(frame["id"]))
    if gone:
        log.warning("%s lists %d files that are not in the training data now (missing or "
                    "left out by load_kaggle); they are ignored", path, gone)
    return frame["id"].map(where).to_numpy(dtype=object)


def describe_split(frame: pd.DataFrame, split: np.ndarray, kind: str, seed: int
                   ) -> dict[str, Any]:
    """What the split is, for metrics.json, the printed summary and the model card."""
    shared = shared_speakers(frame, split)
    blocks = {}
    for name in SPLIT_NAMES:
        part = frame[split == name]
        blocks[name] = {
            "clips": int(len(part)),
            "speakers": int(part["speaker"].nunique()),
            "unknown_speaker_clips": int(part["speaker"].isna().sum()),
            "per_class": part["label"].value_counts().reindex(LABELS, fill_value=0)
            .astype(int).to_dict(),
            "per_gender": part["gender"].fillna("unknown").value_counts().astype(int).to_dict(),
            "per_corpus": part["corpus"].fillna("unknown").value_counts().astype(int).to_dict(),
        }
    return {"kind": kind, "seed": seed, "speaker_disjoint": shared == 0,
            "shared_speakers": shared, "left_out": dict(frame.attrs.get("left_out", {})),
            "splits": blocks}
