"""W&B start-up against a server that accepts connections and never answers (issue 14, item 5):
the job goes offline within the bounds, with one line saying why, instead of hanging."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A local TCP server that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture()
def online_env(monkeypatch, silent_server, tmp_path) -> str:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", silent_server)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return silent_server


def test_probe_needs_an_answer_not_a_connection(online_env, caplog):
    from ser import tracking

    # A bare TCP connect succeeds against this server: that was the old probe.
    host, port = online_env.rsplit(":", 1)
    with socket.create_connection((host.split("//")[1], int(port)), timeout=1):
        pass
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ser.tracking"):
        assert tracking.wandb_mode() == "offline"
    assert time.monotonic() - start < tracking.PROBE_TIMEOUT + 2
    lines = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert len(lines) == 1 and "did not answer within" in lines[0] and online_env in lines[0]


def test_probe_accepts_any_http_answer(monkeypatch):
    """A server that answers (even 404) is reachable: the probe does not send people offline
    for a status code."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from ser.tracking import _reachable

    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _reachable(f"http://127.0.0.1:{server.server_port}", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not _reachable(f"http://127.0.0.1:{port}", timeout=1)  # nothing listens


@pytest.mark.slow
def test_logger_start_times_out_then_runs_offline(online_env, monkeypatch, caplog, tmp_path):
    """Forced online (the probe skipped), wandb.init gives up after init_timeout and the
    Lightning logger's run starts offline instead of failing the job."""
    import wandb

    from ser.tracking import finish_wandb, wandb_logger

    monkeypatch.setenv("WANDB_MODE", "online")
    logger = wandb_logger(init_timeout=2, project="ser-test", save_dir=str(tmp_path))
    start = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="ser.tracking"):
            run = logger.experiment
        elapsed = time.monotonic() - start
        assert run.settings.mode == "offline"
        assert wandb.run is run
        logger.log_metrics({"x": 1.0}, step=0)
    finally:
        finish_wandb()
    # init_timeout 2 s (wandb's default is 90 s and a real hang took ~118 s); starting the
    # wandb service and the offline run take a few seconds on a busy 2-core machine.
    assert elapsed < 45, elapsed
    lines = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert len(lines) == 1 and "logging offline instead" in lines[0], lines
    import os

    assert os.environ["WANDB_MODE"] == "offline"  # later runs of the process skip the wait


def test_the_finish_timeout_reaches_the_run(monkeypatch, tmp_path):
    """The run's end is bounded too: conf/logger/wandb.yaml's finish_timeout (60 s) is W&B's
    own setting on the run, and it never raises (the job's results are already on disk)."""
    import wandb
    from helpers import compose_config
    from hydra.utils import instantiate

    from ser.tracking import finish_wandb, wandb_logger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_config("train", tmp_path, ["logger=wandb"])
    assert cfg.logger.wandb.finish_timeout == 60
    logger = instantiate(cfg.logger.wandb)
    try:
        run = logger.experiment
        assert wandb.run is run and run.settings.mode == "offline"
        assert run.settings.finish_timeout == 60.0
        assert run.settings.finish_timeout_raises is False
        assert run.settings.init_timeout == 30.0
    finally:
        finish_wandb()
    assert wandb.run is None
    # What finish_run reads to tell a finish that gave up (a canary for wandb upgrades).
    assert run._finish_timed_out is False
    logger = wandb_logger(finish_timeout=7, project="ser-test", save_dir=str(tmp_path / "b"))
    try:
        assert logger.experiment.settings.finish_timeout == 7.0
    finally:
        finish_wandb()


def test_a_finish_that_gives_up_says_how_to_upload_the_rest(caplog):
    """When W&B gives up uploading at the end (its finish_timeout expired), the job goes on and
    one line names the local folder to `wandb sync`. (A stand-in run: W&B marks the timeout in
    ``_finish_timed_out``; making a real upload hang needs a fake W&B server.)"""
    from types import SimpleNamespace

    from ser.tracking import finish_run

    class SlowUpload:
        settings = SimpleNamespace(finish_timeout=60.0, sync_dir="/runs/wandb/run-x-abc")
        _finish_timed_out = False

        def finish(self, exit_code: int = 0) -> None:
            self.exit_code = exit_code
            self._finish_timed_out = True

    run = SlowUpload()
    with caplog.at_level(logging.WARNING, logger="ser.tracking"):
        finish_run(run, exit_code=1)
    assert run.exit_code == 1
    lines = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "did not finish within 60 s" in lines[0]
    assert "`wandb sync /runs/wandb/run-x-abc`" in lines[0]
    caplog.clear()
    finish_run(SimpleNamespace(finish=lambda exit_code=0: None, settings=None))
    assert not caplog.records  # a finished upload says nothing
