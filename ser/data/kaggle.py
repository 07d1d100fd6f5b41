"""The Indonesian Kaggle speech-emotion corpus: file index, metadata from names, validation.

Layout of the competition ``speech-emotion-recognition-dl-genap-2024-2025``::

    ROOT/train.csv   columns id,label        ROOT/train/<id>
    ROOT/test.csv    column  id              ROOT/test/<id>

The ``label`` column is the truth. Training file names carry metadata,
``{source}_{id5}_{emotion}_{intensity}.wav`` (e.g. ``2_07910_jijik_tinggi.wav``); it is parsed for
speakers (:mod:`ser.data.speakers`: exact, from CREMA-D's file list and RAVDESS's id blocks) and
reports, and :func:`validate_kaggle` checks that the name agrees with the label. A name that does
not parse is allowed: its metadata is None, its speaker is unknown (it forms a speaker of its own
in a speaker split), and validation reports it as a warning (the row is used with its CSV label).

Ids are paths relative to ``ROOT/train`` or ``ROOT/test``; an id that leaves its folder (``..``,
an absolute path) is refused as ``unsafe_path``, so a CSV can never make the toolkit read
elsewhere.

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

from ser.data.speakers import Speaker, kaggle_speaker
from ser.labels import KAGGLE_INTENSITIES, LABELS

log = logging.getLogger(__name__)

COMPETITION = "speech-emotion-recognition-dl-genap-2024-2025"
SPLITS: tuple[str, ...] = ("train", "test")
COLUMNS: tuple[str, ...] = (
    "path", "id", "label", "source", "file_id", "name_emotion", "intensity", "speaker", "gender",
    "corpus",
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
    def speaker(self) -> Speaker | None:
        """The exact speaker (CREMA-D or RAVDESS actor); None when the id fits neither."""
        return kaggle_speaker(self.source, self.file_id)


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


def speaker_of(name: KaggleName | None) -> Speaker | None:
    """Speaker of a row from its parsed name; None when the name does not parse or fit."""
    return name.speaker if name is not None else None


def safe_id(file_id: str) -> bool:
    """An id names a file inside its split folder: relative, no ``..``, not empty."""
    if not file_id or file_id.startswith(("/", "\\")) or os.path.isabs(file_id):
        return False
    parts = re.split(r"[\\/]", file_id)
    return ".." not in parts and ":" not in parts[0]


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
    if not safe_id(file_id):
        return False
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


def _row_problems(s: _Split) -> tuple[list[Problem], list[str | None]]:
    """Per-row and per-file problems of a split, and per row why it cannot be used (None: it
    can). Every row of the CSV gets an entry, so callers can keep the row with its reason."""
    assert s.table is not None
    # A missing folder is one problem (missing_folder), not one per row; other checks still run.
    folder_missing = s.files is None
    table, files, folder = s.table, s.files or set(), s.folder
    problems: list[Problem] = []
    ids = table["id"].tolist()
    labels = table["label"].tolist() if s.split == "train" else [None] * len(ids)
    reasons: list[str | None] = [None] * len(ids)

    # Duplicated ids: one problem per id, naming every line it appears on (line 1 is the header).
    # Repeats with the same label: the first row is used; with different labels none is, since
    # the truth is unknown.
    dup_mask = table["id"].duplicated(keep=False)
    if dup_mask.any():
        for file_id, rows in table[dup_mask].groupby("id", sort=False):
            lines = ", ".join(str(i + 2) for i in rows.index)
            distinct = sorted(set(rows["label"])) if s.split == "train" else []
            conflict = len(distinct) > 1
            positions = [table.index.get_loc(i) for i in rows.index]
            for n, position in enumerate(positions):
                if conflict:
                    reasons[position] = (f"duplicate_id: id listed on lines {lines} with "
                                         f"different labels ({', '.join(distinct)})")
                elif n:
                    reasons[position] = (f"duplicate_id: repeat of line {positions[0] + 2}, "
                                         "which is used")
            problems.append(Problem(
                "duplicate_id",
                f"{s.csv.name}: id {file_id!r} appears {len(rows)} times (lines {lines})"
                + (f" with different labels ({', '.join(map(repr, distinct))}); no row is used."
                   if conflict else "; only the first row is used."),
                f"Keep one row per file in {s.csv.name}.",
                id=file_id, path=str(folder / file_id)))

    listed = set(ids)
    for row, (file_id, label) in enumerate(zip(ids, labels)):
        if reasons[row] is not None:
            continue  # reported as duplicate_id above
        line = row + 2
        where = str(folder / file_id)
        if not safe_id(file_id):
            reasons[row] = f"unsafe_path: id {file_id!r} leaves {folder}/"
            problems.append(Problem(
                "unsafe_path",
                f"{s.csv.name} line {line}: id {file_id!r} is not a path inside {folder}/ "
                "(absolute, or with '..'); the row is left out and nothing is read there.",
                f"Give the file's name relative to {folder}/ on line {line}.",
                id=file_id, path=where))
            continue
        if folder_missing:
            reasons[row] = f"missing_file: folder {folder}/ not found"
        elif not _has_file(folder, files, file_id):
            reasons[row] = f"missing_file: no file {where}"
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
            reasons[row] = (f"unknown_label: {label!r} is not one of the six classes "
                            f"({', '.join(LABELS)})")
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
                "its source, id, intensity and speaker are unknown (in a speaker split it is a "
                "speaker of its own); the row is still used with its CSV label.",
                "Nothing, if the name is intended; otherwise rename the file and its row.",
                id=file_id, path=where, severity="warning"))
        elif name.emotion != label:
            problems.append(Problem(
                "label_mismatch",
                f"{s.csv.name} line {line}: {file_id!r} is labelled {label!r} but its name "
                f"says {name.emotion!r}; the CSV label is used.",
                f"Check the recording and correct line {line} of {s.csv.name} or the name.",
                id=file_id, path=where, severity="warning"))
        elif name.speaker is None:
            problems.append(Problem(
                "unknown_speaker",
                f"{file_id!r}: source {name.source} id {name.file_id} is outside CREMA-D's ids "
                f"(source 1: 0-7441) and RAVDESS's (source 2: 7442-8881), so its speaker is "
                "unknown (in a speaker split it is a speaker of its own).",
                "Nothing, if the file is intended; otherwise check its name.",
                id=file_id, path=where, severity="warning"))

    for orphan in sorted(files - listed):
        problems.append(Problem(
            "orphan_file",
            f"{folder / orphan} has no row in {s.csv.name} and is not used.",
            f"Add a row for {orphan!r} to {s.csv.name}, or remove the file.",
            id=orphan, path=str(folder / orphan), severity="warning"))
    return problems, reasons


def _frame(s: _Split, rows: pd.DataFrame) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------
# Public API


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
    path = _check_root(root)
    s = _read_split(path, split)
    if not s.csv.is_file():
        raise FileNotFoundError(
            f"{s.csv} not found.{_nested_hint(path, s.csv.name)} {_LAYOUT_HELP}")
    if s.table is None:
        raise ValueError(f"{s.problems[0].message} {s.problems[0].fix}")
    if s.table.empty:
        raise ValueError(f"{s.csv} has a header but no rows: there is nothing to "
                         f"{'train on' if split == 'train' else 'predict'}. {_LAYOUT_HELP}")
    if s.files is None and not keep_invalid:
        raise FileNotFoundError(f"{s.problems[-1].message} {_LAYOUT_HELP}")
    _, reasons = _row_problems(s)
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
                f" {_LAYOUT_HELP}")
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
