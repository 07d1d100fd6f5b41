"""Shared test setup: no network, no W&B, small thread counts."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
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
    """Synthetic corpora in both layouts, a few files per class (written in about a second)."""
    from ser.data.synthetic import write_synthetic_corpora

    return write_synthetic_corpora(tmp_path_factory.mktemp("synth-tiny"), seed=0, size="tiny")
