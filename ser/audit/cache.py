"""Fingerprints on disk, one file per audio content (sha1 of the file's bytes).

Why content and not path: the same clip copied, renamed or moved between corpora is fingerprinted
once, and an edited file under an old name is never served a stale fingerprint.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ser.audit.fingerprint import VERSION, Fingerprint
from ser.cache import cache_dir

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$SER_CACHE/fingerprints`` (default ``~/.cache/ser/fingerprints``), as the rest of ser."""
    return cache_dir() / "fingerprints"


def content_hash(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class FingerprintCache:
    """``root/v<VERSION>/<ab>/<sha1>.npy``; a damaged entry is logged and recomputed."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._dir = self.root / f"v{VERSION}"

    def path_for(self, sha: str) -> Path:
        return self._dir / sha[:2] / f"{sha}.npy"

    def get(self, sha: str) -> Fingerprint | None:
        path = self.path_for(sha)
        if not path.is_file():
            return None
        try:
            return Fingerprint.unpack(np.load(path))
        except Exception as exc:  # noqa: BLE001 - any damage means: compute it again
            log.warning("%s: unreadable cache entry (%s); recomputing", path, exc)
            return None

    def put(self, sha: str, fp: Fingerprint) -> None:
        """Write atomically (temp file + rename) so parallel audits never read half a file."""
        path = self.path_for(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, fp.pack())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
