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


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("ser_uid"):
        OmegaConf.register_new_resolver("ser_uid", _uid, use_cache=True)
