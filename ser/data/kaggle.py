"""The Indonesian Kaggle speech-emotion corpus: file index, metadata from names, validation.

Layout of the competition ``speech-emotion-recognition-dl-genap-2024-2025``::

    ROOT/train.csv   columns id,label        ROOT/train/<id>
    ROOT/test.csv    column  id              ROOT/test/<id>

The ``label`` column is the truth. Training file names carry metadata,
``{source}_{id5}_{emotion}_{intensity}.wav`` (e.g. ``2_07910_jijik_tinggi.wav``); it is parsed for
grouping and reports, and :func:`validate_kaggle` checks that the name agrees with the label.
A name that does not parse is allowed: its metadata is None, it forms a group of its own, and
validation reports it as a warning (the row is still used, its label comes from the CSV).

:func:`load_kaggle` returns only rows that can be used (file present, one of the six labels for
train, first of duplicated ids) and logs how many it left out; :func:`validate_kaggle` lists every
problem, each with what to fix, so one run of ``ser inspect`` shows them all.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ser.labels import KAGGLE_INTENSITIES, LABELS

log = logging.getLogger(__name__)

COMPETITION = "speech-emotion-recognition-dl-genap-2024-2025"
SPLITS: tuple[str, ...] = ("train", "test")
# Source 2 follows RAVDESS speech from this id on, 60 ids per actor (DESIGN.md §2).
SOURCE2_FIRST_ID = 7442
RAVDESS_FILES_PER_ACTOR = 60
# Source 1 follows CREMA-D's sorted file list: 91 actors, about 82 files each. Blocks of 82 ids
# approximate speakers; they are not exact actor boundaries.
CREMA_BLOCK = 82

COLUMNS: tuple[str, ...] = (
    "path", "id", "label", "source", "file_id", "name_emotion", "intensity", "group",
)

_NAME_RE = re.compile(
    r"^(?P<source>\d+)_(?P<file_id>\d+)_(?P<emotion>[a-z]+)_"
    r"(?P<intensity>" + "|".join(KAGGLE_INTENSITIES) + r")\.wav$",
    re.IGNORECASE,
)

_LAYOUT_HELP = (
    "Expected layout: ROOT/train.csv (columns id,label) with the files in ROOT/train/<id>, and "
    "ROOT/test.csv (column id) with the files in ROOT/test/<id>. Get the data from the Kaggle "
    f"competition '{COMPETITION}' (kaggle competitions download -c {COMPETITION}, then unzip "
    "into ROOT); see README section \"Getting the data\". For an offline try-out, "
    "`ser synth DIR` writes a synthetic corpus in this layout."
)


@dataclass(frozen=True)
class KaggleName:
    """Metadata carried by a training file name; the CSV label stays the truth."""

    source: int
    file_id: int
    emotion: str
    intensity: str

    @property
    def group(self) -> str:
        """Speaker group for group-disjoint splits; exact for source 2, approximate for source 1."""
        if self.source == 2 and self.file_id >= SOURCE2_FIRST_ID:
            actor = (self.file_id - SOURCE2_FIRST_ID) // RAVDESS_FILES_PER_ACTOR + 1
            return f"s2_actor{actor:02d}"
        if self.source == 1:
            return f"s1_block{self.file_id // CREMA_BLOCK:03d}"
        return f"s{self.source}_file{self.file_id:05d}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a corpus, with the file or id it concerns and what to do about it.

    ``severity``: "error" — the row or file is left out, or the corpus part cannot be read;
    "warning" — the data is used but something is off (check it); "info" — by design, noted.
    """

    kind: str
    message: str
    fix: str
    id: str | None = None
    path: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind}: {self.message} Fix: {self.fix}"


def parse_kaggle_name(name: str) -> KaggleName | None:
    """Parse ``{source}_{id5}_{emotion}_{intensity}.wav`` (name or path); None if it doesn't fit."""
    match = _NAME_RE.match(os.path.basename(str(name)))
    if match is None:
        return None
    return KaggleName(
        source=int(match["source"]),
        file_id=int(match["file_id"]),
        emotion=match["emotion"].lower(),
        intensity=match["intensity"].lower(),
    )


def group_of(file_id: str, name: KaggleName | None) -> str:
    """Group of a row: from its name, or a group of its own when the name does not parse."""
    return name.group if name is not None else f"unparsed:{file_id}"


# --------------------------------------------------------------------------------------------
# Reading one split, shared by load and validate


@dataclass
class _Split:
    split: str
    csv: Path
    folder: Path
    table: pd.DataFrame | None  # the CSV as read (all str), None when absent or unreadable
    files: set[str] | None  # names of regular, non-hidden files in the folder; None when absent
    problems: list[Problem]


def _check_root(root: str | os.PathLike) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Kaggle data root {path} does not exist. {_LAYOUT_HELP}")
    if not path.is_dir():
        raise FileNotFoundError(f"Kaggle data root {path} is not a folder. {_LAYOUT_HELP}")
    return path


def _nested_hint(root: Path, csv_name: str) -> str:
    """Point at a sub-folder that holds the CSV: a common result of unzipping into a new folder."""
    try:
        nested = sorted(p.parent for p in root.glob(f"*/{csv_name}"))
    except OSError:
        return ""
    if nested:
        return f" Found {csv_name} in {nested[0]}: did you mean ROOT={nested[0]}?"
    return ""


def _list_files(folder: Path) -> set[str] | None:
    if not folder.is_dir():
        return None
    with os.scandir(folder) as entries:
        return {e.name for e in entries if not e.name.startswith(".") and e.is_file()}


def _has_file(folder: Path, files: set[str], file_id: str) -> bool:
    if file_id in files:
        return True
    # ids with a sub-folder ("a/b.wav") are not in the flat listing; check them directly.
    return ("/" in file_id or os.sep in file_id) and (folder / file_id).is_file()


def _read_split(root: Path, split: str) -> _Split:
    """Read the CSV and list the folder of one split; every difficulty becomes a Problem."""
    csv = root / f"{split}.csv"
    folder = root / split
    problems: list[Problem] = []
    files = _list_files(folder)
    table: pd.DataFrame | None = None
    required = ("id", "label") if split == "train" else ("id",)
    if csv.is_file():
        try:
            table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            problems.append(Problem(
                "bad_csv", f"{csv} cannot be read as CSV ({exc}).",
                f"Replace {csv.name} with the competition's file (columns {','.join(required)}).",
                path=str(csv)))
        else:
            table.columns = [str(c).strip() for c in table.columns]
            missing = [c for c in required if c not in table.columns]
            if missing:
                problems.append(Problem(
                    "bad_csv",
                    f"{csv} has columns {list(table.columns)}, missing {missing}.",
                    f"Give {csv.name} a header line '{','.join(required)}'.",
                    path=str(csv)))
                table = None
    elif files is not None:
        problems.append(Problem(
            "missing_csv",
            f"{csv} not found, so the {len(files)} files in {folder}/ have no "
            f"{'labels' if split == 'train' else 'order for a submission'}.",
            f"Put the competition's {csv.name} in {root}.{_nested_hint(root, csv.name)}",
            path=str(csv)))
    if table is not None and files is None:
        problems.append(Problem(
            "missing_folder",
            f"folder {folder}/ not found: all {len(table)} files listed in {csv.name} are missing.",
            f"Unzip the competition's {split}/ folder into {root}.",
            path=str(folder)))
    return _Split(split, csv, folder, table, files, problems)


def _row_problems(s: _Split) -> tuple[list[Problem], pd.Series]:
    """Per-row and per-file problems of a split, and a mask of the rows that can be used."""
    assert s.table is not None
    # A missing folder is one problem (missing_folder), not one per row; other checks still run.
    folder_missing = s.files is None
    table, files, folder = s.table, s.files or set(), s.folder
    problems: list[Problem] = []
    ids = table["id"].tolist()

    # Duplicated ids: one problem per id, naming every line it appears on (line 1 is the header).
    dup_mask = table["id"].duplicated(keep=False)
    if dup_mask.any():
        for file_id, rows in table[dup_mask].groupby("id", sort=False):
            lines = ", ".join(str(i + 2) for i in rows.index)
            labels = ""
            if "label" in rows and s.split == "train":
                distinct = sorted(set(rows["label"]))
                labels = (f" with different labels ({', '.join(map(repr, distinct))})"
                          if len(distinct) > 1 else "")
            problems.append(Problem(
                "duplicate_id",
                f"{s.csv.name}: id {file_id!r} appears {len(rows)} times (lines {lines}){labels}; "
                "only the first row is used.",
                f"Keep one row per file in {s.csv.name}.",
                id=file_id, path=str(folder / file_id)))

    listed = set(ids)
    first = (~table["id"].duplicated(keep="first")).tolist()
    keep = list(first)
    labels = table["label"].tolist() if s.split == "train" else [None] * len(ids)
    for row, (file_id, label) in enumerate(zip(ids, labels)):
        if not first[row]:
            continue  # reported as duplicate_id above
        line = row + 2
        where = str(folder / file_id)
        if folder_missing:
            keep[row] = False
        elif not _has_file(folder, files, file_id):
            keep[row] = False
            if s.split == "train":
                fix = f"Put the file in {folder}/ or delete line {line} from {s.csv.name}."
            else:
                fix = (f"Put the file in {folder}/ (a submission needs a prediction for every "
                       f"row of {s.csv.name}).")
            problems.append(Problem(
                "missing_file", f"{s.csv.name} line {line}: {file_id!r} has no file {where}.",
                fix, id=file_id, path=where))
        if s.split != "train":
            continue
        if label not in LABELS:
            keep[row] = False
            problems.append(Problem(
                "unknown_label",
                f"{s.csv.name} line {line}: label {label!r} of {file_id!r} is not one of "
                f"the six classes ({', '.join(LABELS)}); the row is left out.",
                f"Correct the label on line {line} of {s.csv.name} (lower-case Indonesian).",
                id=file_id, path=where))
            continue
        name = parse_kaggle_name(file_id)
        if name is None:
            problems.append(Problem(
                "unparsed_name",
                f"{file_id!r} does not follow {{source}}_{{id5}}_{{emotion}}_{{intensity}}.wav: "
                "its source, id and intensity are unknown and it forms a speaker group of its "
                "own; the row is still used with its CSV label.",
                "Nothing, if the name is intended; otherwise rename the file and its row.",
                id=file_id, path=where, severity="warning"))
        elif name.emotion != label:
            problems.append(Problem(
                "label_mismatch",
                f"{s.csv.name} line {line}: {file_id!r} is labelled {label!r} but its name "
                f"says {name.emotion!r}; the CSV label is used.",
                f"Check the recording and correct line {line} of {s.csv.name} or the name.",
                id=file_id, path=where, severity="warning"))

    for orphan in sorted(files - listed):
        problems.append(Problem(
            "orphan_file",
            f"{folder / orphan} has no row in {s.csv.name} and is not used.",
            f"Add a row for {orphan!r} to {s.csv.name}, or remove the file.",
            id=orphan, path=str(folder / orphan), severity="warning"))
    return problems, pd.Series(keep, index=table.index, dtype=bool)


def _frame(s: _Split, rows: pd.DataFrame) -> pd.DataFrame:
    folder = os.path.abspath(s.folder)
    ids = rows["id"].tolist()
    names = [parse_kaggle_name(i) for i in ids]
    labels = rows["label"].tolist() if s.split == "train" else [None] * len(ids)
    return pd.DataFrame({
        "path": pd.Series([os.path.join(folder, i) for i in ids], dtype=object),
        "id": pd.Series(ids, dtype=object),
        "label": pd.Series(labels, dtype=object),
        "source": pd.array([n.source if n else None for n in names], dtype="Int64"),
        "file_id": pd.array([n.file_id if n else None for n in names], dtype="Int64"),
        "name_emotion": pd.Series([n.emotion if n else None for n in names], dtype=object),
        "intensity": pd.Series([n.intensity if n else None for n in names], dtype=object),
        "group": pd.Series([group_of(i, n) for i, n in zip(ids, names)], dtype=object),
    }, columns=list(COLUMNS))


# --------------------------------------------------------------------------------------------
# Public API


def load_kaggle(root: str | os.PathLike, split: str = "train") -> pd.DataFrame:
    """Index of one split, in CSV order, with the columns in :data:`COLUMNS`.

    Rows that cannot be used are left out and counted in the log: no file, a label outside the
    six (train), repeats of an id (the first row is kept). :func:`validate_kaggle` lists them.
    Raises FileNotFoundError when the root, the CSV or the folder is missing or no listed file
    exists, ValueError when the CSV lacks its columns.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = _check_root(root)
    s = _read_split(path, split)
    if not s.csv.is_file():
        raise FileNotFoundError(
            f"{s.csv} not found.{_nested_hint(path, s.csv.name)} {_LAYOUT_HELP}")
    if s.table is None:
        raise ValueError(f"{s.problems[0].message} {s.problems[0].fix}")
    if s.files is None:
        raise FileNotFoundError(f"{s.problems[-1].message} {_LAYOUT_HELP}")
    problems, usable = _row_problems(s)
    frame = _frame(s, s.table[usable])
    if len(s.table) and frame.empty:
        raise FileNotFoundError(
            f"none of the {len(s.table)} rows of {s.csv} can be used (files missing from "
            f"{s.folder}/ or labels outside the six). Run `ser inspect {path}` for the list. "
            f"{_LAYOUT_HELP}")
    left_out = len(s.table) - len(frame)
    if left_out:
        kinds = pd.Series([p.kind for p in problems if p.severity == "error"]).value_counts()
        detail = ", ".join(f"{k}: {v}" for k, v in kinds.items())
        log.warning("%s: %d of %d rows left out (%s); run `ser inspect %s` for the list",
                    s.csv, left_out, len(s.table), detail, path)
    log.info("%s split: %d files from %s", split, len(frame), s.csv)
    return frame


def validate_kaggle(root: str | os.PathLike) -> list[Problem]:
    """Every problem of both splits in one list (never stops at the first), errors first.

    Raises FileNotFoundError only when ``root`` is missing or holds neither train.csv nor test.csv
    nor their folders, i.e. when it is not a Kaggle-layout corpus at all.
    """
    path = _check_root(root)
    splits = {name: _read_split(path, name) for name in SPLITS}
    if all(s.table is None and s.files is None and not s.problems for s in splits.values()):
        raise FileNotFoundError(
            f"{path} holds neither train.csv nor test.csv.{_nested_hint(path, 'train.csv')} "
            f"{_LAYOUT_HELP}")
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
            problems.extend(_row_problems(s)[0])
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(problems, key=lambda p: order.get(p.severity, 3))
