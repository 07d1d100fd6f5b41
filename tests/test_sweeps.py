"""Sweep summaries: one table per multirun, best job first, failed jobs kept visible."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ser.cli import main as cli_main
from ser.sweeps import FAILED, summarize_sweep, sweep_parameters


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


def test_sweep_parameters_are_the_overrides_that_differ(sweep: Path) -> None:
    frame = summarize_sweep(sweep)
    params = sweep_parameters(frame)

    assert list(params.columns) == ["model.optimizer.lr"]  # experiment, data.root are shared
    assert params.index.equals(frame.index)
    assert params["model.optimizer.lr"].tolist() == [0.003, 0.001, 0.01]  # best first, as frame
    assert params["model.optimizer.lr"].dtype == float


def test_sweep_parameters_of_a_grid_with_text_values_and_keys_set_by_some_jobs(tmp_path):
    sweep = tmp_path / "grid"
    _job(sweep, 0, ["model=tiny", "data.batch_size=8", "data.actors=[1, 2]"], _metrics(0.3, 0.2))
    _job(sweep, 1, ["model=base", "data.batch_size=16", "data.actors=[1, 2]"], _metrics(0.4, 0.2))
    _job(sweep, 2, ["model=base", "data.batch_size=8", "data.actors=[1, 2]", "+seed=7"],
         _metrics(0.5, 0.2))
    frame = summarize_sweep(sweep)
    params = sweep_parameters(frame).set_index(frame["job"])

    assert list(params.columns) == ["model", "data.batch_size", "seed"]
    assert params["model"].to_dict() == {0: "tiny", 1: "base", 2: "base"}
    assert params["data.batch_size"].to_dict() == {0: 8, 1: 16, 2: 8}
    assert params.loc[2, "seed"] == 7 and math.isnan(params.loc[0, "seed"])


def test_sweep_parameters_fall_back_to_the_summary_text_when_job_folders_are_gone(sweep: Path):
    frame = summarize_sweep(sweep)
    frame["folder"] = frame["folder"].str.replace(str(sweep), str(sweep.parent / "moved"))
    assert sweep_parameters(frame)["model.optimizer.lr"].tolist() == [0.003, 0.001, 0.01]


def test_sweep_figure_has_a_panel_per_parameter_and_rings_the_best_job(sweep: Path) -> None:
    from ser.figures.sweeps import sweep_figure

    frame = summarize_sweep(sweep)
    fig = sweep_figure(frame, sweep_parameters(frame))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 1
    assert axes[0].get_xlabel() == "model.optimizer.lr"
    assert axes[0].get_xscale() == "log"  # 0.001 .. 0.01
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == \
        ["val_ua_best", "ravdess_ua"]
    ringed = [line for line in axes[0].lines if line.get_markerfacecolor() == "none"]
    assert [line.get_xdata()[0] for line in ringed] == [0.003, 0.003]  # job 1, both metrics
    assert fig._suptitle.get_text() == "best: job 1 (ringed)"

    no_params = sweep_figure(frame, sweep_parameters(frame).iloc[:, :0], metrics=["val_ua_best"])
    assert no_params.axes[0].get_xlabel() == "job"
    with pytest.raises(ValueError, match="none of the metrics"):
        sweep_figure(frame, sweep_parameters(frame), metrics=["nope"])


@pytest.mark.slow
def test_real_multirun_writes_a_summary(demo_outputs: dict) -> None:
    """The session's demo multirun (tests/conftest.py: two learning rates, one epoch, the tiny
    corpora), shared with the notebook tests so the demo trains once."""
    done = demo_outputs["multirun"]
    tmp_path = demo_outputs["log_dir"]
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


@pytest.mark.slow
def test_optuna_and_the_summary_name_the_same_best_trial(tiny_corpora, tmp_path: Path) -> None:
    """train() returns the run's best validation value, the one summary.csv ranks by, so the
    sweeper's best trial and the summary's best job are the same."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    import os
    import subprocess
    import sys

    import yaml

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "train.py", "hparams_search=optuna", "experiment=demo",
         "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=3",
         "trainer.max_epochs=3", "debug=limit", f"data.root={tiny_corpora['indonesian']}",
         "synthetic_data=null", f"extra_test.ravdess.root={tiny_corpora['ravdess']}", "logger=none", f"paths.log_dir={tmp_path}",
         "data.num_workers=0", "data.val_fraction=0.25", "data.test_fraction=0.25"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = next((tmp_path / "debug" / "multiruns").iterdir())
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["val_ua_best"].iloc[0] == pytest.approx(best["best_value"])
    top = json.loads((sweep / str(summary["job"].iloc[0]) / "metrics.json").read_text())
    assert top["best_value"] == pytest.approx(best["best_value"])
    job_overrides = yaml.safe_load(
        (sweep / str(summary["job"].iloc[0]) / ".hydra" / "overrides.yaml").read_text())
    for key, value in best["best_params"].items():
        assert f"{key}={value}" in job_overrides  # Optuna's best trial is the summary's top job
