"""``--keep-audio DIR``: uploads kept under their content hash, never under the client's name.

A key is ``ab/abcdef...64 hex....wav``: the first two hex digits of the SHA-256 as a folder (so no
folder grows huge), the whole hash as the name, the container's extension (from the leading bytes)
so a player opens it. The same bytes uploaded twice are stored once; a file is written to a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ser.audio.formats import sniff_format

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{2,5}$")


class AudioArchive:
    """Content-addressed audio files under ``root`` (created if missing)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"--keep-audio {self.root}: folder is not writable")

    @staticmethod
    def key(sha256: str, data: bytes) -> str:
        fmt = sniff_format(data[:16])
        return f"{sha256[:2]}/{sha256}.{fmt.lower() if fmt else 'bin'}"

    def path(self, key: str) -> Path:
        """The file of a key; refuses anything that is not a key this class made."""
        if not _KEY.match(key):
            raise ValueError(f"not an audio key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, key: str) -> bool:
        """Delete a key's file; True if there was one."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        try:
            path.parent.rmdir()  # only when that was its folder's last file
        except OSError:
            pass
        return True
