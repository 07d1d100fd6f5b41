"""Hydra set-up shared by train.py, evaluate.py and the tests: config folder and resolvers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def _uid() -> str:
    """Host and process id: two runs started in the same microsecond still get two folders."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}"


def sweep_group(prefix: str = "") -> str | None:
    """The W&B group of a multirun's jobs: ``<prefix>-<sweep folder name>``; None in a single run.

    Every job of one sweep gets the same name, two sweeps never share one (the folder name
    carries time and process), and the dashboard's group matches the folder on disk.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    name = Path(hydra_cfg.sweep.dir).name
    return f"{prefix}-{name}" if prefix else name


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("ser_uid"):
        OmegaConf.register_new_resolver("ser_uid", _uid, use_cache=True)
    if not OmegaConf.has_resolver("ser_sweep_group"):
        OmegaConf.register_new_resolver("ser_sweep_group", sweep_group)
