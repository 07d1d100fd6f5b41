"""The history as the server holds it: options from the command line, a writer for new records,
the store for reads. ``ser.serve`` creates one per app and calls :meth:`History.start` in its
lifespan, :meth:`History.record` after each answered prediction, :meth:`History.close` at exit.

    history = History(HistoryOptions(store="postgresql://ser@db/ser", keep_audio="/srv/audio"))
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ser.history.archive import AudioArchive
from ser.history.records import Record
from ser.history.schema import SchemaError
from ser.history.store import HistoryStore, StoreConfigError, resolve_store_url, shown_url
from ser.history.writer import HistoryWriter, ModelInfo, Pending, describe_error

if TYPE_CHECKING:
    from ser.inference import Prediction

log = logging.getLogger(__name__)

# Hashing a large upload runs on a worker thread; a small one is quicker than the thread hop.
_HASH_INLINE_BYTES = 256 * 1024
# How long a read waits for this server's own queued records (read-your-writes).
READ_FLUSH_S = 2.0


@dataclass(frozen=True)
class HistoryOptions:
    """``store``: a URL, None for the default SQLite file, "none" to keep nothing.
    ``keep_audio``: a folder for the uploads (content-addressed), None to keep no audio.
    ``log_clients``: record the client's address."""

    store: str | None = None
    keep_audio: str | os.PathLike | None = None
    log_clients: bool = False


class HistoryUnavailable(RuntimeError):
    """The store cannot be read now (it is down, or this server keeps no history)."""


class History:
    """Records the server's answers (see the module docstring). Bad options raise at once."""

    # How long a clean shutdown keeps trying to write held records to a store that fails.
    close_timeout = 10.0

    def __init__(self, options: HistoryOptions | None = None) -> None:
        options = options or HistoryOptions(store="none")
        self.url = resolve_store_url(options.store)
        self.enabled = self.url is not None
        self.shown = shown_url(self.url) if self.url is not None else "none"
        self.archive = AudioArchive(options.keep_audio) if (
            self.enabled and options.keep_audio) else None
        self.log_clients = options.log_clients
        self._listing = "ser history" + ("" if options.store in (None, "") else
                                         f" --store {self.shown}")
        self._store: HistoryStore | None = None
        self._lock = threading.Lock()
        self._writer: HistoryWriter | None = None

    def start(self, model_path: str | os.PathLike | None = None) -> None:
        """Open the store and start the writer (blocking: call from a worker thread). A store
        that cannot be used by this ser (newer schema, wrong tables, no driver) raises; one
        that is only unreachable now is a warning, and records wait for it."""
        if not self.enabled:
            log.info("history: off (--store none): predictions are not recorded")
            return
        try:
            self.store()
        except (SchemaError, StoreConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - down now, maybe up later
            log.warning("history: store %s not reachable at start-up (%s); records are held "
                        "and written when it is", self.shown, describe_error(exc))
        self._writer = HistoryWriter(self.store, archive=self.archive,
                                     model=ModelInfo(model_path))
        kept = f"; audio kept in {self.archive.root}" if self.archive else ""
        log.info("history: %s (list it with: %s)%s", self.shown, self._listing, kept)

    def store(self) -> HistoryStore:
        """The open store (opened on first use; raises while it cannot be opened)."""
        if not self.enabled:
            raise HistoryUnavailable("history is off: the server was started with --store none")
        with self._lock:
            if self._store is None:
                assert self.url is not None
                self._store = HistoryStore.open(self.url)
            return self._store

    async def record(self, data: bytes, file_name: str | None, prediction: Prediction,
                     client: str | None) -> dict[str, Any]:
        """Queue the record of one answered request; the fields /predict adds to its answer.
        Never raises: a fault here is logged and the prediction is answered all the same."""
        if self._writer is None:
            return {"id": None, "file_id": None, "storage_path": ""}
        try:
            if len(data) > _HASH_INLINE_BYTES:
                sha256 = await anyio.to_thread.run_sync(_sha256, data)
            else:
                sha256 = _sha256(data)
            key = AudioArchive.key(sha256, data) if self.archive is not None else ""
            record = Record.of_prediction(
                prediction, sha256=sha256, size_bytes=len(data), file_name=file_name,
                client=client[:64] if (self.log_clients and client) else None,
                storage_path=key)
            self._writer.submit(Pending(record, data if key else None))
        except Exception:  # noqa: BLE001
            log.exception("history: the record of a prediction could not be queued")
            return {"id": None, "file_id": None, "storage_path": ""}
        return {"id": record.id, "file_id": record.id, "storage_path": key}

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for this server's queued records to be written (True when they are)."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def close(self, timeout: float | None = None) -> None:
        """Write what is held, then let go of the store (clean shutdown)."""
        timeout = self.close_timeout if timeout is None else timeout
        if self._writer is not None:
            held = self._writer.held
            if held:
                log.info("history: writing %d held record(s) before exit", held)
            self._writer.close(timeout)
            self._writer = None
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def failing(self) -> str | None:
        return self._writer.failing if self._writer is not None else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
