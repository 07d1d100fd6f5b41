"""The history behind ``ser serve``: real uvicorn on loopback, real HTTP clients, SQLite and a
throw-away PostgreSQL (tests/pg_cluster.py)."""

from __future__ import annotations

import contextlib

import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import event

from ser.history.service import HistoryOptions
from ser.history.store import HistoryStore
from ser.inference import Prediction
from ser.labels import LABELS
from ser.serve import ServerThread, create_app

RATE = 16000
STEP = 1600  # samples: KeyedRecognizer's label is (samples // STEP) % 6


class KeyedRecognizer:
    """Answers a label that follows from the clip's length, so every request's right label is
    known without a model: a clip of k * STEP samples is LABELS[k % 6]."""

    sampling_rate = RATE
    source = "keyed"

    def predict(self, clip, sampling_rate=None, *, batch_size=8, gate=None):
        with gate() if gate is not None else contextlib.nullcontext():  # the server's model gate
            pass
        probs = np.full(len(LABELS), 0.1)
        probs[(clip.size // STEP) % len(LABELS)] = 0.5
        return Prediction.from_probabilities(probs, duration=clip.size / RATE)


def clip(i: int) -> bytes:
    """Request i's upload: 16-bit WAV of (3 + i % 6) * STEP samples; its right label is
    LABELS[(3 + i % 6) % 6]; the noise seed makes every clip's bytes different."""
    wave = np.random.default_rng(i).normal(0, 0.1, (3 + i % 6) * STEP).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, wave, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def right_label(i: int) -> str:
    return LABELS[(3 + i % 6) % 6]


def post(client: httpx.Client, i: int, name: str | None = None) -> dict:
    response = client.post("/predict", files={"file": (name or f"c{i}.wav", clip(i))})
    assert response.status_code == 200, response.text
    return response.json()


def serve(store: str, **options):
    keep = options.pop("keep_audio", None)
    log_clients = options.pop("log_clients", False)
    app = create_app(KeyedRecognizer(), history=HistoryOptions(store=store, keep_audio=keep,
                                                               log_clients=log_clients),
                     **options)
    return app, ServerThread(app)


def all_pages(client: httpx.Client, limit: int) -> list[dict]:
    items, before = [], None
    while True:
        params = {"limit": limit} | ({"before": before} if before else {})
        body = client.get("/history", params=params).json()
        items += body["items"]
        before = body["next_before"]
        if before is None:
            return items


def test_200_requests_from_8_clients_give_200_rows_with_the_right_labels(store_url):
    app, server = serve(store_url)
    with server as url:
        def worker(w: int) -> list[tuple[int, dict]]:
            with httpx.Client(base_url=url, timeout=60) as c:
                return [(i, post(c, i)) for i in range(w, 200, 8)]

        with ThreadPoolExecutor(8) as pool:
            answers = dict(pair for part in pool.map(worker, range(8)) for pair in part)
        with httpx.Client(base_url=url, timeout=60) as c:
            listed = all_pages(c, limit=64)
    assert len(answers) == 200
    for i, body in answers.items():
        assert body["emotion"] == right_label(i)
        assert body["id"] == body["file_id"] and body["storage_path"] == ""
    assert len(listed) == 200 and [r["id"] for r in listed] == sorted(
        (r["id"] for r in listed), reverse=True)  # newest first, every record once
    store = HistoryStore.open(store_url)
    rows = {r.id: r for r in store.iter_all()}
    store.close()
    assert len(rows) == 200
    for i, body in answers.items():
        row = rows[body["id"]]
        assert row.emotion == right_label(i) and row.file_name == f"c{i}.wav"
        assert row.sha256 == hashlib.sha256(clip(i)).hexdigest()
        assert row.size_bytes == len(clip(i)) and row.duration == pytest.approx(
            (3 + i % 6) * STEP / RATE)
        assert row.probabilities[right_label(i)] == pytest.approx(0.5)
        assert row.model_path == "keyed" and row.client is None


def test_history_survives_a_restart(store_url):
    app, server = serve(store_url)
    with server as url, httpx.Client(base_url=url, timeout=30) as c:
        before = [post(c, i) for i in range(3)]
    app, server = serve(store_url)
    with server as url, httpx.Client(base_url=url, timeout=30) as c:
        after = post(c, 3)
        listed = c.get("/history").json()["items"]
        assert [r["id"] for r in listed] == [after["id"]] + [b["id"] for b in before[::-1]]
        assert [r["emotion"] for r in listed] == [right_label(i) for i in (3, 2, 1, 0)]
        one = c.get(f"/history/{before[0]['id']}").json()
        assert one["file_name"] == "c0.wav" and one["emotion"] == right_label(0)
        assert set(one["probabilities"]) == set(LABELS)
        table = c.get("/history.csv")
        assert table.headers["content-type"].startswith("text/csv")
        lines = table.text.strip().splitlines()
        assert len(lines) == 5 and lines[0].startswith("id,time,file_name,")
        assert lines[-1].startswith(before[0]["id"] + ",")


def test_delete_removes_the_row_and_the_kept_audio(store_url, tmp_path):
    audio = tmp_path / "audio"
    app, server = serve(store_url, keep_audio=audio)
    with server as url, httpx.Client(base_url=url, timeout=30) as c:
        first = post(c, 0, name="../../secret name.wav")
        again = post(c, 0, name="again.wav")  # the same bytes: the same stored file
        other = post(c, 1)
        sha = hashlib.sha256(clip(0)).hexdigest()
        assert first["storage_path"] == again["storage_path"] == f"{sha[:2]}/{sha}.wav"
        c.get("/history")  # waits for the writes
        kept = sorted(p.relative_to(audio).as_posix() for p in audio.rglob("*") if p.is_file())
        assert kept == sorted([first["storage_path"], other["storage_path"]])
        assert (audio / first["storage_path"]).read_bytes() == clip(0)

        gone = c.delete(f"/history/{first['id']}").json()
        assert gone == {"deleted": first["id"], "storage_path": first["storage_path"],
                        "audio_removed": False}  # 'again' still uses it
        assert (audio / first["storage_path"]).exists()
        assert c.get(f"/history/{first['id']}").status_code == 404
        assert c.delete(f"/history/{again['id']}").json()["audio_removed"] is True
        assert not (audio / first["storage_path"]).exists()
        assert c.delete(f"/history/{other['id']}").json()["audio_removed"] is True
        assert not [p for p in audio.rglob("*") if p.is_file()]
        assert c.get("/history").json() == {"items": [], "next_before": None}
        missing = c.delete(f"/history/{other['id']}")
        assert missing.status_code == 404 and other["id"] in missing.json()["detail"]
        assert c.get("/history/not-an-id").status_code == 404


def test_store_none_keeps_nothing_and_the_routes_say_so(tmp_path):
    app, server = serve("none")
    with server as url, httpx.Client(base_url=url, timeout=30) as c:
        body = post(c, 0)
        assert body["emotion"] == right_label(0)
        assert (body["id"], body["file_id"], body["storage_path"]) == (None, None, "")
        for method, path in [("GET", "/history"), ("GET", "/history.csv"),
                             ("GET", "/history/" + "0" * 8 + "-0000-7000-8000-" + "0" * 12),
                             ("DELETE", "/history/x")]:
            response = c.request(method, path)
            assert response.status_code == 404
            assert response.json() == {"detail": "history is off: the server was started "
                                                  "with --store none"}


def test_client_address_only_with_log_clients(tmp_path):
    for flag, expected in [(False, None), (True, "127.0.0.1")]:
        url_store = f"sqlite:///{tmp_path / f'{flag}.db'}"
        app, server = serve(url_store, log_clients=flag)
        with server as url, httpx.Client(base_url=url, timeout=30) as c:
            rid = post(c, 0)["id"]
            assert c.get(f"/history/{rid}").json().get("client") == expected


def test_a_full_disk_is_a_warning_and_predictions_are_still_answered(tmp_path, caplog):
    app, server = serve(f"sqlite:///{tmp_path / 'h.db'}")
    with server as url, httpx.Client(base_url=url, timeout=30) as c:
        store = app.state.history.store()
        with store.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        def full(dbapi_connection, _record):
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        event.listen(store.engine, "connect", full)
        store.engine.dispose()
        with caplog.at_level(logging.WARNING, logger="ser.history"):
            answers = [post(c, i, name="n" * 300) for i in range(30)]
            assert all(a["emotion"] == right_label(i) and a["id"] for i, a in enumerate(answers))
            assert not app.state.history.flush(1.0)
        assert "database or disk is full" in caplog.text
        assert "predictions are still answered" in caplog.text
        event.remove(store.engine, "connect", full)
        store.engine.dispose()
        assert app.state.history.flush(30)  # the held records are written once there is room
        listed = all_pages(c, limit=100)
        assert {r["id"] for r in listed} == {a["id"] for a in answers}


def test_a_database_that_goes_down_and_comes_back(postgres, caplog):
    store_url = postgres.new_database()
    app, server = serve(store_url)
    with server as url, httpx.Client(base_url=url, timeout=60) as c:
        first = post(c, 0)
        postgres.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="ser.history"):
                held = [post(c, i) for i in range(1, 6)]
                assert [h["emotion"] for h in held] == [right_label(i) for i in range(1, 6)]
                down = c.get("/history")
            assert down.status_code == 503
            assert "history store unavailable" in down.json()["detail"]
            assert "store failed" in caplog.text
        finally:
            postgres.start()
        assert app.state.history.flush(60)
        listed = c.get("/history").json()["items"]
        assert [r["id"] for r in listed] == [h["id"] for h in held[::-1]] + [first["id"]]


def test_two_servers_share_one_postgresql_history(postgres):
    store_url = postgres.new_database()
    _, one = serve(store_url)
    _, two = serve(store_url)
    with one as url1, two as url2, httpx.Client(base_url=url1, timeout=30) as c1, \
            httpx.Client(base_url=url2, timeout=30) as c2:
        answers = [post(c1 if i % 2 else c2, i) for i in range(10)]
        c1.get("/history"), c2.get("/history")  # each waits for its own writes
        for c in (c1, c2):
            listed = c.get("/history").json()["items"]
            assert [r["id"] for r in listed] == [a["id"] for a in answers[::-1]]
        assert c1.delete(f"/history/{answers[0]['id']}").status_code == 200
        assert c2.get(f"/history/{answers[0]['id']}").status_code == 404


@pytest.mark.slow
def test_cli_serve_keeps_history_that_ser_history_lists(tmp_path):
    """As a new user: `ser serve --model M` prints where the history goes; answers are recorded
    and on SIGTERM (a clean shutdown) every one is written; `ser history` lists them."""
    import socket

    import torch

    from ser.model import EmotionClassifier

    torch.manual_seed(0)
    model = EmotionClassifier("tiny").export(tmp_path / "model")
    cache = tmp_path / "cache"
    env = dict(os.environ, SER_CACHE=str(cache))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser.cli", "serve", "--model", str(model), "--port", str(port),
         "--device", "cpu", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ready: http://" in line:
                break
        log = "".join(lines)
        assert "ready: http://" in log, log
        assert f"history: sqlite:///{cache / 'history.db'}" in log
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            answers = [post(c, i) for i in range(5)]
        proc.send_signal(signal.SIGTERM)  # at once: the writes may still be queued
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # uvicorn shuts down cleanly, then re-raises the signal: -SIGTERM is its normal exit here
    assert proc.returncode in (0, -signal.SIGTERM), rest
    assert "Application shutdown complete" in rest, rest
    listed = subprocess.run(
        [sys.executable, "-m", "ser.cli", "history", "--out", str(tmp_path / "h.json")],
        capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"5 newest of 5 prediction(s) in sqlite:///{cache / 'history.db'}" in listed.stdout
    records = json.loads((tmp_path / "h.json").read_text())
    assert [r["id"] for r in records] == [a["id"] for a in answers[::-1]]
    assert [r["emotion"] for r in records] == [a["emotion"] for a in answers[::-1]]
    weights = hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    assert all(r["model"] == {"path": str(model), "sha256": weights} for r in records)


def test_cli_serve_refuses_a_bad_store_url(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ser.cli", "serve", "--model", str(tmp_path / "m"),
         "--store", "mysql://u:pw@h/d"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unsupported database 'mysql'" in proc.stderr and "pw" not in proc.stderr


def test_answers_do_not_wait_for_the_database_and_shutdown_writes_everything(tmp_path,
                                                                             monkeypatch):
    import threading

    gate = threading.Event()
    real_add = HistoryStore.add

    def blocked_add(self, records, **kw):
        assert gate.wait(60)
        return real_add(self, records, **kw)

    monkeypatch.setattr(HistoryStore, "add", blocked_add)
    store_url = f"sqlite:///{tmp_path / 'h.db'}"
    app, server = serve(store_url)
    with server as url, httpx.Client(base_url=url, timeout=30) as c:
        answers = [post(c, i) for i in range(6)]  # answered while every write is stuck
        assert not app.state.history.flush(0.5)
        assert HistoryStore.open(store_url).count() == 0
        gate.set()  # the writes go on after the answers; the shutdown below waits for them
    store = HistoryStore.open(store_url)
    assert sorted(r.id for r in store.iter_all()) == sorted(a["id"] for a in answers)
    store.close()


def test_a_database_that_is_down_at_start_up_is_a_warning(tmp_path, caplog, monkeypatch):
    """No PostgreSQL listens on the port: the server starts, answers, warns; at shutdown the
    held records are reported lost (after History.close_timeout)."""
    import socket

    from ser.history.service import History

    pytest.importorskip("psycopg")
    monkeypatch.setattr(History, "close_timeout", 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="ser.history"):
        app, server = serve(f"postgresql://ser@127.0.0.1:{port}/ser")
        with server as url, httpx.Client(base_url=url, timeout=30) as c:
            assert post(c, 0)["id"]
            down = c.get("/history")
            assert down.status_code == 503 and "unavailable" in down.json()["detail"]
    assert "not reachable at start-up" in caplog.text
    assert "1 record(s) lost at shutdown" in caplog.text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_database_from_a_newer_ser_stops_the_start(tmp_path, caplog):
    from sqlalchemy import update

    from ser.history.schema import SCHEMA_VERSION, schema_version

    store_url = f"sqlite:///{tmp_path / 'h.db'}"
    store = HistoryStore.open(store_url)
    with store.engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    store.close()
    app, server = serve(store_url)
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="start-up"):
        with server:
            pass
    assert "cannot start: the history store" in caplog.text and "newer ser" in caplog.text
