"""The one folder ser keeps its caches in: ``$SER_CACHE``, default ``~/.cache/ser``.

What lives there: the tiny backbone (``tiny-wav2vec2-<hash>/``), the audit's fingerprints
(``fingerprints/``), the bf16-or-fp32 decision per processor (``precision.json``) and the
default prediction history (``history.db``). Tests point ``SER_CACHE`` at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SER_CACHE"


def cache_dir() -> Path:
    """``$SER_CACHE`` (``~`` expanded), else ``~/.cache/ser``; read on every call, so a changed
    environment takes effect at once. Not created here: each user makes what it writes."""
    return Path(os.environ.get(ENV_VAR, Path.home() / ".cache" / "ser")).expanduser()
