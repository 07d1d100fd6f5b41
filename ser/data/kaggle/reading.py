"""Reading one split of a Kaggle corpus, shared by loading and validation: its CSV as text and
its folder's listing, every difficulty (unreadable CSV, missing columns, CSV or folder missing)
turned into a :class:`~ser.data.problems.Problem` instead of an exception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ser.data.kaggle.paths import list_files
from ser.data.problems import Problem

COMPETITION = "speech-emotion-recognition-dl-genap-2024-2025"

LAYOUT_HELP = (
    "Expected layout: ROOT/train.csv (columns id,label) with the files in ROOT/train/<id>, and "
    "ROOT/test.csv (column id) with the files in ROOT/test/<id>. Get the data from the Kaggle "
    f"competition '{COMPETITION}' (kaggle competitions download -c {COMPETITION}, then unzip "
    "into ROOT); see README section \"Getting the data\". For an offline try-out, "
    "`ser synth DIR` writes a synthetic corpus in this layout."
)


@dataclass
class SplitFiles:
    """One split as found on disk: what its CSV says and what its folder holds."""

    split: str
    csv: Path
    folder: Path
    table: pd.DataFrame | None  # the CSV as read (all str), None when absent or unreadable
    files: set[str] | None  # names of regular, non-hidden files in the folder; None when absent
    problems: list[Problem]


def check_root(root: str | os.PathLike) -> Path:
    """The corpus root as a Path; FileNotFoundError (with the layout to expect) if it is not a
    folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Kaggle data root {path} does not exist. {LAYOUT_HELP}")
    if not path.is_dir():
        raise FileNotFoundError(f"Kaggle data root {path} is not a folder. {LAYOUT_HELP}")
    return path


def nested_hint(root: Path, csv_name: str) -> str:
    """Point at a sub-folder that holds the CSV: a common result of unzipping into a new folder."""
    try:
        nested = sorted(p.parent for p in root.glob(f"*/{csv_name}"))
    except OSError:
        return ""
    if nested:
        return f" Found {csv_name} in {nested[0]}: did you mean ROOT={nested[0]}?"
    return ""


def read_split(root: Path, split: str) -> SplitFiles:
    """Read the CSV and list the folder of one split; every difficulty becomes a Problem."""
    csv = root / f"{split}.csv"
    folder = root / split
    problems: list[Problem] = []
    files = list_files(folder)
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
            f"Put the competition's {csv.name} in {root}.{nested_hint(root, csv.name)}",
            path=str(csv)))
    if table is not None and files is None:
        problems.append(Problem(
            "missing_folder",
            f"folder {folder}/ not found: all {len(table)} files listed in {csv.name} are missing.",
            f"Unzip the competition's {split}/ folder into {root}.",
            path=str(folder)))
    return SplitFiles(split, csv, folder, table, files, problems)
