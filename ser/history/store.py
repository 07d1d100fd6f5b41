"""Where history records live: a database named by a URL, through SQLAlchemy 2 Core.

    store = HistoryStore.open("sqlite:////var/lib/ser/history.db")   # or postgresql://u@h/db
    store.add([record]); store.page(limit=50); store.get(id); store.delete(id)

* ``sqlite:///FILE`` is the default (``$SER_CACHE/history.db``): one file, nothing to run. It is
  opened in WAL mode (readers never wait for the writer) with a busy timeout, and every writing
  transaction starts with ``BEGIN IMMEDIATE`` so two writers queue instead of failing.
* ``postgresql://user@host/db`` (psycopg 3) lets several servers share one history; connections
  are checked before use, so a database restart costs no request.
* Queries are built with SQLAlchemy Core: no SQL assembled from strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ser.cache import cache_dir
from ser.history.records import Record
from ser.history.schema import ensure_schema, predictions

NONE = "none"
SUPPORTED = "sqlite:///FILE, postgresql://USER[:PASSWORD]@HOST[:PORT]/DB, or none"


class StoreConfigError(ValueError):
    """A --store value that can never work (bad URL, missing driver): fix the command."""


def default_store_url() -> str:
    """``sqlite:///$SER_CACHE/history.db`` (``~/.cache/ser/history.db``), as the rest of ser."""
    return f"sqlite:///{cache_dir().resolve() / 'history.db'}"


def resolve_store_url(value: str | None) -> URL | None:
    """The SQLAlchemy URL for a --store value (None or "" = the default; "none" = no store)."""
    if value is None or value == "":
        value = default_store_url()
    if value.strip().lower() == NONE:
        return None
    try:
        url = make_url(value)
    except ArgumentError:
        raise StoreConfigError(f"--store {value!r} is not a database URL; use {SUPPORTED}") \
            from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite":
        if not url.database or url.database == ":memory:":
            raise StoreConfigError("--store sqlite needs a file (sqlite:///history.db): an "
                                   "in-memory database would forget everything on exit")
        return url
    raise StoreConfigError(f"--store {shown_url(url)}: unsupported database "
                           f"{url.drivername!r}; use {SUPPORTED}")


def shown_url(url: URL | str) -> str:
    """The URL for logs and messages, password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (None for other databases)."""
    return Path(url.database).expanduser() if url.drivername == "sqlite" else None


@dataclass(frozen=True)
class Deleted:
    """What :meth:`HistoryStore.delete` removed: the record, and whether its audio file is no
    longer used by any other record (then it was removed too)."""

    record: Record
    audio_removed: bool


class HistoryStore:
    """The history database: write records, list them newest first, fetch and delete one."""

    def __init__(self, url: URL | str) -> None:
        self.url = make_url(url)
        self.shown = shown_url(self.url)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.url.drivername == "sqlite":
            file = sqlite_file(self.url)
            assert file is not None
            file.parent.mkdir(parents=True, exist_ok=True)
        else:
            options["connect_args"] = {"connect_timeout": 5}
        try:
            self.engine: Engine = create_engine(self.url, **options)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise StoreConfigError(f"--store {self.shown}: no driver ({exc}); install it with "
                                   "pip install 'ser[postgres]'") from exc
        if self.url.drivername == "sqlite":
            _sqlite_setup(self.engine)

    @classmethod
    def open(cls, url: URL | str) -> HistoryStore:
        """Connect and create (or upgrade) the tables."""
        store = cls(url)
        try:
            with store._writing() as conn:
                ensure_schema(conn)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(ser_write=True)
            with conn.begin():
                yield conn

    # -- writes -------------------------------------------------------------------------------

    def add(self, records: Sequence[Record], *, before_commit: Any = None) -> None:
        """Insert records in one transaction. ``before_commit(conn)`` runs inside it, after the
        rows, holding the audio keys' locks (the writer stores audio files there)."""
        if not records:
            return
        with self._writing() as conn:
            _lock_audio_keys(conn, [r.storage_path for r in records])
            conn.execute(insert(predictions), [r.to_row() for r in records])
            if before_commit is not None:
                before_commit(conn)

    def delete(self, record_id: str, *, remove_audio: Any = None) -> Deleted | None:
        """Delete one record (None if there is none). If no other record uses its audio key,
        ``remove_audio(key)`` is called before the commit, under the key's lock, so a record
        written at the same moment with the same audio cannot lose its file."""
        with self._writing() as conn:
            row = conn.execute(select(predictions).where(predictions.c.id == record_id)).first()
            if row is None:
                return None
            record = Record.from_row(row)
            key = record.storage_path
            _lock_audio_keys(conn, [key])
            conn.execute(delete(predictions).where(predictions.c.id == record_id))
            removed = False
            if key:
                others = conn.scalar(select(func.count()).select_from(predictions)
                                     .where(predictions.c.storage_path == key))
                if not others and remove_audio is not None:
                    remove_audio(key)
                    removed = True
        return Deleted(record, removed)

    # -- reads --------------------------------------------------------------------------------

    def page(self, limit: int = 50, before: str | None = None) -> list[Record]:
        """Up to ``limit`` records, newest first; ``before`` an id: only records older than it."""
        query = select(predictions).order_by(predictions.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(predictions.c.id < before)
        with self.engine.connect() as conn:
            return [Record.from_row(row) for row in conn.execute(query)]

    def get(self, record_id: str) -> Record | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(predictions).where(predictions.c.id == record_id)).first()
        return Record.from_row(row) if row is not None else None

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(predictions)) or 0)

    def iter_all(self, limit: int | None = None, page_size: int = 1000) -> Iterator[Record]:
        """Every record (or the newest ``limit``), newest first, read page by page."""
        before = None
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page = self.page(size, before)
            yield from page
            if len(page) < size:
                return
            before = page[-1].id
            if left is not None:
                left -= len(page)


def _lock_audio_keys(conn: Connection, keys: Sequence[str]) -> None:
    """PostgreSQL: take a transaction lock per audio key (sorted: no deadlock), so writing and
    deleting the same audio in two servers cannot interleave. SQLite's BEGIN IMMEDIATE already
    runs writing transactions one at a time."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({k for k in keys if k}):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                     {"key": key})


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writing transactions (SQLAlchemy's recipe
    for pysqlite: the driver's own BEGIN handling is switched off and ours is sent instead)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout = 10000")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("ser_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
