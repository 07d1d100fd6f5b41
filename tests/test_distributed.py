"""Distributed training and multirun jobs: DDP on the CPU (gloo), sweep groups, clean job ends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from ser.config import CONFIG_DIR, register_resolvers

REPO = Path(__file__).parents[1]


def _hydra_job(overrides: list[str], mode: RunMode, tmp_path: Path) -> DictConfig:
    """A job's config with the Hydra state ``hydra.main`` would set for it."""
    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.sweep.dir = str(tmp_path / "multiruns" / "2026-01-02_03-04-05-000006_host-7")
        cfg.hydra.runtime.output_dir = str(tmp_path / "multiruns" / "2026-01-02_03-04-05-000006_host-7" / "1")
        cfg.hydra.runtime.cwd = str(REPO)
        cfg.hydra.job.num = 1
    HydraConfig().set_config(cfg)
    return cfg


def test_the_private_lightning_api_of_ser_distributed_is_still_there() -> None:
    """ser.distributed builds on Lightning internals (no public hook says what a DDP child runs):
    a Lightning release that moves them must fail here, by name, not inside a multirun."""
    import importlib

    import lightning
    import torch

    where = "lightning.pytorch.strategies.launchers.subprocess_script"
    try:
        launcher = importlib.import_module(where)._SubprocessScriptLauncher
    except (ImportError, AttributeError) as error:
        pytest.fail(f"lightning {lightning.__version__}: {where}._SubprocessScriptLauncher is gone "
                    f"({error}); ser/distributed.py needs it: pin lightning in pyproject.toml to "
                    "the minor version it was tested with, or port HydraJobDDPStrategy")
    from lightning.pytorch.strategies import DDPStrategy

    for owner, name in ((launcher, "_call_children_scripts"), (DDPStrategy, "_configure_launcher")):
        assert callable(getattr(owner, name, None)), (
            f"lightning {lightning.__version__}: {owner.__name__}.{name} is gone; "
            "ser/distributed.py overrides it (pyproject.toml pins the tested minor version)")

    from lightning.pytorch.plugins.environments import LightningEnvironment

    from ser.distributed import HydraJobDDPStrategy, HydraJobLauncher

    strategy = HydraJobDDPStrategy(parallel_devices=[torch.device("cpu")] * 2,
                                   cluster_environment=LightningEnvironment())
    strategy._configure_launcher()
    assert type(strategy.launcher) is HydraJobLauncher, (
        f"lightning {lightning.__version__}: DDPStrategy._configure_launcher no longer sets "
        f"_launcher to a _SubprocessScriptLauncher (got {type(strategy.launcher).__name__}), so "
        "DDP children in a multirun would rerun the whole sweep")


def test_ddp_children_rerun_the_current_job_not_the_whole_sweep(tmp_path: Path, monkeypatch) -> None:
    """Lightning restarts ranks 1..N-1 from the command line; in a sweep that would be the sweep."""
    from lightning.fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd

    from ser.distributed import current_job_command_line

    cfg = _hydra_job(["experiment=demo", "model.optimizer.lr=0.002"], RunMode.MULTIRUN, tmp_path)
    sweep_argv = ["train.py", "-m", "experiment=demo", "model.optimizer.lr=0.001,0.002"]
    monkeypatch.setattr(sys, "argv", sweep_argv)

    with current_job_command_line():
        command, _ = _hydra_subprocess_cmd(local_rank=1)  # Lightning's own command builder

    # (the head is the interpreter and script, or `-m module` under `python -m pytest`)
    assert command[-6:-3] == ["experiment=demo", "model.optimizer.lr=0.002", "hydra.mode=RUN"]
    assert "model.optimizer.lr=0.001,0.002" not in command and command.count("-m") <= 1
    assert f'hydra.run.dir="{cfg.hydra.runtime.output_dir}"' in command
    assert sys.argv == sweep_argv  # put back for Hydra and everything after
    assert HydraConfig.get().run.dir == cfg.hydra.run.dir


def test_ddp_children_run_one_job_even_when_the_config_sets_multirun(tmp_path: Path,
                                                                     monkeypatch) -> None:
    """hparams_search=optuna sets ``hydra.mode: MULTIRUN`` in the config itself, so the child's
    command line (made of the job's overrides) would start a sweep again. Hydra, given the
    exact child command line, must resolve RUN mode; without the fix it resolves MULTIRUN."""
    from lightning.fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd

    from ser.distributed import current_job_command_line

    # A search config like hparams_search=optuna (which needs the optional Optuna plugin).
    extra = tmp_path / "conf"
    (extra / "hparams_search").mkdir(parents=True)
    (extra / "hparams_search" / "multirun_like_optuna.yaml").write_text(
        "# @package _global_\nhydra:\n  mode: MULTIRUN\n")
    _hydra_job(["experiment=demo", "model.optimizer.lr=0.002"], RunMode.MULTIRUN, tmp_path)
    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.overrides.task = ["experiment=demo", "hparams_search=multirun_like_optuna",
                                    "model.optimizer.lr=0.002"]
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "hparams_search=multirun_like_optuna",
                                      "experiment=demo"])
    with current_job_command_line():
        command, _ = _hydra_subprocess_cmd(local_rank=1)
    overrides = command[command.index("experiment=demo"):]

    def resolved_mode(args: list[str]) -> str:
        shown = subprocess.run(
            [sys.executable, "train.py", "--config-dir", str(extra), *args, "--cfg", "hydra"],
            cwd=REPO, capture_output=True, text=True, timeout=240,
            env=dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled"))
        assert shown.returncode == 0, shown.stderr[-2000:]
        return yaml.safe_load(shown.stdout)["hydra"]["mode"]

    assert resolved_mode(overrides) == "RUN"
    assert resolved_mode([a for a in overrides if a != "hydra.mode=RUN"]) == "MULTIRUN"


def test_multirun_jobs_share_the_sweep_wandb_group_and_single_runs_have_none(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from ser.tracking import finish_wandb

    cfg = _hydra_job(["experiment=demo", "logger=wandb"], RunMode.MULTIRUN, tmp_path)
    logger = instantiate(cfg.logger.wandb)
    try:
        assert logger.experiment.group == "demo-2026-01-02_03-04-05-000006_host-7"
    finally:
        finish_wandb()  # a run left open would be reused by the next WandbLogger in this process

    cfg = _hydra_job(["experiment=demo", "logger=wandb"], RunMode.RUN, tmp_path)
    assert cfg.logger.wandb.group is None


def test_a_failed_job_still_finishes_its_wandb_run_and_clears_ddp_state(monkeypatch) -> None:
    """The next job of the sweep must start its own W&B run and its own processes."""
    import wandb

    import ser.training

    def crashing_job(cfg):
        wandb.init(mode="disabled", group="sweep")
        os.environ["LOCAL_RANK"] = "0"  # what Lightning's launcher leaves behind
        raise RuntimeError("out of memory")

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(ser.training, "_run_job", crashing_job)
    with pytest.raises(RuntimeError, match="out of memory"):
        ser.training.train(DictConfig({}))
    assert wandb.run is None
    assert "LOCAL_RANK" not in os.environ


def _rank_lines(log_text: str, test_set: str) -> list[tuple[float, ...]]:
    """The per-rank lines of one test pass (``val_best``, ``test``, an extra set's name)."""
    return [tuple(map(float, m)) for m in re.findall(
        rf"{test_set}: rank (\d) of 2 scored (\d+) of (\d+) clips; synced ua=([\d.]+)",
        log_text)]


@pytest.mark.slow
def test_ddp_on_cpu_inside_a_multirun(tiny_corpora: dict[str, Path], tmp_path: Path) -> None:
    """Two jobs, each a 2-process gloo fast_dev_run: every clip tested once across the ranks,
    metrics synced (both ranks log the value metrics.json reports), one export per job, one
    sweep folder, and each job's child process ran that job's own learning rate."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    command = [
        sys.executable, "train.py", "-m", "experiment=demo", "trainer=ddp_cpu",
        "debug=fast_dev_run", "model.optimizer.lr=1e-3,2e-3", "logger=wandb",
        f"data.root={tiny_corpora['indonesian']}", "synthetic_data=null",
        f"extra_test.ravdess.root={tiny_corpora['ravdess']}", f"paths.log_dir={tmp_path}",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]

    sweeps = list((tmp_path / "debug" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps  # the children did not start sweeps of their own
    sweep = sweeps[0]
    for num, lr in ((0, "0.001"), (1, "0.002")):
        job = sweep / str(num)
        parent_log = (job / "train.log").read_text()
        child_log = (job / "train_ddp_process_1.log").read_text()
        assert f"backbone lr={lr}" in parent_log and f"backbone lr={lr}" in child_log

        metrics = json.loads((job / "metrics.json").read_text())
        for block, test_set in (("validation", "val_best"), ("test", "test"),
                                ("ravdess", "ravdess")):
            ranks = {int(line[0]): line for line in
                     [*_rank_lines(parent_log, test_set), *_rank_lines(child_log, test_set)]}
            assert set(ranks) == {0, 1}
            scored = [int(ranks[r][1]) for r in (0, 1)]
            total = int(ranks[0][2])
            assert all(scored) and sum(scored) == total  # disjoint shares, every clip once
            assert ranks[0][3] == ranks[1][3] == pytest.approx(metrics[block]["ua"], abs=1e-6)
            unmapped = metrics[block].get("unmapped_n", 0)
            assert metrics[block]["n"] + unmapped == total  # rank zero wrote all clips

        assert "exported the model" in parent_log and "exported the model" not in child_log
        assert (job / "model" / "config.json").is_file()
        config = yaml.safe_load((job / "config.yaml").read_text())
        assert config["logger"]["wandb"]["group"] == f"debug-{sweep.name}"
    assert (sweep / "summary.csv").is_file()


def test_slurm_launcher_config_asks_one_task_per_gpu_on_each_node() -> None:
    """hydra/launcher=slurm (hydra-submitit-launcher) sizes the SLURM job from the trainer."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                                          "trainer.num_nodes=2", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu"


def test_under_slurm_lightning_takes_ranks_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    """What a SLURM task started by submitit sees: the ranks come from SLURM, no child processes."""
    from hydra.utils import instantiate
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    slurm = {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "2",
             "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
             "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "123", "SLURM_NODELIST": "gpu[01-02]"}
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    # The DDP strategy sets the process-wide rank for rank-zero-only code; put it back after.
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    cfg = _hydra_job(["experiment=demo", "trainer=ddp_cpu", "trainer.num_nodes=2"], RunMode.RUN,
                     tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)

    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and environment.creates_processes_externally
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (4, 3, 1, 1)
    assert type(trainer.strategy).__name__ == "HydraJobDDPStrategy"


def test_several_processes_without_trainer_ddp_are_refused_before_training(tiny_corpora, tmp_path):
    """Lightning's sampler over ours would shard twice: metrics on a fraction of the clips."""
    from helpers import compose_config

    from ser.training import train

    cfg = compose_config("train", tmp_path, [
        "experiment=demo", "trainer.devices=2", "+trainer.strategy=ddp", "logger=none",
        f"data.root={tiny_corpora['indonesian']}", "synthetic_data=null"])
    with pytest.raises(ValueError, match="use_distributed_sampler=true.*trainer=ddp"):
        train(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()
