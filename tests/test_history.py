"""ser.history without a server: the store on SQLite and PostgreSQL, schema versions, the
writer's behaviour when the store fails, the audio archive, ``ser history``, and Optuna beside
SQLAlchemy 2."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, inspect, select, text, update

from ser.history import schema
from ser.history.archive import AudioArchive
from ser.history.records import Record, new_id
from ser.history.schema import SchemaError
from ser.history.store import HistoryStore, StoreConfigError, resolve_store_url
from ser.history.writer import HistoryWriter, ModelInfo, Pending, weights_checksum
from ser.inference import Prediction, WindowPrediction
from ser.labels import LABELS


def prediction(top: int, windows: int = 0) -> Prediction:
    probs = np.full(len(LABELS), 0.1)
    probs[top] = 0.5  # sums to 1
    mapping = {label: float(p) for label, p in zip(LABELS, probs)}
    wins = tuple(WindowPrediction(2.0 * i, 2.0 * i + 4, LABELS[top], 0.5, mapping)
                 for i in range(windows))
    return Prediction.from_probabilities(probs, duration=1.5, windows=wins)


def record(top: int = 0, name: str = "clip.wav", **extra) -> Record:
    return Record.of_prediction(prediction(top), sha256=f"{top:064x}", size_bytes=100 + top,
                                file_name=name, **extra)


# -- URLs -----------------------------------------------------------------------------------


def test_store_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "cache"))
    assert str(resolve_store_url(None)) == f"sqlite:///{tmp_path / 'cache' / 'history.db'}"
    assert resolve_store_url("none") is None and resolve_store_url("NONE") is None
    pg = resolve_store_url("postgresql://ser:secret@db.example:5433/ser")
    assert pg.drivername == "postgresql+psycopg" and pg.password == "secret"
    assert resolve_store_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    with pytest.raises(StoreConfigError, match="not a database URL"):
        resolve_store_url("history.db")
    with pytest.raises(StoreConfigError, match="unsupported database 'mysql'") as err:
        resolve_store_url("mysql://u:secret@h/d")
    assert "secret" not in str(err.value) and "u:***@h" in str(err.value)
    with pytest.raises(StoreConfigError, match="needs a file"):
        resolve_store_url("sqlite://")


# -- the store, on both databases -------------------------------------------------------------


def test_store_round_trip_pages_and_delete(store_url):
    store = HistoryStore.open(store_url)
    try:
        first = record(1, name="=cmd|' /C calc'!A0\x00.wav", client="10.0.0.7")
        windowed = replace(record(4), windows=[{"start": 0.0, "end": 4.0, "emotion": "netral",
                                                "confidence": 0.5, "probabilities": {}}])
        rest = [record(i % 6, name=f"c{i}.wav") for i in range(7)]
        store.add([first, windowed])
        store.add(rest)
        assert store.count() == 9
        got = store.get(first.id)
        assert got == replace(first, file_name="=cmd|' /C calc'!A0.wav")  # NUL removed
        assert got.created_at.tzinfo is not None
        assert store.get(windowed.id).windows == windowed.windows
        ids = [r.id for r in [first, windowed, *rest]]
        newest = [r.id for r in store.page(4)]
        assert newest == ids[::-1][:4]
        older = [r.id for r in store.page(4, before=newest[-1])]
        assert older == ids[::-1][4:8]
        assert [r.id for r in store.iter_all(page_size=2)] == ids[::-1]
        assert [r.id for r in store.iter_all(limit=3, page_size=2)] == ids[::-1][:3]
        assert store.get(new_id()) is None
        assert store.delete(first.id).record.id == first.id
        assert store.delete(first.id) is None
        assert store.count() == 8
    finally:
        store.close()


def test_csv_row_keeps_client_text_from_running_as_a_formula():
    row = record(0, name="=HYPERLINK(\"x\")", client="-1").to_csv_row()
    assert row["file_name"] == "'=HYPERLINK(\"x\")" and row["client"] == "'-1"
    assert record(0, name="a.wav").to_csv_row()["file_name"] == "a.wav"


def test_ids_are_unique_and_time_ordered():
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    threads_ids: list[str] = []
    workers = [threading.Thread(target=lambda: threads_ids.extend(new_id() for _ in range(2000)))
               for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(threads_ids)) == 8000


# -- schema version and migration ------------------------------------------------------------


def test_schema_version_is_recorded_and_a_newer_database_is_refused(store_url):
    store = HistoryStore.open(store_url)
    with store.engine.begin() as conn:
        assert conn.scalar(select(schema.schema_version.c.version)) == schema.SCHEMA_VERSION
        conn.execute(update(schema.schema_version).values(version=schema.SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(SchemaError, match="newer ser"):
        HistoryStore.open(store_url)


def test_an_old_database_is_migrated_and_keeps_its_rows(store_url, monkeypatch):
    """Version 1 written, then this ser pretends to be version 2 with one migration step."""
    store = HistoryStore.open(store_url)
    kept = record(3)
    store.add([kept])
    store.close()

    def add_note(conn):
        conn.execute(text("ALTER TABLE ser_predictions ADD COLUMN note VARCHAR(40)"))
        conn.execute(text("UPDATE ser_predictions SET note = 'migrated'"))

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(schema.MIGRATIONS, 1, add_note)
    store = HistoryStore.open(store_url)
    try:
        with store.engine.connect() as conn:
            assert conn.scalar(select(schema.schema_version.c.version)) == 2
            assert "note" in {c["name"] for c in inspect(conn).get_columns("ser_predictions")}
            assert conn.scalar(text("SELECT note FROM ser_predictions")) == "migrated"
        assert store.get(kept.id) == kept
    finally:
        store.close()
    HistoryStore.open(store_url).close()  # already at 2: no step runs twice


def test_a_missing_migration_step_is_an_error(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore.open(url).close()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    with pytest.raises(SchemaError, match="no migration from history schema version 1 to 2"):
        HistoryStore.open(url)


def test_foreign_tables_are_not_adopted(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = HistoryStore(url)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE ser_predictions (x INTEGER)"))
    store.close()
    with pytest.raises(SchemaError, match="not written by ser"):
        HistoryStore.open(url)


# -- the writer ------------------------------------------------------------------------------


def test_writer_writes_in_the_background_and_close_flushes(store_url, monkeypatch):
    store = HistoryStore.open(store_url)
    gate = threading.Event()
    real_add = HistoryStore.add

    def slow_add(self, records, **kw):
        assert gate.wait(30)
        return real_add(self, records, **kw)

    monkeypatch.setattr(HistoryStore, "add", slow_add)
    writer = HistoryWriter(lambda: store, model=ModelInfo(None), batch_size=7)
    records = [record(i % 6) for i in range(50)]
    start = time.perf_counter()
    assert all(writer.submit(Pending(r)) for r in records)
    assert time.perf_counter() - start < 0.5  # submit never waits for the database
    assert store.count() == 0 and not writer.flush(0.2)
    gate.set()
    writer.close()
    assert store.count() == 50
    assert {r.id: r.emotion for r in store.iter_all()} == {r.id: r.emotion for r in records}
    store.close()


def test_a_full_disk_is_a_warning_and_held_records_are_written_later(tmp_path, caplog):
    """SQLite's own 'database or disk is full' (max_page_count), then space again."""
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def full(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(store.engine, "connect", full)
    store.engine.dispose()
    writer = HistoryWriter(lambda: store, model=ModelInfo(None))
    records = [record(i % 6, name="x" * 400) for i in range(40)]
    with caplog.at_level(logging.WARNING, logger="ser.history"):
        for r in records:
            assert writer.submit(Pending(r))
        assert not writer.flush(1.0)
    warnings = [m for m in caplog.messages if "store failed" in m]
    assert len(warnings) == 1 and "disk is full" in warnings[0]  # once per streak
    assert writer.failing and writer.held == 40
    event.remove(store.engine, "connect", full)
    store.engine.dispose()
    with caplog.at_level(logging.WARNING, logger="ser.history"):
        assert writer.flush(30)
    assert "the store works again" in caplog.text
    assert store.count() == 40 and writer.failing is None
    writer.close()
    store.close()


def test_a_row_the_database_refuses_is_dropped_alone(tmp_path, caplog):
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    existing = record(0)
    store.add([existing])
    writer = HistoryWriter(lambda: store, model=ModelInfo(None))
    batch = [record(1), replace(record(2), id=existing.id), record(3)]  # a duplicate id
    with caplog.at_level(logging.WARNING, logger="ser.history"):
        for r in batch:
            writer.submit(Pending(r))
        assert writer.flush(10)
    assert store.count() == 3 and store.get(batch[2].id) is not None
    assert f"record {existing.id} not saved" in caplog.text
    writer.close()
    store.close()


def test_writer_bounds_what_it_holds(tmp_path, caplog):
    def down():
        raise ConnectionRefusedError("database down")

    writer = HistoryWriter(down, model=ModelInfo(None), max_held=5)
    with caplog.at_level(logging.WARNING, logger="ser.history"):
        accepted = [writer.submit(Pending(record(0))) for _ in range(8)]
        writer.close(timeout=0.5)
    assert accepted == [True] * 5 + [False] * 3
    assert "1 record(s) dropped so far" in caplog.text
    assert "5 record(s) lost at shutdown: the store still fails" in caplog.text


def test_model_checksum(tmp_path):
    import hashlib

    one = tmp_path / "one"
    one.mkdir()
    (one / "model.safetensors").write_bytes(b"weights")
    (one / "config.json").write_text("{}")
    assert weights_checksum(one) == hashlib.sha256(b"weights").hexdigest()
    assert weights_checksum(one / "model.safetensors") == hashlib.sha256(b"weights").hexdigest()
    (one / "extra.bin").write_bytes(b"more")
    both = weights_checksum(one)
    assert both not in (None, hashlib.sha256(b"weights").hexdigest())
    (one / "extra.bin").write_bytes(b"changed")
    assert weights_checksum(one) != both
    assert weights_checksum("org/hub-model-id") is None


# -- kept audio ------------------------------------------------------------------------------


def test_audio_archive_is_content_addressed(tmp_path):
    archive = AudioArchive(tmp_path / "audio")
    data = b"RIFF\x00\x00\x00\x00WAVEfmt rest"
    sha = "ab" + "c" * 62
    key = archive.key(sha, data)
    assert key == f"ab/{sha}.wav"
    archive.put(key, data)
    archive.put(key, data)  # the same bytes again: one file
    assert archive.path(key).read_bytes() == data
    assert [p.name for p in (tmp_path / "audio").rglob("*") if p.is_file()] == [f"{sha}.wav"]
    assert archive.key(sha, b"\x00\x01junk").endswith(".bin")
    for bad in ("../../etc/passwd", f"ab/{sha}.wav/../x", "/abs"):
        with pytest.raises(ValueError):
            archive.path(bad)
    assert archive.remove(key) and not archive.remove(key)
    assert not (tmp_path / "audio" / "ab").exists()


# -- ser history ------------------------------------------------------------------------------


def _ser(*args, env_cache: Path) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, SER_CACHE=str(env_cache))
    return subprocess.run([sys.executable, "-m", "ser.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_ser_history_lists_and_exports(tmp_path):
    cache = tmp_path / "cache"
    missing = _ser("history", env_cache=cache)
    assert missing.returncode == 1 and "no history yet" in missing.stderr
    assert str(cache / "history.db") in missing.stderr
    store = HistoryStore.open(f"sqlite:///{cache / 'history.db'}")
    records = [Record.of_prediction(prediction(i % 6, windows=2 if i == 0 else 0),
                                    sha256=f"{i:064x}", size_bytes=i, file_name=f"c{i}.wav")
               for i in range(25)]
    store.add(records)
    store.close()

    shown = _ser("history", env_cache=cache)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["time", "(UTC)", "id", "emotion"]
    assert [line.split()[2] for line in lines[1:-1]] == [r.id for r in records[::-1][:20]]
    assert lines[-1] == f"20 newest of 25 prediction(s) in sqlite:///{cache / 'history.db'}"

    out = _ser("history", "--limit", "3", "--out", str(tmp_path / "h.csv"), env_cache=cache)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "h.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [r.id for r in records[::-1][:3]]
    assert [r["emotion"] for r in rows] == [r.emotion for r in records[::-1][:3]]
    assert float(rows[0]["p_" + rows[0]["emotion"]]) == pytest.approx(0.5 / 1.0)

    out = _ser("history", "--store", f"sqlite:///{cache / 'history.db'}", "--out",
               str(tmp_path / "h.json"), env_cache=tmp_path / "elsewhere")
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "h.json").read_text())
    assert len(data) == 25 and data[-1]["id"] == records[0].id
    assert len(data[-1]["windows"]) == 2 and data[-1]["probabilities"].keys() == set(LABELS)

    bad = _ser("history", "--out", str(tmp_path / "h.txt"), env_cache=cache)
    assert bad.returncode == 2 and ".csv or .json" in bad.stderr
    off = _ser("history", "--store", "none", env_cache=cache)
    assert off.returncode == 2 and "keeps no history" in off.stderr


def test_ser_history_on_postgresql(postgres, tmp_path):
    url = postgres.new_database()
    store = HistoryStore.open(url)
    store.add([record(2, name="pg.wav")])
    store.close()
    shown = _ser("history", "--store", url, env_cache=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "pg.wav" in shown.stdout and "takut" in shown.stdout
    assert shown.stdout.strip().endswith(f"1 newest of 1 prediction(s) in "
                                         f"{url.replace('postgresql://', 'postgresql+psycopg://')}")


# -- Optuna 2.x (the sweep extra) beside SQLAlchemy 2 ----------------------------------------


def test_optuna_in_memory_study_works_beside_the_history_store(tmp_path):
    """The sweep extra pins optuna 2.10, which predates SQLAlchemy 2. Its in-memory study (the
    one conf/hparams_search/optuna.yaml uses, storage: null) does not touch SQLAlchemy and
    works; the history store works in the same environment."""
    optuna = pytest.importorskip("optuna")
    import sqlalchemy

    assert int(sqlalchemy.__version__.split(".")[0]) >= 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda t: -(t.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=15)
    assert len(study.trials) == 15 and abs(study.best_params["x"] - 0.3) < 0.5
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    store.add([record(5)])
    assert store.count() == 1
    store.close()
