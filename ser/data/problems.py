"""What is wrong with a corpus, one :class:`Problem` per thing, each with what to do about it.

The Kaggle validation (:func:`ser.data.kaggle.validate_kaggle`) and ``ser inspect``
(:mod:`ser.corpus_report`) both speak in these, so one run lists every problem the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

# Errors first, then warnings, then notes: the order problems are listed in.
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


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


def by_severity(problem: Problem) -> int:
    """Sort key: errors first, then warnings, then notes (unknown severities last)."""
    return SEVERITY_ORDER.get(problem.severity, 3)
