"""``ser audit``: folders in, matches and a one-line summary out."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ser.audit import DEFAULT_THRESHOLD, AuditResult, audit
from ser.audit.corpus import corpus_files

log = logging.getLogger(__name__)


def run_audit(train: str | os.PathLike, eval_: str | os.PathLike, *, out: Path | None = None,
              threshold: float | None = None, cache_dir: str | os.PathLike | None = None,
              workers: int | None = None) -> int:
    """Print matches, failed files and the summary; exit status 2 when a folder is unusable."""
    try:
        t_layout, t_files = corpus_files(train)
        e_layout, e_files = corpus_files(eval_)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    log.info("training: %d files (%s layout), evaluation: %d files (%s layout)",
             len(t_files), t_layout, len(e_files), e_layout)
    result: AuditResult = audit(t_files, e_files,
                                threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                                cache_dir=cache_dir, workers=workers)
    for row in result.matches.itertuples(index=False):
        print(f"{row.score:.3f}  {row.eval_path}  {row.train_path}")
    for path, reason in result.failed.items():
        print(f"failed: {path}: {reason}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.matches.to_csv(out, index=False)
        print(f"matches: {out}")
    print(result.summary())
    return 0
