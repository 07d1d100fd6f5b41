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
from typing import Iterable, Mapping

import pandas as pd

from ser.audit.cache import FingerprintCache
from ser.audit.extract import extract
from ser.audit.match import DEFAULT_THRESHOLD, find_matches
from ser.audit.training_set import TRAIN

log = logging.getLogger(__name__)

__all__ = ["AuditResult", "audit", "DEFAULT_THRESHOLD", "TRAIN"]


@dataclass
class AuditResult:
    """``matches``: eval_path, train_path, score, coarse, part (one row per pair at or above the
    threshold); ``part`` is ``train`` for a training file, else the held-out part it belongs to
    (val, test, kaggle-test). Only ``train`` rows are leakage.

    ``failed``: path -> reason for every file that could not be fingerprinted (either side).
    """

    matches: pd.DataFrame
    n_eval: int
    n_train: int
    failed: dict[str, str] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    cache_hits: int = 0
    computed: int = 0

    n_held_out: int = 0

    @property
    def leaked(self) -> list[str]:
        """Evaluation paths found in the training data, in first-seen order."""
        train = self.matches[self.matches["part"] == TRAIN]
        return list(dict.fromkeys(train["eval_path"]))

    @property
    def in_held_out(self) -> list[str]:
        """Evaluation paths found in held-out data (val, test, Kaggle test): not leakage."""
        held = self.matches[self.matches["part"] != TRAIN]
        return list(dict.fromkeys(held["eval_path"]))

    def best_match(self, part: str = TRAIN) -> dict[str, str]:
        """Evaluation path -> the best-scoring file it matched in ``part`` ('train'), or in any
        held-out part (``part='held-out'``)."""
        rows = self.matches[(self.matches["part"] == TRAIN) == (part == TRAIN)]
        best = rows.sort_values("score", ascending=False).drop_duplicates("eval_path")
        return dict(zip(best["eval_path"], best["train_path"]))

    def summary(self) -> str:
        return (f"{len(self.leaked)} of {self.n_eval} evaluation clips found in the training "
                f"data")

    def held_out_summary(self) -> str:
        return (f"also found in held-out data (not trained on, not leakage): "
                f"{len(self.in_held_out)} of {self.n_eval} evaluation clips")


def audit(train_paths: Iterable[str | os.PathLike], eval_paths: Iterable[str | os.PathLike], *,
          held_out: Mapping[str, str] | None = None,
          threshold: float = DEFAULT_THRESHOLD, cache_dir: str | os.PathLike | None = None,
          workers: int | None = None) -> AuditResult:
    """Find each evaluation file's copies among the training files (and, reported apart, among
    ``held_out``: path -> part, files of the same data that were not trained on).

    A file that cannot be decoded is listed in ``failed`` and left out; the others are audited.
    ``n_eval``/``n_train`` count the files given (after removing repeats), failed ones included.
    """
    train = list(dict.fromkeys(str(p) for p in train_paths))
    parts = {p: TRAIN for p in train}
    for p, part in (held_out or {}).items():
        parts.setdefault(str(p), part)  # a file listed as both is training data
    evals = list(dict.fromkeys(str(p) for p in eval_paths))
    cache = FingerprintCache(cache_dir)
    got = extract(list(parts) + evals, cache, workers=workers)
    log.info("fingerprints: %d from the cache, %d computed, %d failed (cache %s)",
             got.cache_hits, got.computed, len(got.failed), cache.root)
    e_fps = {p: got.fingerprints[p] for p in evals if p in got.fingerprints}
    t_fps = {p: got.fingerprints[p] for p in parts if p in got.fingerprints}
    matches = find_matches(e_fps, t_fps, threshold=threshold)
    matches["part"] = matches["train_path"].map(parts).astype(object)
    # a held-out file matching itself (evaluating the validation split or the Kaggle test set)
    # is no overlap; a training file matching itself is leakage and stays
    itself = (matches["eval_path"] == matches["train_path"]) & (matches["part"] != TRAIN)
    matches = matches[~itself].reset_index(drop=True)
    return AuditResult(matches, len(evals), len(train), dict(got.failed), threshold,
                       got.cache_hits, got.computed, len(parts) - len(train))
