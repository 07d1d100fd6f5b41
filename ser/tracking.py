"""Experiment tracking that never blocks a run: W&B when it can, offline when it cannot."""

from __future__ import annotations

import logging
import netrc
import os
import socket
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(url: str, timeout: float = 3.0) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_mode() -> str:
    """The mode W&B will run in, honouring ``WANDB_MODE``; decided once and exported."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if not _has_wandb_key():
        log.warning("W&B: no API key configured; logging offline (upload later with `wandb sync`)")
        mode = "offline"
    elif not _reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")):
        log.warning("W&B: server not reachable; logging offline (upload later with `wandb sync`)")
        mode = "offline"
    else:
        mode = "online"
    os.environ["WANDB_MODE"] = mode
    return mode


def wandb_logger(**kwargs: Any):
    """Lightning's WandbLogger in the mode :func:`wandb_mode` decides."""
    from lightning.pytorch.loggers import WandbLogger

    kwargs.setdefault("mode", wandb_mode())
    if kwargs.get("save_dir"):
        os.makedirs(kwargs["save_dir"], exist_ok=True)
    return WandbLogger(**kwargs)


def finish_wandb(exit_code: int = 0) -> None:
    """Close the current W&B run (failed when ``exit_code`` is not 0), so the next job of a
    sweep starts its own."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
