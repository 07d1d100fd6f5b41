"""``ser inspect``: what a corpus folder holds and what is wrong with it, before any training.

Recognises the two layouts the project reads — Kaggle (train.csv/test.csv with train/ and test/)
and RAVDESS (Actor_XX folders, in the root or one level down) — and reports exact file counts per
class, intensity, sample rate and channel count, durations, and every problem found, plus a
class-distribution chart. Audio is described from the file headers only (no decoding), on a
thread pool, so 8,500 files take seconds; a file whose header cannot be read is a problem with its
reason, never the end of the report. (Header reads do not catch damage inside the audio data;
training and evaluation report such files when they decode them.)

``fatal`` means the corpus is unusable as it is: the root is missing, the layout is not one of the
two, or not a single indexed file has a readable header. Problems alone, even errors, are not fatal:
the loaders leave the affected rows out and go on, and the report lists them so they can be fixed.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ser.audio import MIN_SAMPLES, TARGET_SR, AudioError
from ser.data.corpora import KAGGLE, RAVDESS, detect_layout, read_headers
from ser.data.kaggle import Problem, load_kaggle, validate_kaggle
from ser.data.ravdess import load_ravdess
from ser.labels import KAGGLE_INTENSITIES, LABELS, RAVDESS_EMOTIONS

log = logging.getLogger(__name__)

FIGURE_NAME = "class_distribution.png"
_LAYOUT_NAMES = {
    KAGGLE: "Kaggle (train.csv + train/, test.csv + test/)",
    RAVDESS: "RAVDESS (Actor_XX/03-01-EE-II-SS-RR-AA.wav)",
}
_EXPECTED = (
    "Expected one of two layouts: Kaggle — ROOT/train.csv (id,label) + ROOT/train/<id> and/or "
    "ROOT/test.csv (id) + ROOT/test/<id> (Kaggle competition "
    "speech-emotion-recognition-dl-genap-2024-2025); "
    "or RAVDESS — ROOT/Actor_01 ... Actor_24 holding 03-01-EE-II-SS-RR-AA.wav files, or a parent "
    "folder of those (zenodo record 1188976, Audio_Speech_Actors_01-24.zip). See README "
    "\"Getting the data\"; `ser synth DIR` writes synthetic corpora in both layouts."
)
_NO_NAME = "(name not parsed)"
_NO_CLASS = "(no class: calm, surprised)"
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass
class AudioSummary:
    """What the headers of a set of files say."""

    files: int = 0
    readable: int = 0
    sample_rates: dict[int, int] = field(default_factory=dict)
    channels: dict[int, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)

    @property
    def duration_stats(self) -> tuple[float, float, float, float] | None:
        """(min, median, max, total) in seconds, None without readable files."""
        if not self.durations:
            return None
        d = np.asarray(self.durations, dtype=float)
        return float(d.min()), float(np.median(d)), float(d.max()), float(d.sum())


@dataclass
class Part:
    """One split of a Kaggle corpus, or the speech files of a RAVDESS one."""

    name: str
    heading: str
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    audio: AudioSummary = field(default_factory=AudioSummary)


@dataclass
class InspectReport:
    root: Path
    layout: str | None
    parts: list[Part] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    figure: Path | None = None
    notes: list[str] = field(default_factory=list)
    fatal: bool = False
    fatal_reason: str | None = None

    @property
    def readable(self) -> int:
        return sum(p.audio.readable for p in self.parts)

    def to_text(self, max_per_kind: int | None = 50) -> str:
        """The report as plain text; at most ``max_per_kind`` problems of each kind (None: all)."""
        out = [f"Corpus: {self.root}"]
        out.append(f"Layout: {_LAYOUT_NAMES.get(self.layout, 'not recognised')}")
        for part in self.parts:
            out += ["", f"== {part.heading} =="]
            for title, counts in part.tables.items():
                out.append(f"{title}:")
                out += _table(counts)
            out += _audio_lines(part.audio)
        if self.layout is not None:
            out.append("")
            out += _problem_lines(self.problems, max_per_kind)
        out += [""] + self.notes if self.notes else []
        if self.figure is not None:
            out.append(f"Figure: class distribution written to {self.figure}")
        if self.fatal:
            out.append(f"Result: UNUSABLE — {self.fatal_reason}")
        else:
            out.append(f"Result: usable — {self.readable} files with readable audio headers"
                       + (f"; fix the {_n(_count(self.problems, 'error'), 'error')} above"
                          if _count(self.problems, "error") else ""))
        return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Formatting


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _count(problems: Iterable[Problem], severity: str) -> int:
    return sum(p.severity == severity for p in problems)


def _table(counts: dict[str, int], indent: str = "  ") -> list[str]:
    total = sum(counts.values())
    width = max([len(k) for k in counts] + [5])
    lines = [f"{indent}{k:<{width}}  {v:>6}  {_pct(v, total):>7}" for k, v in counts.items()]
    lines.append(f"{indent}{'total':<{width}}  {total:>6}  {_pct(total, total):>7}")
    return lines


def _pct(value: int, total: int) -> str:
    return f"{100.0 * value / total:.2f}%" if total else "-"


def _audio_lines(a: AudioSummary) -> list[str]:
    lines = ["audio (from file headers; data not decoded):",
             f"  readable headers: {a.readable} of {a.files}"]
    if a.readable:
        lines.append("  sample rates:")
        lines += _table({f"{r} Hz": c for r, c in sorted(a.sample_rates.items())}, "    ")
        lines.append("  channels:")
        names = {1: "1 (mono)", 2: "2 (stereo)"}
        lines += _table({names.get(ch, str(ch)): c for ch, c in sorted(a.channels.items())}, "    ")
        lo, med, hi, total = a.duration_stats  # type: ignore[misc]
        lines.append(f"  duration: min {lo:.2f} s, median {med:.2f} s, max {hi:.2f} s, "
                     f"total {total:.1f} s ({total / 3600:.2f} h)")
    return lines


def _problem_lines(problems: Sequence[Problem], max_per_kind: int | None) -> list[str]:
    if not problems:
        return ["Problems: none found"]
    counts = ", ".join(_n(_count(problems, s), s) for s in _SEVERITY_ORDER if _count(problems, s))
    out = [f"Problems: {len(problems)} ({counts})"]
    by_kind = Counter(p.kind for p in problems)
    out.append("  by kind: " + ", ".join(f"{k} {v}" for k, v in by_kind.items()))
    shown: Counter[str] = Counter()
    for p in problems:
        shown[p.kind] += 1
        if max_per_kind is not None and shown[p.kind] > max_per_kind:
            continue
        out.append(f"  [{p.severity}] {p.kind}: {p.message}")
        out.append(f"      fix: {p.fix}")
    for kind, total in by_kind.items():
        if max_per_kind is not None and total > max_per_kind:
            out.append(f"  ... and {total - max_per_kind} more {kind} problems not shown")
    return out


# --------------------------------------------------------------------------------------------
# Audio headers


AUDIO_COLUMNS: tuple[str, ...] = ("path", "sample_rate", "channels", "frames", "duration", "error")


def audio_table(paths: Iterable[str], workers: int | None = None) -> pd.DataFrame:
    """One row per file, in the order given, from its header (no decoding).

    Columns :data:`AUDIO_COLUMNS`: ``sample_rate``, ``channels`` and ``frames`` are nullable
    integers, ``duration`` seconds (float); a file whose header cannot be read has them empty and
    the reason in ``error`` (None otherwise). For per-file views (duration histograms, rates per
    class) that :func:`summarise_audio` only gives as totals; join it to a corpus index
    (``load_kaggle(root)`` or ``load_ravdess(root, "all").frame``) on ``path``.
    """
    paths = [str(p) for p in paths]
    infos = read_headers(paths, workers)
    good = [None if isinstance(i, AudioError) else i for i in infos]
    return pd.DataFrame({
        "path": pd.Series(paths, dtype=object),
        "sample_rate": pd.array([i.sample_rate if i else None for i in good], dtype="Int64"),
        "channels": pd.array([i.channels if i else None for i in good], dtype="Int64"),
        "frames": pd.array([i.frames if i else None for i in good], dtype="Int64"),
        "duration": pd.Series([i.duration if i else np.nan for i in good], dtype=float),
        "error": pd.Series([f"{i.reason} ({i.kind})" if isinstance(i, AudioError) else None
                            for i in infos], dtype=object),
    }, columns=list(AUDIO_COLUMNS))


def summarise_audio(paths: Sequence[str], workers: int | None = None,
                    ) -> tuple[AudioSummary, list[Problem]]:
    """Header of every file (threads: libsndfile releases the GIL); bad files become problems."""
    results = read_headers(paths, workers)
    summary = AudioSummary(files=len(paths))
    rates: Counter[int] = Counter()
    channels: Counter[int] = Counter()
    problems: list[Problem] = []
    for path, info in zip(paths, results):
        if isinstance(info, AudioError):
            problems.append(Problem(
                "unreadable_audio", f"{path}: {info.reason} ({info.kind}).",
                "Replace the file with a good copy or remove it (and its CSV row); training and "
                "evaluation skip it.", path=path))
            continue
        summary.readable += 1
        rates[info.sample_rate] += 1
        channels[info.channels] += 1
        summary.durations.append(info.duration)
        samples = info.frames * TARGET_SR / info.sample_rate if info.sample_rate else 0
        if samples < MIN_SAMPLES:
            problems.append(Problem(
                "too_short",
                f"{path}: {info.duration * 1000:.0f} ms of audio; the backbone needs at least "
                f"{MIN_SAMPLES / TARGET_SR * 1000:.0f} ms.",
                "Replace or remove the file; training and evaluation skip it.", path=path))
    summary.sample_rates = dict(sorted(rates.items()))
    summary.channels = dict(sorted(channels.items()))
    return summary, problems


# --------------------------------------------------------------------------------------------
# Layouts


def _inspect_kaggle(root: Path, report: InspectReport) -> dict[str, int] | None:
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
        heading = f"{split}: {_n(rows, 'row')} in {csv.name}, {len(frame)} files indexed"
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


def _inspect_ravdess(root: Path, report: InspectReport) -> dict[str, int] | None:
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
        f"skipped {_n(index.skipped_song, 'song file')}, "
        f"{_n(len(index.skipped_unparsed), 'file')} with unparsed names"))
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
            f"{_n(index.skipped_song, 'song file')} (vocal channel 02) skipped: "
            "only speech is used.",
            "Nothing to do; remove the song folders to silence this.", severity="info"))
    report.problems.extend(audio_problems)
    return {name: int(emotions.get(name, 0)) for name, _ in RAVDESS_EMOTIONS.values()}


# --------------------------------------------------------------------------------------------
# Figure


def _write_figure(report: InspectReport, counts: dict[str, int], title: str,
                  figure: Path | None, unmapped: Sequence[str] = ()) -> None:
    from ser.figures.corpus import class_distribution

    if figure is not None:
        try:
            class_distribution(counts, title, Path(figure), unmapped)
            report.figure = Path(figure).resolve()
        except OSError as exc:
            report.problems.append(Problem(
                "figure", f"could not write the figure to {figure}: {exc}.",
                "Pass a writable path to --figure.", path=str(figure)))
        return
    default = report.root / FIGURE_NAME
    try:
        class_distribution(counts, title, default, unmapped)
        report.figure = default.resolve()
    except OSError as exc:
        fallback = Path.cwd() / FIGURE_NAME
        report.notes.append(f"Could not write {default} ({exc}); wrote the figure to the "
                            f"current folder instead.")
        try:
            class_distribution(counts, title, fallback, unmapped)
            report.figure = fallback.resolve()
        except OSError as exc2:
            report.problems.append(Problem(
                "figure",
                f"could not write the figure to {default} ({exc}) nor {fallback} ({exc2}).",
                "Pass a writable path to --figure.", path=str(default)))


# --------------------------------------------------------------------------------------------
# Entry point


def inspect_corpus(root: str | os.PathLike, figure: Path | None = None) -> InspectReport:
    """Describe the corpus at ``root``; never raises for a bad corpus (see ``fatal``)."""
    path = Path(root).expanduser().resolve()
    report = InspectReport(root=path, layout=None)
    if not path.is_dir():
        report.fatal = True
        what = "is not a folder" if path.exists() else "does not exist"
        report.fatal_reason = f"{path} {what}. {_EXPECTED}"
        return report
    report.layout = detect_layout(path)
    if report.layout is None:
        report.fatal = True
        nested = sorted(p.parent for p in path.glob("*/train.csv"))
        hint = f" (found train.csv in {nested[0]}: inspect that folder)" if nested else ""
        report.fatal_reason = f"{path} is in neither layout{hint}. {_EXPECTED}"
        return report

    if report.layout == KAGGLE:
        counts = _inspect_kaggle(path, report)
        title, unmapped = "Training distribution (train.csv)", ()
    else:
        counts = _inspect_ravdess(path, report)
        title, unmapped = "RAVDESS speech files per emotion", ("calm", "surprised")
    report.problems.sort(key=lambda p: _SEVERITY_ORDER.get(p.severity, 3))

    if report.readable == 0 and report.fatal_reason is None:
        indexed = sum(p.audio.files for p in report.parts)
        report.fatal_reason = (f"none of the {indexed} indexed files has a readable audio header"
                               if indexed else "no usable file is indexed (see problems)")
    if report.fatal_reason is not None:
        report.fatal = True
    if counts and sum(counts.values()):
        total = sum(counts.values())
        _write_figure(report, counts, f"{title}: {total} files", figure, unmapped)
    else:
        report.notes.append("No class counts to draw (no labelled split), so no figure.")
    log.info("inspected %s: layout %s, %d problems, fatal=%s", path, report.layout,
             len(report.problems), report.fatal)
    return report
