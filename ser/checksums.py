"""A checksum manifest for an exported model folder: ``checksums.json`` next to the weights.

A weight file damaged after export (a bit flipped on disk, a partial copy) can still parse and
load, and then predicts something else without a word. Export records the SHA-256 of every
weight file; loading a folder that has the manifest recomputes them and refuses a mismatch.
Folders without a manifest (older exports, hub downloads) load as before, with a log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "checksums.json"
ALGORITHM = "sha256"
# The files whose bytes are the model's weights (what from_pretrained may read).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
# An ONNX export's graph and, for models over 2 GB, its external weights.
ONNX_SUFFIXES = (".onnx", ".onnx.data", ".data")


class ChecksumError(ValueError):
    """A weight file that does not match the manifest written at export (or a bad manifest)."""


def _digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, ALGORITHM).hexdigest()


def weight_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def onnx_weight_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(ONNX_SUFFIXES))


def write_checksums(folder: str | os.PathLike) -> Path:
    """Write ``folder/checksums.json`` with the SHA-256 of each weight file in ``folder``
    (PyTorch weights and ONNX exports alike)."""
    folder = Path(folder)
    files = {p.name: _digest(p) for p in weight_files(folder) + onnx_weight_files(folder)}
    if not files:
        raise ChecksumError(f"{folder}: no weight files to record "
                            f"({', '.join(WEIGHT_SUFFIXES)})")
    out = folder / MANIFEST
    out.write_text(json.dumps({"algorithm": ALGORITHM, "files": files}, indent=2) + "\n")
    return out


def verify_checksums(folder: str | os.PathLike, only: Iterable[str] | None = None) -> bool:
    """Check the files the manifest lists (``only``: just those of these names that it lists,
    i.e. the files about to be loaded: the ONNX runtime need not hash the PyTorch weights);
    True when verified, False when there is no manifest.

    Raises :class:`ChecksumError` naming the file and what differs.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        log.info("%s has no %s: its weights are not verified", folder, MANIFEST)
        return False
    try:
        data = json.loads(manifest.read_text())
        algorithm, files = data["algorithm"], dict(data["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ChecksumError(f"{manifest}: not a checksum manifest ({exc}); expected "
                            '{"algorithm": "sha256", "files": {name: hex digest}}') from exc
    if algorithm != ALGORITHM or not files:
        raise ChecksumError(f"{manifest}: algorithm {algorithm!r} with {len(files)} files; "
                            f"expected {ALGORITHM!r} and at least one weight file")
    if only is not None:
        wanted = set(only)
        files = {name: digest for name, digest in files.items() if name in wanted}
    for name, expected in files.items():
        path = folder / name
        if Path(name).name != name:
            raise ChecksumError(f"{manifest}: lists {name!r}, which is not a file of the folder")
        if not path.is_file():
            raise ChecksumError(f"{path}: listed in {MANIFEST} but missing")
        actual = _digest(path)
        if actual != expected:
            raise ChecksumError(
                f"{path}: the {ALGORITHM} of the file ({actual[:16]}...) differs from the one "
                f"recorded at export in {MANIFEST} ({str(expected)[:16]}...); the file was "
                "changed or damaged after export. Export or copy the model again")
    log.info("%s: %d weight files match %s", folder, len(files), MANIFEST)
    return True
