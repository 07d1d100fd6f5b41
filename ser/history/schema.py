"""The history tables (SQLAlchemy Core), their version, and the steps that upgrade old ones.

Why a version table and a list of steps instead of ``create_all`` alone: ``create_all`` makes
missing tables but never changes an existing one, so a database written by an older ``ser`` would
silently lack new columns. Each change of the tables below bumps :data:`SCHEMA_VERSION` and adds
one step to :data:`MIGRATIONS` (``{old_version: step}``) that turns version ``old`` into
``old + 1``; :func:`ensure_schema` runs the missing steps in order inside one transaction, under a
lock, so several servers starting on one PostgreSQL database upgrade it once. A database newer than
this code is refused (an older ``ser`` must not write rows a newer one cannot read).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (JSON, BigInteger, Column, DateTime, Float, Integer, MetaData, String,
                        Table, Text, insert, inspect, select, text, update)
from sqlalchemy.engine import Connection

from ser.labels import LABELS

SCHEMA_VERSION = 1
COMPONENT = "history"

metadata = MetaData()

# One row per answered POST /predict. ``id`` is a UUIDv7 (time-ordered), so "newest first" and
# the ``before`` cursor are an index scan on the primary key, and ids made by several servers on
# one database never collide.
predictions = Table(
    "ser_predictions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("file_name", Text, nullable=True),  # as the client sent it: data, never a path
    Column("sha256", String(64), nullable=False, index=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("duration", Float, nullable=True),
    Column("model_path", Text, nullable=True),
    Column("model_sha256", String(64), nullable=True),
    Column("emotion", String(16), nullable=False),
    Column("confidence", Float, nullable=False),
    *(Column(f"p_{label}", Float, nullable=False) for label in LABELS),
    Column("windows", JSON, nullable=True),
    Column("client", String(64), nullable=True),  # only with --log-clients
    Column("storage_path", Text, nullable=True, index=True),  # key under --keep-audio, or NULL
)

schema_version = Table(
    "ser_schema_version",
    metadata,
    Column("component", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)

Migration = Callable[[Connection], None]
# {version the database has: step that brings it to version + 1}. Empty while version 1 is the
# only one; tests register a step to check that the path runs.
MIGRATIONS: dict[int, Migration] = {}

# pg_advisory_xact_lock key: any constant; it only has to be the same for every ser process.
_PG_LOCK_KEY = 0x5E7_4157


class SchemaError(RuntimeError):
    """The database cannot be used by this version of ser (and retrying will not help)."""


def ensure_schema(conn: Connection) -> int:
    """Create the tables, or upgrade them to :data:`SCHEMA_VERSION`; return the version found
    (0 for a new database).

    Call inside a transaction (``engine.begin()``): DDL and the version row commit together.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    names = set(inspect(conn).get_table_names())
    if schema_version.name not in names:
        if predictions.name in names:
            raise SchemaError(f"table {predictions.name} exists without {schema_version.name}: "
                              "not written by ser; use another database")
        metadata.create_all(conn)
        conn.execute(insert(schema_version).values(component=COMPONENT, version=SCHEMA_VERSION))
        return 0
    found = conn.scalar(select(schema_version.c.version)
                        .where(schema_version.c.component == COMPONENT))
    if found is None:
        raise SchemaError(f"{schema_version.name} has no row for {COMPONENT!r}")
    if found > SCHEMA_VERSION:
        raise SchemaError(f"the history database has schema version {found}, written by a newer "
                          f"ser; this one knows versions up to {SCHEMA_VERSION}: upgrade ser")
    version = found
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaError(f"no migration from history schema version {version} to "
                              f"{version + 1}")
        step(conn)
        version += 1
        conn.execute(update(schema_version).where(schema_version.c.component == COMPONENT)
                     .values(version=version))
    return found


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SchemaError", "ensure_schema", "metadata",
           "predictions", "schema_version"]
