"""What a corpus of each layout holds: the count tables and problems of a Kaggle folder (per
split) and of a RAVDESS folder (speech), each part with its audio headers summarised."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ser.corpus_report.headers import summarise_audio
from ser.corpus_report.report import InspectReport, Part
from ser.corpus_report.text import plural
from ser.data.kaggle import load_kaggle, validate_kaggle
from ser.data.problems import Problem
from ser.data.ravdess import load_ravdess
from ser.labels import KAGGLE_INTENSITIES, LABELS, RAVDESS_EMOTIONS

_NO_NAME = "(name not parsed)"
_NO_CLASS = "(no class: calm, surprised)"


def inspect_kaggle(root: Path, report: InspectReport) -> dict[str, int] | None:
    report.problems.extend(validate_kaggle(root))
    class_counts: dict[str, int] | None = None
    for split in ("train", "test"):
        csv = root / f"{split}.csv"
        if not csv.is_file():
            continue
        try:
            frame = load_kaggle(root, split)
        except (FileNotFoundError, ValueError) as exc:
            report.notes.append(f"{split}: not usable ({exc})")
            continue
        rows = _csv_rows(csv)
        left_out = f" ({rows - len(frame)} left out, see problems)" if rows != len(frame) else ""
        heading = f"{split}: {plural(rows, 'row')} in {csv.name}, {len(frame)} files indexed"
        part = Part(split, heading + left_out)
        if split == "train":
            classes = frame["label"].value_counts()
            class_counts = {label: int(classes.get(label, 0)) for label in LABELS}
            part.tables["files per class"] = class_counts
            part.tables["files per intensity (from names)"] = _ordered_counts(
                frame["intensity"], KAGGLE_INTENSITIES)
            part.tables["files per source (from names)"] = _ordered_counts(
                (None if _isna(v) else f"source {int(v)}" for v in frame["source"]), ())
            part.tables.update(speaker_tables(frame))
        part.audio, audio_problems = summarise_audio(frame["path"].tolist())
        report.problems.extend(audio_problems)
        report.parts.append(part)
    return class_counts


def speaker_tables(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Clips per original corpus, per sex and per speaker (exact: ser.data.speakers), the
    numbers a speaker-disjoint split is drawn from."""
    corpus = frame["corpus"].fillna("unknown speaker")
    speakers = frame.groupby(corpus)["speaker"].nunique()
    return {
        "files per corpus (speakers)": {f"{name} ({int(speakers.get(name, 0))} speakers)": int(n)
                                        for name, n in corpus.value_counts().sort_index().items()},
        "files per speaker sex": _ordered_counts(frame["gender"], ("female", "male")),
        "files per speaker": {str(k): int(v) for k, v in
                              frame["speaker"].fillna("unknown").value_counts().sort_index().items()},
    }


def _csv_rows(csv: Path) -> int:
    return len(pd.read_csv(csv, dtype=str, keep_default_na=False))


def _isna(value: object) -> bool:
    return bool(pd.isna(value))


def _ordered_counts(values: Iterable[object], order: Sequence[str]) -> dict[str, int]:
    counts = Counter(_NO_NAME if _isna(v) else str(v) for v in values)
    out = {k: counts.pop(k) for k in order if k in counts}
    out.update(sorted((k, v) for k, v in counts.items() if k != _NO_NAME))
    if _NO_NAME in counts:
        out[_NO_NAME] = counts[_NO_NAME]
    return out


def inspect_ravdess(root: Path, report: InspectReport) -> dict[str, int] | None:
    try:
        index = load_ravdess(root, "all")
    except (FileNotFoundError, ValueError) as exc:
        report.fatal_reason = str(exc)
        return None
    frame = index.frame
    genders = frame.drop_duplicates("actor")["gender"].value_counts()
    part = Part("speech", (
        f"speech: {len(frame)} files from {frame['actor'].nunique()} actors "
        f"({int(genders.get('male', 0))} male, {int(genders.get('female', 0))} female); "
        f"skipped {plural(index.skipped_song, 'song file')}, "
        f"{plural(len(index.skipped_unparsed), 'file')} with unparsed names"))
    emotions = frame["emotion"].value_counts()
    per_emotion = {}
    for name, label in RAVDESS_EMOTIONS.values():
        per_emotion[f"{name} -> {label or 'no class'}"] = int(emotions.get(name, 0))
    part.tables["files per emotion"] = per_emotion
    labels = frame["label"].value_counts(dropna=False)
    per_label = {label: int(labels.get(label, 0)) for label in LABELS}
    per_label[_NO_CLASS] = int(frame["label"].isna().sum())
    part.tables["files per class (mapped)"] = per_label
    part.tables["files per intensity"] = _ordered_counts(frame["intensity"], ("normal", "strong"))
    part.tables["files per gender"] = _ordered_counts(frame["gender"], ("male", "female"))
    actors = frame.groupby("actor").size()
    part.tables["files per actor"] = {
        f"actor{a:02d} ({'male' if a % 2 else 'female'})": int(c) for a, c in actors.items()}
    part.audio, audio_problems = summarise_audio(frame["path"].tolist())
    report.parts.append(part)

    for path in index.skipped_unparsed:
        report.problems.append(Problem(
            "unparsed_name",
            f"{path} does not follow 03-01-EE-II-SS-RR-AA.wav (fields in RAVDESS ranges); skipped.",
            "Rename it to the RAVDESS pattern, or move it out of the Actor folders.",
            path=path, severity="warning"))
    for message in index.warnings:
        report.problems.append(Problem("layout", message + ".",
                                       "Check that the folder holds one copy of RAVDESS.",
                                       severity="warning"))
    if index.skipped_song:
        report.problems.append(Problem(
            "song_files",
            f"{plural(index.skipped_song, 'song file')} (vocal channel 02) skipped: "
            "only speech is used.",
            "Nothing to do; remove the song folders to silence this.", severity="info"))
    report.problems.extend(audio_problems)
    return {name: int(emotions.get(name, 0)) for name, _ in RAVDESS_EMOTIONS.values()}
