"""The leakage audit inside an evaluation: which evaluated clips the training data holds, and
the scores on the rest (the clean part), beside the full scores."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ser.audit import audit
from ser.audit.corpus import corpus_files
from ser.evaluation.breakdowns import summary_of

log = logging.getLogger(__name__)


def audit_predictions(table: pd.DataFrame, train_root: str, out_dir: Path,
                      cache_dir: str | None = None) -> dict[str, Any]:
    """Adds a ``leaked`` column to ``table`` (in place) and returns metrics.json's ``leakage``.

    The matches go to ``leakage.csv`` beside the predictions; files either side that could not
    be fingerprinted are listed in the block, never silently counted as clean or leaked.
    """
    layout, train_files = corpus_files(train_root)
    paths = [str(Path(p).resolve()) for p in table["path"]]
    result = audit(train_files, paths, cache_dir=cache_dir)
    log.info("audit against %s (%s layout): %s", train_root, layout, result.summary())
    result.matches.to_csv(out_dir / "leakage.csv", index=False)
    leaked = set(result.leaked)
    table["leaked"] = [p in leaked for p in paths]
    clean = summary_of(table[~table["leaked"]])
    return {
        "train_root": str(train_root),
        "train_layout": layout,
        "train_n": result.n_train,
        "overlap": len(leaked),
        "eval_n": result.n_eval,
        "summary": result.summary(),
        "clean_n": clean["n"],
        "clean_accuracy": clean["accuracy"],
        "clean_ua": clean["ua"],
        "clean_macro_f1": clean["macro_f1"],
        "threshold": result.threshold,
        "unfingerprinted": result.failed,
        "matches_csv": "leakage.csv",
    }
