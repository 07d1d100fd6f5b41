"""Writing the synthetic corpora: rendered in parallel, built in a temporary folder under a lock,
moved into place when complete, and left as is when a complete one of the same seed and size is
there.

Why atomic: concurrent runs asking for the same corpus (two demos started together) wait for one
another instead of clashing, and a failed write leaves no partial corpus.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ser.data.synthetic.layouts import kaggle_jobs, ravdess_jobs
from ser.data.synthetic.profiles import PROFILES, SIZES
from ser.data.synthetic.rendering import write_clip

logger = logging.getLogger(__name__)

VERSION = 2  # 1: formant synthesiser; 2: espeak-ng speech
MARKER = "synthetic.json"
LOCK = ".synthetic.lock"


def _count_wavs(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for e in os.scandir(folder) if e.is_file() and e.name.endswith(".wav"))


def _on_disk_counts(out: Path) -> dict[str, int]:
    rav = out / "ravdess"
    actors = sorted(rav.glob("Actor_*")) if rav.is_dir() else []
    return {"indonesian/train": _count_wavs(out / "indonesian" / "train"),
            "indonesian/test": _count_wavs(out / "indonesian" / "test"),
            "ravdess": sum(_count_wavs(a) for a in actors)}


def _read_marker(out: Path) -> dict | None:
    path = out / MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable marker (%s); the corpora will be rewritten", path, exc)
        return {}


def _is_current(out: Path, wanted: dict) -> bool:
    marker = _read_marker(out)
    return bool(marker and marker.get("complete")
                and all(marker.get(k) == v for k, v in wanted.items())
                and marker.get("counts") == _on_disk_counts(out))


def _check_ours(out: Path, marker: dict | None) -> None:
    """Refuse to replace folders this module did not write."""
    targets = [out / "indonesian", out / "ravdess"]
    present = [p for p in targets if p.exists() and (not p.is_dir() or any(p.iterdir()))]
    if present and marker is None:
        raise FileExistsError(
            f"{', '.join(map(str, present))} already exist(s) and were not written by "
            f"write_synthetic_corpora (no {out / MARKER}); choose another folder or remove them")


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on ``out`` between processes (released when the process dies)."""
    with open(out / LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_synthetic_corpora(out_dir: str | os.PathLike, seed: int = 0, size: str = "demo", *,
                            workers: int | None = None) -> dict[str, Path]:
    """Write the Indonesian (Kaggle layout) and RAVDESS synthetic corpora under ``out_dir``.

    Returns ``{"indonesian": out_dir/"indonesian", "ravdess": out_dir/"ravdess"}``. A complete
    corpus of the same seed, size and generator version is left as is (the demo calls this on
    every run); anything else this function wrote before is replaced. ``workers``: processes
    (default: 2 where there are CPUs for it); the files do not depend on it. Safe to call from
    several processes at once: one writes (into a temporary folder, moved into place when
    complete), the others wait for it and then find the corpus there.
    """
    if size not in PROFILES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    out = Path(out_dir)
    roots = {"indonesian": out / "indonesian", "ravdess": out / "ravdess"}
    wanted = {"generator": "ser.data.synthetic", "version": VERSION, "seed": int(seed),
              "size": size}
    if _is_current(out, wanted):
        logger.info("synthetic corpora (size=%s, seed=%s) already in %s", size, seed, out)
        return roots
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        if _is_current(out, wanted):  # another process wrote it while this one waited
            logger.info("synthetic corpora (size=%s, seed=%s) written meanwhile in %s", size,
                        seed, out)
            return roots
        marker = _read_marker(out)
        _check_ours(out, marker)
        if marker and marker.get("complete"):
            logger.info("%s: another size/seed/version or files changed since it was written; "
                        "rewriting", out)
        build = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=out))
        try:
            counts = _write_into(build, seed, size, workers)
            (out / MARKER).unlink(missing_ok=True)  # from here on the folder is incomplete
            for layout, root in roots.items():
                if root.exists():
                    logger.info("removing the previous synthetic corpus at %s", root)
                    shutil.rmtree(root) if root.is_dir() else root.unlink()
                os.replace(build / layout, root)
            _write_atomic_text(out / MARKER, json.dumps(
                {**wanted, "complete": True, "counts": counts}, indent=2) + "\n")
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return roots


def _write_into(build: Path, seed: int, size: str, workers: int | None) -> dict[str, int]:
    """Write both corpora under ``build``; the counts for the marker."""
    started = time.perf_counter()
    roots = {"indonesian": build / "indonesian", "ravdess": build / "ravdess"}
    kaggle_specs, train, test = kaggle_jobs(seed, size)
    specs = kaggle_specs + ravdess_jobs(size)
    for folder in {(roots[s.layout] / s.relpath).parent for s in specs}:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [(int(seed), s, str(roots[s.layout] / s.relpath)) for s in specs]
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(jobs) >= 200 else 1
    logger.info("writing %d synthetic files (size=%s, seed=%s, %d worker(s))", len(jobs), size,
                seed, workers)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            durations = list(pool.map(write_clip, jobs, chunksize=32))
    else:
        durations = [write_clip(job) for job in jobs]
    kaggle = roots["indonesian"]
    (kaggle / "train.csv").write_text(
        "id,label\n" + "".join(f"{it.name},{it.label}\n" for it in train))
    (kaggle / "test.csv").write_text(
        "id\n" + "".join(f"test{j + 1}.wav\n" for j in range(len(test))))
    logger.info("wrote %d files, %.0f s of audio, in %.1f s", len(jobs), sum(durations),
                time.perf_counter() - started)
    return {"indonesian/train": len(train), "indonesian/test": len(test),
            "ravdess": len(specs) - len(kaggle_specs)}
