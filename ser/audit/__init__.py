"""Leakage audit: which evaluation clips are also in the training data (DESIGN.md §2, §4).

Why: the Kaggle training set contains RAVDESS clips, so a RAVDESS score is partly a score on
training data. The audit finds the same recording again across rate, codec, gain, channels and
silence padding (:mod:`ser.audit.fingerprint`), caches the work (:mod:`ser.audit.cache`) and
scores only likely pairs (:mod:`ser.audit.match`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd

from ser.audit.cache import FingerprintCache
from ser.audit.extract import extract
from ser.audit.match import DEFAULT_THRESHOLD, find_matches

log = logging.getLogger(__name__)

__all__ = ["AuditResult", "audit", "DEFAULT_THRESHOLD"]


@dataclass
class AuditResult:
    """``matches``: eval_path, train_path, score (one row per pair at or above the threshold).

    ``failed``: path -> reason for every file that could not be fingerprinted (either side).
    """

    matches: pd.DataFrame
    n_eval: int
    n_train: int
    failed: dict[str, str] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    cache_hits: int = 0
    computed: int = 0

    @property
    def leaked(self) -> list[str]:
        """Evaluation paths found in the training data, in first-seen order."""
        return list(dict.fromkeys(self.matches["eval_path"]))

    def summary(self) -> str:
        return (f"{len(self.leaked)} of {self.n_eval} evaluation clips found in the training "
                f"data")


def audit(train_paths: Iterable[str | os.PathLike], eval_paths: Iterable[str | os.PathLike], *,
          threshold: float = DEFAULT_THRESHOLD, cache_dir: str | os.PathLike | None = None,
          workers: int | None = None) -> AuditResult:
    """Find each evaluation file's copies among the training files.

    A file that cannot be decoded is listed in ``failed`` and left out; the others are audited.
    ``n_eval``/``n_train`` count the files given (after removing repeats), failed ones included.
    """
    train = list(dict.fromkeys(str(p) for p in train_paths))
    evals = list(dict.fromkeys(str(p) for p in eval_paths))
    cache = FingerprintCache(cache_dir)
    got = extract(train + evals, cache, workers=workers)
    log.info("fingerprints: %d from the cache, %d computed, %d failed (cache %s)",
             got.cache_hits, got.computed, len(got.failed), cache.root)
    e_fps = {p: got.fingerprints[p] for p in evals if p in got.fingerprints}
    t_fps = {p: got.fingerprints[p] for p in train if p in got.fingerprints}
    matches = find_matches(e_fps, t_fps, threshold=threshold)
    return AuditResult(matches, len(evals), len(train), dict(got.failed), threshold,
                       got.cache_hits, got.computed)
