"""Row by row checks of one split's CSV: duplicated ids, ids that leave their folder, missing
files, labels outside the six, names that disagree with their label or have no known speaker,
and files no row lists. Each becomes a :class:`~ser.data.problems.Problem` naming the CSV line
and what to fix; each unusable row also gets its reason, so a caller can keep it with the reason.
"""

from __future__ import annotations

from ser.data.kaggle.names import parse_kaggle_name
from ser.data.kaggle.paths import has_file, safe_id
from ser.data.kaggle.reading import SplitFiles
from ser.data.problems import Problem
from ser.labels import LABELS


def row_problems(s: SplitFiles) -> tuple[list[Problem], list[str | None]]:
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
        elif not has_file(folder, files, file_id):
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
