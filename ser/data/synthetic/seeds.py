"""Random streams of the synthetic corpora, each seeded by (seed, keys).

Why: every speaker and every file has its own stream, so the same seed gives byte-identical files
whatever the corpus size, the order of writing or the number of workers.
"""

from __future__ import annotations

import zlib

import numpy as np


def seed_seq(seed: int, *keys: str) -> np.random.SeedSequence:
    """The stream of ``keys`` (e.g. layout, "clip", file key) under ``seed``."""
    return np.random.SeedSequence([seed, *(zlib.crc32(k.encode()) for k in keys)])
