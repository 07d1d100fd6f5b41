"""One W&B run per evaluation (``logger=wandb``): scalars, figures and the predictions table.

The mode comes from :func:`ser.tracking.wandb_mode` (honours ``WANDB_MODE``; offline without an
API key or network), so logging never blocks an evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


def _scalars(metrics: Mapping[str, Any], prefix: str = "eval") -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("n", "accuracy", "ua", "macro_f1", "n_failed"):
        if metrics.get(key) is not None:
            out[f"{prefix}/{key}"] = float(metrics[key])
    for key, block in metrics.items():
        if key.startswith("per_") and key != "per_class" and isinstance(block, dict):
            for group, values in block.items():
                out[f"{prefix}/{key[4:]}/{group}/accuracy"] = float(values["accuracy"])
    return out


def log_evaluation(settings: Mapping[str, Any], config: dict[str, Any],
                   metrics: Mapping[str, Any], figures: Sequence[Path],
                   predictions: pd.DataFrame, out_dir: Path) -> None:
    import wandb

    from ser.tracking import finish_run, init_settings, start_or_offline, wandb_mode

    init = dict(project=settings.get("project") or "ser", name=settings.get("name"),
                group=settings.get("group"), tags=list(settings.get("tags") or []),
                job_type="eval", dir=str(out_dir), config=config, mode=wandb_mode(),
                settings=init_settings(settings.get("init_timeout"),
                                       settings.get("finish_timeout")))
    run = start_or_offline(lambda: wandb.init(**init), init)
    try:
        run.log(_scalars(metrics))
        for row in metrics.get("noise") or []:
            if row["snr_db"] is not None:
                run.log({f"noise/snr{row['snr_db']:g}/{k}": row[k]
                         for k in ("accuracy", "ua", "macro_f1") if row[k] is not None})
        run.log({f"figures/{Path(p).stem}": wandb.Image(str(p)) for p in figures})
        table = predictions.astype(object).where(predictions.notna(), None)
        run.log({"predictions": wandb.Table(dataframe=table.astype(str))})
        for key in ("accuracy", "ua", "macro_f1"):
            if metrics.get(key) is not None:
                run.summary[f"eval/{key}"] = metrics[key]
    finally:
        finish_run(run)
    log.info("logged the evaluation to W&B")
