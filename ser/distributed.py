"""Lightning's DDP under Hydra multiruns: child processes rerun the current job, not the sweep.

Lightning starts ranks 1..N-1 of a single node by rerunning the command line
(``sys.argv``) with ``hydra.run.dir`` set to the parent's run folder. In a multirun that command
line is the whole sweep (``-m model.optimizer.lr=1e-5,3e-5``): every child would start a sweep
of its own, write a second sweep folder, and with a sampling sweeper (Optuna) join the parent's
job with other hyperparameters. :class:`HydraJobDDPStrategy` keeps Lightning's launcher and
only changes what it sees while it starts the children: the current job's own overrides, RUN
mode (whatever the config's ``hydra.mode`` says), and the job's folder as the run folder. Under SLURM or torchrun the processes are created outside
Lightning and nothing here applies.

Lightning has no public hook for what a child process runs, so this subclasses its private
launcher (``_SubprocessScriptLauncher``, ``DDPStrategy._configure_launcher``): pyproject.toml pins
the Lightning minor version it was tested with, and tests/test_distributed.py names the piece
that moved if a release changes them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import open_dict, read_write


@contextmanager
def current_job_command_line() -> Iterator[None]:
    """While inside: ``sys.argv`` runs only the current Hydra job, in its own folder."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        yield
        return
    hydra_cfg = HydraConfig.get()
    saved_argv, saved_run_dir = sys.argv, hydra_cfg.run.dir
    # hydra.mode=RUN last: a config may set hydra.mode: MULTIRUN itself (hparams_search=optuna
    # does), and a child started from it would run the sweep again, not the job.
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task, "hydra.mode=RUN"]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = saved_argv
        with read_write(hydra_cfg), open_dict(hydra_cfg):
            hydra_cfg.run.dir = saved_run_dir


class HydraJobLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher, with children that rerun the current Hydra job."""

    def _call_children_scripts(self) -> None:
        with current_job_command_line():
            super()._call_children_scripts()


class HydraJobDDPStrategy(DDPStrategy):
    """``strategy: ddp`` that also works inside ``python train.py -m ...`` (conf/trainer/ddp.yaml)."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is _SubprocessScriptLauncher:
            self._launcher = HydraJobLauncher(self.cluster_environment, self.num_processes,
                                              self.num_nodes)


# Set by Lightning's launcher in the process that starts the children; left behind they make the
# next job of a sweep believe its processes already exist (LOCAL_RANK) and reuse a dead port.
LAUNCHER_ENVIRONMENT = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def distributed_job() -> Iterator[None]:
    """One training job's distributed state, cleared at its end so the next job of a multirun
    starts its own process group (and its own child processes)."""
    import torch.distributed as dist

    saved = {name: os.environ.get(name) for name in LAUNCHER_ENVIRONMENT}
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
