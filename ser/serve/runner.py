"""Running the app: a uvicorn server that says ``ready`` when it can answer (``make_server``),
the same on a background thread for tests and benchmarks (``ServerThread``), and ``ser serve``'s
blocking loop (``run_server``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from ser.audio import DEFAULT_LIMITS, AudioLimits
from ser.history.service import HistoryOptions
from ser.inference import EmotionRecognizer
from ser.serve.app import DEFAULT_CORS_ORIGINS, create_app
from ser.serve.guard import h11_protocol
from ser.serve.schedule import DEFAULT_AGEING, DEFAULT_REFUSAL_DELAY

# The package's logger: log lines name ser.serve, as before the package was split.
log = logging.getLogger(__package__)


def make_server(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000,
                log_level: str = "info", header_timeout: float = 10.0) -> Any:
    """A uvicorn server that logs ``ready: http://HOST:PORT`` once the model is loaded *and*
    the socket listens; ``server.started`` turns true at the same moment (tests poll it).
    Connections without complete request headers after ``header_timeout`` s are closed."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                log.info("ready: http://%s:%d", host, bound_port(self))

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            lifespan="on", http=h11_protocol(header_timeout))
    return _Server(config)


def bound_port(server: Any) -> int:
    """The port a started uvicorn server listens on (the real one when asked for port 0)."""
    for listener in getattr(server, "servers", ()):
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return int(server.config.port)


class ServerThread:
    """A real uvicorn server on a background thread, for tests and benchmarks.

        with ServerThread(create_app(path)) as url:   # "http://127.0.0.1:PORT", ready
            httpx.get(url + "/ping")

    Port 0 (the default) lets the OS pick a free port: no race between choosing and binding.
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0,
                 start_timeout: float = 60.0, log_level: str = "warning",
                 header_timeout: float = 10.0) -> None:
        self.server = make_server(app, host=host, port=port, log_level=log_level,
                                  header_timeout=header_timeout)
        self.host = host
        self.start_timeout = start_timeout
        self._thread: Any = None

    def __enter__(self) -> str:
        import threading
        import time

        self._thread = threading.Thread(target=self.server.run, name="ser-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped during start-up (see the log)")
            if time.monotonic() > deadline:
                self.server.should_exit = True
                raise TimeoutError(f"the server was not ready after {self.start_timeout} s")
            time.sleep(0.02)
        return f"http://{self.host}:{bound_port(self.server)}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def run_server(
    model: EmotionRecognizer | str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = 10,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
    limits: AudioLimits = DEFAULT_LIMITS,
    header_timeout: float = 10.0,
    body_timeout: float = 60.0,
    ageing: float = DEFAULT_AGEING,
    refusal_delay: float = DEFAULT_REFUSAL_DELAY,
    backbone: str | None = None,
    recognizer_options: dict[str, Any] | None = None,
    log_level: str = "info",
    history: HistoryOptions | None = None,
    stream_limits: Any = None,
) -> int:
    """Serve until interrupted (Ctrl-C). Returns 1 if start-up failed (e.g. the model did not
    load; the reason is logged), else 0."""
    app = create_app(model, max_upload_mb=max_upload_mb, cors_origins=cors_origins,
                     limits=limits, body_timeout=body_timeout, ageing=ageing,
                     refusal_delay=refusal_delay, backbone=backbone,
                     recognizer_options=recognizer_options, history=history,
                     stream_limits=stream_limits)
    server = make_server(app, host=host, port=port, log_level=log_level,
                         header_timeout=header_timeout)
    server.run()
    return 0 if server.started else 1
