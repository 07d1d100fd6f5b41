"""Hydra set-up shared by train.py, evaluate.py and the tests: config folder and resolvers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
# Files built offline and committed (the tiny backbone's warm start), next to conf/.
ASSETS_DIR = CONFIG_DIR.parent / "assets"


def asset(name: str) -> str:
    """``${ser_asset:NAME}``: a committed asset by the repository's location, not by
    ``paths.root_dir`` (the run's working folder, which tests and users point elsewhere)."""
    return str(ASSETS_DIR / name)


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


def slug(name: str) -> str:
    """A metric name as a file-name part: ``val/ua`` -> ``val_ua``."""
    return str(name).replace("/", "_")


def run_dir(ckpt_path: str | None, default: str) -> str:
    """The run folder of a job: the one a resumed checkpoint (``RUN/checkpoints/*.ckpt``) belongs
    to, so a resume writes into that run and leaves no stray folder, else ``default``."""
    if ckpt_path:
        ckpt = Path(str(ckpt_path)).expanduser().resolve()
        run = ckpt.parent.parent
        if ckpt.parent.name == "checkpoints" and (run / "config.yaml").is_file():
            return str(run)
    return default


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("ser_asset"):
        OmegaConf.register_new_resolver("ser_asset", asset)
    if not OmegaConf.has_resolver("ser_slug"):
        OmegaConf.register_new_resolver("ser_slug", slug)
    if not OmegaConf.has_resolver("ser_run_dir"):
        OmegaConf.register_new_resolver("ser_run_dir", run_dir)
    if not OmegaConf.has_resolver("ser_uid"):
        OmegaConf.register_new_resolver("ser_uid", _uid, use_cache=True)
    if not OmegaConf.has_resolver("ser_sweep_group"):
        OmegaConf.register_new_resolver("ser_sweep_group", sweep_group)
