"""Sweep summaries: one table per multirun, best job first, failed jobs kept visible."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ser.cli import main as cli_main
from ser.sweeps import FAILED, summarize_sweep

REPO = Path(__file__).parents[1]


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> Path:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    return job


def _metrics(val_ua_best: float, ravdess_ua: float) -> dict:
    return {
        "best_checkpoint": "x.ckpt",
        "val_ua_best": val_ua_best,
        "validation": {"n": 48, "accuracy": val_ua_best + 0.01, "ua": val_ua_best,
                       "macro_f1": val_ua_best - 0.01, "per_class": {}},
        "ravdess": {"n": 40, "accuracy": ravdess_ua + 0.02, "ua": ravdess_ua},
        "model": "model/",
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00-000000_host-1"
    shared = ["experiment=demo", "data.root=/data/x"]
    _job(sweep, 0, shared + ["model.optimizer.lr=0.001"], _metrics(0.31, 0.20))
    _job(sweep, 1, shared + ["model.optimizer.lr=0.003"], _metrics(0.52, 0.25))
    _job(sweep, 2, shared + ["model.optimizer.lr=0.01"], None)  # crashed before writing metrics
    (sweep / "multirun.yaml").write_text("{}\n")  # Hydra's own file: not a job
    return sweep


def test_summary_orders_best_first_and_keeps_failed_jobs(sweep: Path) -> None:
    frame = summarize_sweep(sweep)

    assert frame["job"].tolist() == [1, 0, 2]
    assert frame["status"].tolist() == ["ok", "ok", FAILED]
    assert frame.loc[0, "overrides"] == "model.optimizer.lr=0.003"  # shared overrides left out
    assert frame.loc[0, "all_overrides"] == "experiment=demo data.root=/data/x model.optimizer.lr=0.003"
    for column in ("val_ua_best", "validation_ua", "validation_accuracy", "validation_macro_f1",
                   "ravdess_ua", "ravdess_accuracy", "folder"):
        assert column in frame.columns
    assert frame.loc[0, "ravdess_ua"] == pytest.approx(0.25)
    assert frame.loc[1, "validation_accuracy"] == pytest.approx(0.32)
    assert math.isnan(frame.loc[2, "val_ua_best"])
    assert frame.loc[2, "folder"] == str(sweep / "2")

    on_disk = pd.read_csv(sweep / "summary.csv")
    assert on_disk["job"].tolist() == [1, 0, 2]
    table = (sweep / "summary.md").read_text().splitlines()
    assert table[0].startswith("| job | status | overrides | val_ua_best")
    assert len(table) == 2 + 3
    assert "model.optimizer.lr=0.003" in table[2] and "0.5200" in table[2]
    assert "data.root" not in table[2]
    assert FAILED in table[4]


def test_summarize_command_prints_table_and_best_job(sweep: Path, capsys) -> None:
    assert cli_main(["summarize", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "| job | status | overrides" in out
    assert out.strip().splitlines()[-1] == "best: job 1 (model.optimizer.lr=0.003) val/ua_best=0.52"


def test_summarize_command_names_a_missing_folder(tmp_path: Path, capsys) -> None:
    assert cli_main(["summarize", str(tmp_path / "nope")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_callback_writes_summary_at_multirun_end(sweep: Path) -> None:
    from omegaconf import OmegaConf

    from ser.sweeps import SweepSummaryCallback

    SweepSummaryCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert pd.read_csv(sweep / "summary.csv")["job"].tolist() == [1, 0, 2]


@pytest.mark.slow
def test_real_multirun_writes_a_summary(tiny_corpora: dict[str, Path], tmp_path: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    command = [
        sys.executable, "train.py", "-m", "experiment=demo",
        "model.optimizer.lr=1e-3,2e-3", "trainer.max_epochs=1",
        f"data.root={tiny_corpora['indonesian']}", "synthetic_data=null",
        f"extra_test.ravdess.root={tiny_corpora['ravdess']}", "logger=none",
        f"paths.log_dir={tmp_path}", "data.num_workers=0",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    sweeps = list((tmp_path / "demo" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    assert all((p / "metrics.json").is_file() for p in jobs)
    summary = pd.read_csv(sweeps[0] / "summary.csv")
    assert len(summary) == 2
    lrs = summary["overrides"].str.fullmatch(r"model\.optimizer\.lr=(\S+)")
    assert lrs.all(), summary["overrides"].tolist()
    assert sorted(summary["overrides"].str.split("=").str[1].astype(float)) == [1e-3, 2e-3]
    assert summary["val_ua_best"].is_monotonic_decreasing
    assert "ravdess_ua" in summary.columns
    assert str(sweeps[0] / "summary.md") in done.stdout + done.stderr


def test_optuna_search_config_composes(tmp_path: Path) -> None:
    """Only with the optional plugin (pip install hydra-optuna-sweeper); it maximises val/ua."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra import compose, initialize_config_dir

    from ser.config import CONFIG_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna", "experiment=demo"],
                      return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and cfg.optimized_metric == "val/ua"
    assert {"model.optimizer.lr", "model.head_lr"} <= set(sweeper.params)
    assert cfg.hydra.callbacks.sweep_summary._target_ == "ser.sweeps.SweepSummaryCallback"
