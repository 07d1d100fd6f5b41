"""One table per Hydra multirun, so the best job of a sweep can be read off without opening folders.

``summarize_sweep`` reads each numbered job folder (``metrics.json`` written by ``ser.training.train``,
``.hydra/overrides.yaml`` written by Hydra) and writes ``summary.csv`` and ``summary.md`` next to
them; ``SweepSummaryCallback`` calls it at the end of every training multirun (``hydra.callbacks``
in conf/train.yaml).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed/incomplete"
_BLOCK_KEYS = ("ua", "accuracy", "macro_f1")
_EXTRA_KEYS = ("ua", "accuracy")
# metrics.json keys that are not test blocks.
_NOT_BLOCKS = {"best_checkpoint", "val_ua_best", "validation", "model"}


def _job_folders(sweep_dir: Path) -> list[Path]:
    """Hydra names job folders by job number (subdir ``${hydra.job.num}``)."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(jobs, key=lambda p: int(p.name))


def _read_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as err:
        log.warning("%s: unreadable overrides (%s)", path, err)
        return []
    return [str(o) for o in overrides]


def _varying(all_overrides: list[list[str]]) -> list[str]:
    """Only what differs between jobs: the shared data paths etc. would hide the swept values."""
    known = [set(o) for o in all_overrides if o]
    if len(known) < 2:
        return [" ".join(o) for o in all_overrides]
    common = set.intersection(*known)
    if all(set(o) <= common for o in all_overrides if o):  # every job ran the same overrides
        return [" ".join(o) for o in all_overrides]
    return [" ".join(x for x in o if x not in common) for o in all_overrides]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _job_row(job_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {
        "job": int(job_dir.name),
        "status": OK,
        "all_overrides": _read_overrides(job_dir),
        "val_ua_best": math.nan,
        **{f"validation_{k}": math.nan for k in _BLOCK_KEYS},
    }
    metrics_path = job_dir / "metrics.json"
    if not metrics_path.is_file():
        row["status"] = FAILED
        row["error"] = "no metrics.json (job failed or was interrupted)"
    else:
        try:
            metrics = json.loads(metrics_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            metrics = None
            row["status"] = FAILED
            row["error"] = f"unreadable metrics.json: {err}"
            log.warning("%s: %s", metrics_path, row["error"])
        if isinstance(metrics, dict):
            row["val_ua_best"] = _number(metrics.get("val_ua_best"))
            validation = metrics.get("validation") or {}
            for key in _BLOCK_KEYS:
                row[f"validation_{key}"] = _number(validation.get(key))
            for name, block in metrics.items():
                if name in _NOT_BLOCKS or not isinstance(block, dict):
                    continue
                for key in _EXTRA_KEYS:
                    row[f"{name}_{key}"] = _number(block.get(key))
    row["folder"] = str(job_dir)
    return row


def _to_markdown(frame: pd.DataFrame) -> str:
    """A pipe table by hand: pandas' to_markdown needs the optional ``tabulate`` package."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4f}"
        return str(value).replace("|", "\\|")

    columns = [c for c in frame.columns if c not in ("all_overrides", "folder")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(cell(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def summarize_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """Rows best first by ``val_ua_best`` (jobs without one last); writes summary.csv and summary.md.

    ``overrides`` holds what differs between jobs, ``all_overrides`` (CSV only) the full list.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep folder (expected the multirun folder "
                                "holding numbered job folders 0/, 1/, ...)")
    rows = [_job_row(job) for job in _job_folders(sweep_dir)]
    if not rows:
        raise FileNotFoundError(f"{sweep_dir}: no job folders (0/, 1/, ...) in this sweep folder")
    for row, varying in zip(rows, _varying([r["all_overrides"] for r in rows])):
        row["overrides"] = varying
        row["all_overrides"] = " ".join(row["all_overrides"])
    frame = pd.DataFrame(rows)
    leading = ["job", "status", "overrides", "val_ua_best"] + [f"validation_{k}" for k in _BLOCK_KEYS]
    tail = (["error"] if "error" in frame.columns else []) + ["all_overrides", "folder"]
    extra = [c for c in frame.columns if c not in leading and c not in tail]
    frame = frame[leading + extra + tail]
    frame = frame.sort_values(["val_ua_best", "job"], ascending=[False, True], na_position="last",
                              kind="stable").reset_index(drop=True)
    frame.to_csv(sweep_dir / "summary.csv", index=False)
    (sweep_dir / "summary.md").write_text(_to_markdown(frame))
    failed = int((frame["status"] != OK).sum())
    log.info("sweep summary of %d jobs (%d failed/incomplete): %s", len(frame), failed,
             sweep_dir / "summary.md")
    return frame


def best_line(frame: pd.DataFrame) -> str:
    """``best: job 1 (model.optimizer.lr=0.003) val/ua_best=0.52``, or why there is none."""
    scored = frame[frame["val_ua_best"].notna()]
    if scored.empty:
        return "best: none (no job finished with a val/ua_best)"
    top = scored.iloc[0]
    return f"best: job {top['job']} ({top['overrides']}) val/ua_best={top['val_ua_best']:.4g}"


def _split_override(override: str) -> tuple[str, str] | None:
    """``model.optimizer.lr=1e-3`` -> (``model.optimizer.lr``, ``1e-3``); ``+x=1`` -> (``x``,
    ``1``); a deletion (``~x``) or anything without ``=`` -> None."""
    if override.startswith("~") or "=" not in override:
        return None
    key, value = override.split("=", 1)
    return key.lstrip("+"), value


def _value(text: str) -> Any:
    """A number where the override is one (``1e-3``, ``16``), else the text as written."""
    try:
        number = float(text)
    except ValueError:
        return text
    integer = "." not in text and "e" not in text.lower()
    if math.isfinite(number) and number.is_integer() and integer:
        return int(number)
    return number


def sweep_parameters(frame: pd.DataFrame) -> pd.DataFrame:
    """The swept parameters of a :func:`summarize_sweep` table: one column per override key whose
    value differs between jobs (or that only some jobs set), one row per job, same index.

    Overrides are read from each job's ``.hydra/overrides.yaml`` (``folder`` column), so values
    with spaces stay whole; a job whose folder is gone falls back to the ``all_overrides`` text.
    A column whose values are all numbers is numeric (``1e-3`` -> 0.001); a job that did not set
    a key has NaN/None there. No columns when every job ran the same overrides.
    """
    per_job: list[dict[str, str]] = []
    for _, row in frame.iterrows():
        folder = row.get("folder")
        overrides = _read_overrides(Path(str(folder))) if isinstance(folder, str) else []
        if not overrides and isinstance(row.get("all_overrides"), str):
            overrides = row["all_overrides"].split()
        pairs = (_split_override(o) for o in overrides)
        per_job.append(dict(p for p in pairs if p is not None))
    keys: list[str] = []
    for job in per_job:
        keys += [k for k in job if k not in keys]
    swept = [k for k in keys if len({job.get(k) for job in per_job}) > 1]
    columns = {}
    for key in swept:
        values = [_value(job[key]) if key in job else None for job in per_job]
        numeric = all(isinstance(v, (int, float)) for v in values if v is not None)
        columns[key] = pd.Series([math.nan if v is None else v for v in values], dtype=float) \
            if numeric else pd.Series(values, dtype=object)
    return pd.DataFrame(columns, index=range(len(per_job))).set_index(frame.index)


class SweepSummaryCallback(Callback):
    """Hydra callback: the summary is written even when some jobs failed, as soon as the sweep ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            frame = summarize_sweep(sweep_dir)
        except FileNotFoundError as err:
            log.warning("no sweep summary: %s", err)
            return
        log.info(best_line(frame))
        log.info("sweep summary: %s and %s", sweep_dir / "summary.md", sweep_dir / "summary.csv")
