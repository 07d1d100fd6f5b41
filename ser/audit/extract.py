"""Files in, fingerprints out: hash each file, take the cached fingerprint or decode and compute.

Why a separate step: decoding is nearly all of an audit's cost, so it runs in worker processes
and is skipped for every file whose content was seen before (see :mod:`ser.audit.cache`).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ser.audio import AudioError, load_audio
from ser.audit.cache import FingerprintCache, content_hash
from ser.audit.fingerprint import Fingerprint, fingerprint

log = logging.getLogger(__name__)

_SERIAL_BELOW = 64  # fewer files than this: no worker processes (their start costs more)


@dataclass
class Extraction:
    """Fingerprints by path, the files that failed (path -> reason) and cache counts."""

    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    cache_hits: int = 0
    computed: int = 0


def _read(path: str) -> tuple[bytes | None, str | None]:
    try:
        return Path(path).read_bytes(), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"


def _compute(job: tuple[str, str]) -> tuple[str, Fingerprint | None, str | None]:
    """(path, fingerprint, error): decode, fingerprint and cache one file; never raises for a
    bad file. Runs in worker processes."""
    path, cache_root = job
    data, error = _read(path)
    if data is None:
        return path, None, error
    try:
        audio = load_audio(data, name=path)
    except AudioError as exc:
        return path, None, exc.reason
    fp = fingerprint(audio)
    if fp.frames.shape[0] < 2:
        return path, None, "silent: no audio above the trim threshold"
    FingerprintCache(cache_root).put(content_hash(data), fp)
    return path, fp, None


def extract(paths: list[str], cache: FingerprintCache, workers: int | None = None) -> Extraction:
    """Fingerprint ``paths`` (duplicates are done once); ``workers``: processes (default 2).

    Cached fingerprints are read here (hashing + one small file each, no worker start-up);
    only the files never seen before are decoded, in ``workers`` processes.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    out = Extraction()
    todo = []
    for path in unique:
        data, error = _read(path)
        if data is None:
            out.failed[path] = error or "unknown error"
            continue
        cached = cache.get(content_hash(data))
        if cached is None:
            todo.append((path, str(cache.root)))
        else:
            out.fingerprints[path] = cached
            out.cache_hits += 1
    if workers > 1 and len(todo) >= _SERIAL_BELOW:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_compute, todo, chunksize=32))
    else:
        results = [_compute(j) for j in todo]
    for path, fp, error in results:
        if fp is None:
            out.failed[path] = error or "unknown error"
        else:
            out.fingerprints[path] = fp
            out.computed += 1
    for path, error in out.failed.items():
        log.warning("%s: %s", path, error)
    return out
