"""A Kaggle-layout corpus as a frame: :func:`load_kaggle` (the usable rows of one split, with the
metadata from the names) and :func:`validate_kaggle` (every problem of both splits).
"""

from __future__ import annotations

import logging
import os

import pandas as pd

from ser.data.kaggle.names import parse_kaggle_name, speaker_of
from ser.data.kaggle.paths import safe_id
from ser.data.kaggle.reading import LAYOUT_HELP, SplitFiles, check_root, nested_hint, read_split
from ser.data.kaggle.row_checks import row_problems
from ser.data.problems import Problem, by_severity

# The package's logger: log lines name ser.data.kaggle, as before the package was split.
log = logging.getLogger(__package__)

SPLITS: tuple[str, ...] = ("train", "test")
COLUMNS: tuple[str, ...] = (
    "path", "id", "label", "source", "file_id", "name_emotion", "intensity", "speaker", "gender",
    "corpus",
)


def load_kaggle(root: str | os.PathLike, split: str = "train", *,
                keep_invalid: bool = False) -> pd.DataFrame:
    """Index of one split, in CSV order, with the columns in :data:`COLUMNS`.

    By default rows that cannot be used are left out: no file, an id outside the split folder,
    a label outside the six (train), repeats of an id (the first row is kept; none when the
    repeats disagree on the label). They are counted in the log and in ``frame.attrs
    ["left_out"]`` (``{reason kind: count}``), and :func:`validate_kaggle` lists them. With
    ``keep_invalid=True`` every CSV row is returned, with an ``error`` column giving the reason
    (None for usable rows): evaluation keeps each one as a row of its own.

    Raises FileNotFoundError when the root, the CSV or the folder is missing or no listed file
    exists, ValueError when the CSV lacks its columns or has no rows.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = check_root(root)
    s = read_split(path, split)
    if not s.csv.is_file():
        raise FileNotFoundError(
            f"{s.csv} not found.{nested_hint(path, s.csv.name)} {LAYOUT_HELP}")
    if s.table is None:
        raise ValueError(f"{s.problems[0].message} {s.problems[0].fix}")
    if s.table.empty:
        raise ValueError(f"{s.csv} has a header but no rows: there is nothing to "
                         f"{'train on' if split == 'train' else 'predict'}. {LAYOUT_HELP}")
    if s.files is None and not keep_invalid:
        raise FileNotFoundError(f"{s.problems[-1].message} {LAYOUT_HELP}")
    _, reasons = row_problems(s)
    usable = pd.Series([r is None for r in reasons], index=s.table.index)
    left_out = pd.Series([r.split(":", 1)[0] for r in reasons if r is not None],
                         dtype=object).value_counts().to_dict()
    if keep_invalid:
        frame = _frame(s, s.table)
        frame["error"] = pd.Series(reasons, dtype=object)
    else:
        frame = _frame(s, s.table[usable])
        if frame.empty:
            raise FileNotFoundError(
                f"none of the {len(s.table)} rows of {s.csv} can be used (files missing from "
                f"{s.folder}/ or labels outside the six). Run `ser inspect {path}` for the list."
                f" {LAYOUT_HELP}")
    frame.attrs["left_out"] = {str(k): int(v) for k, v in left_out.items()}
    if left_out:
        detail = ", ".join(f"{k}: {v}" for k, v in left_out.items())
        log.warning("%s: %d of %d rows %s (%s); run `ser inspect %s` for the list",
                    s.csv, sum(left_out.values()), len(s.table),
                    "cannot be used" if keep_invalid else "left out", detail, path)
    log.info("%s split: %d files from %s", split, int(usable.sum()), s.csv)
    return frame


def validate_kaggle(root: str | os.PathLike) -> list[Problem]:
    """Every problem of both splits in one list (never stops at the first), errors first.

    Raises FileNotFoundError only when ``root`` is missing or holds neither train.csv nor test.csv
    nor their folders, i.e. when it is not a Kaggle-layout corpus at all.
    """
    path = check_root(root)
    splits = {name: read_split(path, name) for name in SPLITS}
    if all(s.table is None and s.files is None and not s.problems for s in splits.values()):
        raise FileNotFoundError(
            f"{path} holds neither train.csv nor test.csv.{nested_hint(path, 'train.csv')} "
            f"{LAYOUT_HELP}")
    problems: list[Problem] = []
    for s in splits.values():
        problems.extend(s.problems)
        if s.table is None and s.files is None and not s.problems:
            problems.append(Problem(
                "missing_split",
                f"no {s.split} split: neither {s.csv.name} nor {s.split}/ is in {path}.",
                f"Unzip the competition's {s.csv.name} and {s.split}/ into {path}"
                + (" (needed to train)." if s.split == "train" else
                   " (needed only for dataset=kaggle_test)."),
                path=str(s.csv), severity="error" if s.split == "train" else "warning"))
        if s.table is not None:
            problems.extend(row_problems(s)[0])
    return sorted(problems, key=by_severity)


def _frame(s: SplitFiles, rows: pd.DataFrame) -> pd.DataFrame:
    folder = os.path.abspath(s.folder)
    ids = rows["id"].tolist()
    names = [parse_kaggle_name(i) for i in ids]
    speakers = [speaker_of(n) for n in names]
    labels = rows["label"].tolist() if s.split == "train" else [None] * len(ids)
    return pd.DataFrame({
        # An unsafe id keeps its text as the path: it is reported, never joined and read.
        "path": pd.Series([os.path.join(folder, i) if safe_id(i) else i for i in ids],
                          dtype=object),
        "id": pd.Series(ids, dtype=object),
        "label": pd.Series(labels, dtype=object),
        "source": pd.array([n.source if n else None for n in names], dtype="Int64"),
        "file_id": pd.array([n.file_id if n else None for n in names], dtype="Int64"),
        "name_emotion": pd.Series([n.emotion if n else None for n in names], dtype=object),
        "intensity": pd.Series([n.intensity if n else None for n in names], dtype=object),
        "speaker": pd.Series([p.speaker if p else None for p in speakers], dtype=object),
        "gender": pd.Series([p.gender if p else None for p in speakers], dtype=object),
        "corpus": pd.Series([p.corpus if p else None for p in speakers], dtype=object),
    }, columns=list(COLUMNS))
