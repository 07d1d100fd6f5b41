"""Writes history records on a thread of its own, so an answer never waits for the database.

    writer = HistoryWriter(store_getter, archive=None, model=ModelInfo("outputs/run/model"))
    writer.submit(Pending(record))   # returns at once
    writer.flush(2.0)                # wait until what was submitted so far is written
    writer.close()                   # clean shutdown: everything submitted is written first

Why it behaves as it does:

* Records are written in batches, one transaction each (200 requests a second cost a few commits,
  not 200). The first write opens the store, so a database that is down at start-up costs no
  start-up: the records wait.
* A failing store (database down, disk full, read-only file) is a logged warning, once per streak
  of failures, and the batch is tried again with a growing pause (up to 10 s); records that
  arrive meanwhile are held in memory, at most ``max_held`` (then new ones are dropped, counted and
  logged). When the store comes back the held records are written and that is logged too.
* A record the database refuses for itself (not the connection) is dropped alone with a warning,
  so one bad row cannot stop the queue.
* ``close`` writes everything still held before it returns (given ``timeout``; what is still
  unwritten then is logged with its count: the only way a record is lost on a clean shutdown is
  a store that stays broken).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ser.history.archive import AudioArchive
from ser.history.records import Record
from ser.history.store import HistoryStore

log = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pth", ".pt", ".onnx")
_MAX_PAUSE = 10.0


@dataclass(frozen=True)
class Pending:
    """A record to write, with the uploaded bytes when --keep-audio keeps them."""

    record: Record
    audio: bytes | None = None


class ModelInfo:
    """The model a server answers with: its path and a checksum of its weights (computed on the
    writer thread the first time a record needs it, never on the request path)."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = str(path) if path else None

    @cached_property
    def sha256(self) -> str | None:
        if not self.path:
            return None
        try:
            return weights_checksum(self.path)
        except OSError as exc:
            log.warning("history: cannot checksum the model %s: %s", self.path, exc)
            return None


def weights_checksum(path: str | os.PathLike) -> str | None:
    """SHA-256 of a model's weights: of the file itself (``.ckpt``, ``.pth``), of the one weight
    file in a folder (as ``sha256sum model.safetensors`` prints it), or, for a folder of several
    weight files, of their ``sha256  name`` lines. None for a hub id (not a local path)."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        return None
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        return None
    if len(files) == 1:
        return _file_sha256(files[0])
    lines = "".join(f"{_file_sha256(p)}  {p.name}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_store_fault(exc: BaseException) -> bool:
    """True: the store cannot take writes now (try again later). False: the database refused
    these rows themselves (integrity, data, SQL errors): drop the bad one, keep going."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated
    return True  # the store could not be opened, the audio folder failed (OSError) ...


class HistoryWriter:
    """One background thread draining a queue of :class:`Pending` records into a store.

    ``open_store`` returns the (open) store; it may raise while the store is down, and is called
    again for the next try. The writer does not close it."""

    def __init__(self, open_store: Callable[[], HistoryStore], *,
                 archive: AudioArchive | None = None, model: ModelInfo | None = None,
                 batch_size: int = 200, max_held: int = 10_000) -> None:
        self._open_store = open_store
        self.archive = archive
        self.model = model or ModelInfo(None)
        self.batch_size = batch_size
        self.max_held = max_held
        self._items: deque[tuple[int, Pending]] = deque()
        self._cond = threading.Condition()
        self._submitted = 0  # sequence number of the last record accepted
        self._done = 0       # every record up to this one is written (or given up)
        self._closing = False
        self._deadline: float | None = None
        self._dropped = 0
        self.written = 0
        self.failing: str | None = None  # the last error while the store fails, else None
        self._thread = threading.Thread(target=self._run, name="ser-history-writer",
                                        daemon=True)
        self._thread.start()

    # -- the request side ---------------------------------------------------------------------

    def submit(self, pending: Pending) -> bool:
        """Queue a record; False (and a warning) if the writer is closed or holds too many."""
        with self._cond:
            if self._closing:
                log.warning("history: record %s not saved: the writer is closed",
                            pending.record.id)
                return False
            if len(self._items) >= self.max_held:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 100 == 0:
                    log.warning("history: %d record(s) dropped so far: %d are already waiting "
                                "for a store that fails (%s)", self._dropped, len(self._items),
                                self.failing)
                return False
            self._submitted += 1
            self._items.append((self._submitted, pending))
            self._cond.notify_all()
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted before this call is written; False on timeout."""
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(lambda: self._done >= target, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything held, then stop (what is still unwritten after ``timeout`` seconds
        is logged as lost)."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 5)

    @property
    def held(self) -> int:
        with self._cond:
            return len(self._items)

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        _ = self.model.sha256  # once, before the first write (a large model takes seconds)
        pause = 0.25
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._closing)
                if not self._items:
                    return
                batch = [item for _, item in list(self._items)[: self.batch_size]]
                last = self._items[len(batch) - 1][0]
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - a store fault must never stop serving
                if not _is_store_fault(exc):
                    self._write_one_by_one(batch)
                else:
                    self._failed(exc, len(batch))
                    if self._give_up_on_close():
                        return
                    with self._cond:
                        self._cond.wait(timeout=pause)
                    pause = min(pause * 2, _MAX_PAUSE)
                    continue
            pause = 0.25
            self._finished(last, len(batch))

    def _write(self, batch: list[Pending]) -> None:
        records = [replace(p.record, model_path=self.model.path, model_sha256=self.model.sha256)
                   for p in batch]
        audio = [(p.record.storage_path, p.audio) for p in batch
                 if p.audio is not None and p.record.storage_path]

        def store_audio(_conn: Any) -> None:
            for key, data in audio:
                assert self.archive is not None
                self.archive.put(key, data)

        self._open_store().add(records, before_commit=store_audio if audio else None)

    def _write_one_by_one(self, batch: list[Pending]) -> None:
        for pending in batch:
            try:
                self._write([pending])
            except Exception as exc:  # noqa: BLE001
                log.warning("history: record %s not saved, the store refused it: %s",
                            pending.record.id, describe_error(exc))

    def _failed(self, exc: BaseException, count: int) -> None:
        reason = describe_error(exc)
        if self.failing is None:
            log.warning("history: the store failed, %d record(s) held and retried: %s "
                        "(predictions are still answered)", count, reason)
        self.failing = reason

    def _finished(self, last: int, count: int) -> None:
        if self.failing is not None:
            log.warning("history: the store works again; held records written")
            self.failing = None
        with self._cond:
            while self._items and self._items[0][0] <= last:
                self._items.popleft()
            self._done = last
            self.written += count
            self._cond.notify_all()

    def _give_up_on_close(self) -> bool:
        with self._cond:
            if not self._closing or self._deadline is None or time.monotonic() < self._deadline:
                return False
            lost = len(self._items)
            self._items.clear()
            self._done = self._submitted
            self._cond.notify_all()
        log.warning("history: %d record(s) lost at shutdown: the store still fails (%s)", lost,
                    self.failing)
        return True


def describe_error(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's statement dump."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
