"""Shared test setup: no network, no W&B, small thread counts."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
# Training exports ONNX at its end (conf/train.yaml onnx_export); only the tests of that export
# need it, the others would pay seconds each for nothing. They set it back.
os.environ["SER_ONNX_EXPORT"] = "false"
# precision="auto" measures bf16 against fp32 and takes bf16 where it is faster (a Zen 4 does):
# tests that compare numbers with fp32 references run fp32; the precision tests unset this.
os.environ["SER_PRECISION"] = "fp32"
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _ser_cache(tmp_path_factory) -> Path:
    """The tiny backbone is written here, never to the user's home cache."""
    cache = tmp_path_factory.mktemp("ser-cache")
    os.environ["SER_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="module")
def one_thread():
    """The tiny model runs hundreds of small ops: one thread avoids waiting on a busy core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_corpora(tmp_path_factory) -> dict[str, Path]:
    """Synthetic corpora in both layouts, a few files per class (espeak-ng; ~3 s of CPU)."""
    from ser.data.synthetic import write_synthetic_corpora

    return write_synthetic_corpora(tmp_path_factory.mktemp("synth-tiny"), seed=0, size="tiny")


@pytest.fixture(scope="session")
def demo_outputs(tiny_corpora, tmp_path_factory) -> dict:
    """What the demo writes, made once per session on the tiny corpora (about 25 s): a 2-job
    1-epoch multirun over two learning rates (``python train.py -m experiment=demo ...``), then
    ``python evaluate.py dataset=ravdess`` on job 0's exported model against the tiny RAVDESS.

    Keys: ``log_dir`` (``paths.log_dir`` of both), ``multirun`` (its CompletedProcess, output
    captured), ``sweep_dir``, ``evaluate`` (CompletedProcess), ``eval_dir`` (the evaluation
    folder). Offline: HF_HUB_OFFLINE=1, WANDB_MODE=disabled, one torch thread. Tests that use it
    train, so mark them ``slow``; treat the folders as read-only (copy before writing).
    """
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    log_dir = tmp_path_factory.mktemp("demo-outputs")
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    multirun = subprocess.run(
        [sys.executable, "train.py", "-m", "experiment=demo",
         "model.optimizer.lr=1e-3,2e-3", "trainer.max_epochs=1",
         f"data.root={tiny_corpora['indonesian']}", "synthetic_data=null",
         f"extra_test.ravdess.root={tiny_corpora['ravdess']}", "logger=none",
         f"paths.log_dir={log_dir}", "data.num_workers=0",
         # 30 clips: larger held-out shares than 10 %, a few speakers each
         "data.val_fraction=0.25", "data.test_fraction=0.25"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    if multirun.returncode != 0:
        pytest.fail(f"demo multirun failed ({multirun.returncode}):\n{multirun.stderr[-3000:]}")
    sweeps = sorted((log_dir / "demo" / "multiruns").iterdir())
    if len(sweeps) != 1:
        pytest.fail(f"expected one sweep folder under {log_dir / 'demo' / 'multiruns'}: {sweeps}")
    model = sweeps[0] / "0" / "model"
    evaluated = subprocess.run(
        [sys.executable, "evaluate.py", "dataset=ravdess", f"model_path={model}",
         f"dataset.root={tiny_corpora['ravdess']}", "dataset.actors=all",
         f"paths.log_dir={log_dir}", "progress=false", "print_rows=0"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    last = (evaluated.stdout.strip().splitlines() or [""])[-1]
    if evaluated.returncode != 0 or not last.startswith("report: "):
        pytest.fail(f"evaluate.py failed ({evaluated.returncode}):\n{evaluated.stderr[-3000:]}")
    return {"log_dir": log_dir, "multirun": multirun, "sweep_dir": sweeps[0],
            "evaluate": evaluated, "eval_dir": Path(last[len("report: "):]).parent}


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL cluster (tests/pg_cluster.py), started once per session.
    Skipped with the reason where PostgreSQL is missing, except under CI, where it must run."""
    from pg_cluster import PostgresCluster, missing

    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI is set, so the PostgreSQL tests must run, but {reason}")
        pytest.skip(reason)
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty history store of each kind: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return request.getfixturevalue("postgres").new_database()
