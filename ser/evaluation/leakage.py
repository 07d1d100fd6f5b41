"""The leakage audit inside an evaluation: which evaluated clips the model was trained on, the
scores on the rest (the clean part) beside the full scores, and, apart, the clips found in data
of the same corpus that the model did not train on (validation, test, Kaggle test)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ser.audit import audit
from ser.audit.training_set import TrainingSet
from ser.evaluation.metrics_json import summary_of

log = logging.getLogger(__name__)


def audit_predictions(table: pd.DataFrame, trained: TrainingSet, out_dir: Path,
                      cache_dir: str | None = None) -> dict[str, Any]:
    """Adds ``leaked``, ``train_match`` and ``held_out_match`` columns to ``table`` (in place)
    and returns metrics.json's ``leakage`` block.

    The matches go to ``leakage.csv`` beside the predictions (column ``part``: train or the
    held-out part); files either side that could not be fingerprinted are listed in the block,
    never silently counted as clean or leaked.
    """
    paths = [str(Path(p).resolve()) for p in table["path"]]
    result = audit(trained.train, paths, held_out=trained.held_out, cache_dir=cache_dir)
    log.info("audit against %s: %s; %s", trained.source, result.summary(),
             result.held_out_summary())
    result.matches.to_csv(out_dir / "leakage.csv", index=False)
    leaked = set(result.leaked)
    train_match = result.best_match("train")
    held_match = result.best_match("held-out")
    table["leaked"] = [p in leaked for p in paths]
    table["train_match"] = [train_match.get(p, "") for p in paths]
    table["held_out_match"] = [held_match.get(p, "") for p in paths]
    clean = summary_of(table[~table["leaked"]])
    held_parts = (result.matches[result.matches["part"] != "train"]
                  .drop_duplicates("eval_path")["part"].value_counts().to_dict())
    return {
        "train_root": trained.source,
        "train_layout": trained.layout,
        "train_n": result.n_train,
        "overlap": len(leaked),
        "eval_n": result.n_eval,
        "summary": result.summary(),
        "clean_n": clean["n"],
        "clean_accuracy": clean["accuracy"],
        "clean_ua": clean["ua"],
        "clean_macro_f1": clean["macro_f1"],
        "threshold": result.threshold,
        "matched": {p: train_match[p] for p in result.leaked},
        "held_out_n": result.n_held_out,
        "held_out_overlap": len(result.in_held_out),
        "held_out_parts": {str(k): int(v) for k, v in held_parts.items()},
        "held_out_summary": result.held_out_summary(),
        "unfingerprinted": result.failed,
        "split_rows_missing": len(trained.missing),
        "matches_csv": "leakage.csv",
    }
