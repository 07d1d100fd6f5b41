"""``ser audit``: folders in, matches and a one-line summary out."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ser.audit import DEFAULT_THRESHOLD, TRAIN, AuditResult, audit
from ser.audit.training_set import training_set
from ser.data.corpora import corpus_files

log = logging.getLogger(__name__)


def run_audit(train: str | os.PathLike, eval_: str | os.PathLike, *, out: Path | None = None,
              threshold: float | None = None, cache_dir: str | os.PathLike | None = None,
              workers: int | None = None, data_root: str | os.PathLike | None = None) -> int:
    """Print matches, failed files and the summary; exit status 2 when an input is unusable.

    ``train``: a folder, a training run folder or its split.csv (``data_root``: the Kaggle root
    the split refers to, default data.root of the run's config.yaml)."""
    try:
        trained = training_set(train, data_root)
        e_layout, e_files = corpus_files(eval_)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    log.info("training: %s; evaluation: %d files (%s layout)", trained.describe(),
             len(e_files), e_layout)
    result: AuditResult = audit(trained.train, e_files, held_out=trained.held_out,
                                threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                                cache_dir=cache_dir, workers=workers)
    for row in result.matches.itertuples(index=False):
        where = "" if row.part == TRAIN else f"  (held out: {row.part}, not leakage)"
        print(f"{row.score:.3f}  {row.eval_path}  {row.train_path}{where}")
    for path, reason in result.failed.items():
        print(f"failed: {path}: {reason}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.matches.to_csv(out, index=False)
        print(f"matches: {out}")
    if trained.held_out:
        print(result.held_out_summary())
    print(result.summary())
    return 0
