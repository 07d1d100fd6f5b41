"""``ser inspect``'s entry point: detect the layout, describe the corpus, decide whether it is
usable, and draw the class distribution."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ser.corpus_report.layouts import inspect_kaggle, inspect_ravdess
from ser.corpus_report.report import InspectReport
from ser.data.corpora import KAGGLE, detect_layout
from ser.data.problems import Problem, by_severity

# The package's logger: log lines name ser.corpus_report, as before the package was split.
log = logging.getLogger(__package__)

FIGURE_NAME = "class_distribution.png"
_EXPECTED = (
    "Expected one of two layouts: Kaggle — ROOT/train.csv (id,label) + ROOT/train/<id> and/or "
    "ROOT/test.csv (id) + ROOT/test/<id> (Kaggle competition "
    "speech-emotion-recognition-dl-genap-2024-2025); "
    "or RAVDESS — ROOT/Actor_01 ... Actor_24 holding 03-01-EE-II-SS-RR-AA.wav files, or a parent "
    "folder of those (zenodo record 1188976, Audio_Speech_Actors_01-24.zip). See README "
    "\"Getting the data\"; `ser synth DIR` writes synthetic corpora in both layouts."
)


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
        counts = inspect_kaggle(path, report)
        title, unmapped = "Training distribution (train.csv)", ()
    else:
        counts = inspect_ravdess(path, report)
        title, unmapped = "RAVDESS speech files per emotion", ("calm", "surprised")
    report.problems.sort(key=by_severity)

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
