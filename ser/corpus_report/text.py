"""``ser inspect``'s report as plain text: the count tables with percentages, what the headers
say, the problems grouped by kind (at most so many of each), and the verdict."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ser.data.corpora import KAGGLE, RAVDESS
from ser.data.problems import SEVERITY_ORDER, Problem

if TYPE_CHECKING:
    from ser.corpus_report.report import AudioSummary, InspectReport

_LAYOUT_NAMES = {
    KAGGLE: "Kaggle (train.csv + train/, test.csv + test/)",
    RAVDESS: "RAVDESS (Actor_XX/03-01-EE-II-SS-RR-AA.wav)",
}


def report_text(report: InspectReport, max_per_kind: int | None = 50) -> str:
    """The whole report; at most ``max_per_kind`` problems of each kind (None: all)."""
    out = [f"Corpus: {report.root}"]
    out.append(f"Layout: {_LAYOUT_NAMES.get(report.layout, 'not recognised')}")
    for part in report.parts:
        out += ["", f"== {part.heading} =="]
        for title, counts in part.tables.items():
            out.append(f"{title}:")
            out += _table(counts)
        out += _audio_lines(part.audio)
    if report.layout is not None:
        out.append("")
        out += _problem_lines(report.problems, max_per_kind)
    out += [""] + report.notes if report.notes else []
    if report.figure is not None:
        out.append(f"Figure: class distribution written to {report.figure}")
    if report.fatal:
        out.append(f"Result: UNUSABLE — {report.fatal_reason}")
    else:
        out.append(f"Result: usable — {report.readable} files with readable audio headers"
                   + (f"; fix the {plural(_count(report.problems, 'error'), 'error')} above"
                      if _count(report.problems, "error") else ""))
    return "\n".join(out)


def plural(count: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
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
    counts = ", ".join(plural(_count(problems, s), s) for s in SEVERITY_ORDER
                       if _count(problems, s))
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
