"""HTTP serving: the recognizer behind ``POST /predict``, for the original project's web front end.

    from ser.serve import create_app, run_server
    app = create_app("outputs/run/model")          # or an EmotionRecognizer already built
    run_server("outputs/run/model", host="127.0.0.1", port=8000)

Why it is built this way:

* The model is loaded once, in the app's lifespan, so the server accepts requests only when it
  can answer them; ``run_server`` logs ``ready`` at that moment (scripts and tests wait on it).
* Uploads are capped before they are parsed: an ASGI guard reads at most ``max_upload_mb`` (plus
  room for the multipart headers) and answers 413 beyond that, whether or not the client declared
  a Content-Length. The file is decoded from the bytes in memory; nothing is ever written under a
  name the client chose (the client's name only appears, quoted, in error messages).
* Decoding and the forward pass run in worker threads, never on the event loop. Decoding runs up
  to ``decode_workers`` at a time; the model runs ``max_concurrency`` calls at a time (default 1:
  torch already uses every core for one call, and a recognizer serves one caller at a time).
  More than ``max_pending`` requests waiting get 503 instead of an unbounded queue.
* Every error is ``{"detail": str}`` with a 4xx status saying what is wrong: 413 too large,
  415 not audio, 400 empty / corrupt / too short, 422 a request without a ``file`` field.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ser.audio import AudioError, load_audio
from ser.inference import EmotionRecognizer, Prediction

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Room for the multipart boundary and part headers around the file itself.
_MULTIPART_SLACK = 64 * 1024
# A client that keeps sending past the limit is read this far (to answer 413 cleanly), then cut.
_DRAIN_FACTOR = 4
# AudioError kinds that mean "this is not audio at all" (415); the rest are broken audio (400).
_UNSUPPORTED_KINDS = frozenset({"not_audio"})

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def prediction_payload(prediction: Prediction) -> dict[str, Any]:
    """The JSON the front end expects; ``windows`` only for recordings cut into windows."""
    body: dict[str, Any] = {
        "emotion": prediction.label,
        "confidence": prediction.confidence,
        "probabilities": dict(prediction.probabilities),
    }
    if prediction.duration is not None:
        body["duration"] = prediction.duration
    if prediction.windows:
        body["windows"] = [
            {"start": w.start, "end": w.end, "emotion": w.label, "confidence": w.confidence,
             "probabilities": dict(w.probabilities)}
            for w in prediction.windows
        ]
    return body


class UploadLimit:
    """ASGI guard: buffer at most ``limit`` body bytes of a POST, answer 413 beyond that.

    Reading the body here (instead of letting the multipart parser spool it) is what makes the
    limit hold for chunked uploads without a Content-Length as well.
    """

    def __init__(self, app: ASGIApp, *, limit: int, paths: Sequence[str] = ("/predict",),
                 detail: str) -> None:
        self.app = app
        self.limit = limit
        self.paths = tuple(paths)
        self.detail = detail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(receive, send, already=0)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(receive, send, already=len(body),
                                   more=message.get("more_body", False))
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, receive: Receive, send: Send, *, already: int,
                      more: bool = True) -> None:
        # Read (and drop) the rest, up to a cap, so the client gets to read the 413.
        seen = already
        while more and seen < _DRAIN_FACTOR * self.limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            seen += len(message.get("body", b""))
            more = message.get("more_body", False)
        payload = json.dumps({"detail": self.detail}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(payload)).encode())]
        if more:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _shown_name(filename: str | None) -> str:
    """The client's file name for messages only: quoted, control characters out, bounded."""
    name = "".join(ch for ch in (filename or "upload") if ch.isprintable())[:80]
    return repr(name or "upload")


def _validation_detail(exc: RequestValidationError) -> str:
    """One readable sentence from FastAPI's list of validation errors."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
        if loc == ["file"] and error.get("type") == "missing":
            parts.append("no file uploaded: send the audio as the multipart/form-data field "
                         "'file' (wav, mp3, ogg or flac)")
        elif loc == ["file"]:
            parts.append("field 'file' must be an uploaded file (multipart/form-data with a "
                         f"filename), not {error.get('msg', 'this value').lower()}")
        else:
            where = ".".join(loc) or "request"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _load_recognizer(source: EmotionRecognizer | str | os.PathLike,
                     options: dict[str, Any]) -> EmotionRecognizer:
    if not isinstance(source, (str, os.PathLike)):
        return source  # a recognizer (or anything with .predict and .sampling_rate)
    log.info("loading model %s", source)
    return EmotionRecognizer.from_pretrained(source, **options)


def create_app(
    recognizer_or_path: EmotionRecognizer | str | os.PathLike,
    *,
    max_upload_mb: float = 10,
    cors_origins: Sequence[str] = ("http://localhost:3000",),
    max_concurrency: int = 1,
    decode_workers: int = 2,
    max_pending: int = 64,
    backbone: str | None = None,
    recognizer_options: dict[str, Any] | None = None,
    on_ready: Callable[[EmotionRecognizer], None] | None = None,
    stream_limits: Any = None,
) -> FastAPI:
    """The FastAPI app. A path is loaded at start-up (lifespan), a recognizer is used as is.

    ``recognizer_options`` go to :meth:`EmotionRecognizer.from_pretrained` (``device``,
    ``threads``, ``quantize``, ``long_threshold`` ...); ``on_ready`` is called once the model is
    loaded, before the first request is accepted. ``stream_limits`` (a
    :class:`ser.serve_live.StreamLimits`) bounds the ``/stream`` WebSocket.
    """
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if max_concurrency < 1 or decode_workers < 1 or max_pending < 1:
        raise ValueError("max_concurrency, decode_workers and max_pending must be at least 1")
    limit = int(max_upload_mb * MB)
    too_large = (f"upload too large: the limit is {max_upload_mb:g} MB "
                 f"({limit} bytes); send a shorter or compressed recording")
    options = dict(recognizer_options or {})
    if backbone is not None:
        options["backbone"] = backbone

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            recognizer = await anyio.to_thread.run_sync(_load_recognizer, recognizer_or_path,
                                                        options)
        except Exception as exc:
            log.error("cannot start: the model did not load: %s", exc)
            raise
        app.state.recognizer = recognizer
        app.state.model_limiter = anyio.CapacityLimiter(max_concurrency)
        app.state.decode_limiter = anyio.CapacityLimiter(decode_workers)
        app.state.pending = 0
        if on_ready is not None:
            on_ready(recognizer)
        log.info("model loaded: %s", getattr(recognizer, "source", "") or "in-memory recognizer")
        yield

    app = FastAPI(title="ser: speech emotion recognition", lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _on_bug(request: Request, exc: Exception) -> JSONResponse:
        # A fault of the server, not of the request: logged with its traceback, still JSON.
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal server error ({type(exc).__name__}); "
                                       "see the server log"}, status_code=500)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        page = resources.files("ser").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    @app.post("/predict")
    async def predict(request: Request, file: UploadFile = File(...)) -> JSONResponse:
        state = request.app.state
        shown = _shown_name(file.filename)
        data = await file.read()
        await file.close()
        if len(data) > limit:
            return JSONResponse({"detail": too_large}, status_code=413)
        if not data:
            return JSONResponse({"detail": f"empty file {shown} (0 bytes): nothing to analyse"},
                                status_code=400)
        if state.pending >= max_pending:
            return JSONResponse({"detail": f"server busy: {max_pending} requests already "
                                           "waiting; retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        state.pending += 1
        try:
            recognizer: EmotionRecognizer = state.recognizer
            clip = await anyio.to_thread.run_sync(_decode, data, shown,
                                                  recognizer.sampling_rate,
                                                  limiter=state.decode_limiter)
            prediction = await anyio.to_thread.run_sync(
                _infer, recognizer, clip, limiter=state.model_limiter)
        except AudioError as exc:
            status = 415 if exc.kind in _UNSUPPORTED_KINDS else 400
            log.info("rejected upload %s: %s", shown, exc.reason)
            return JSONResponse({"detail": f"cannot use the uploaded file {shown}: {exc.reason}"},
                                status_code=status)
        finally:
            state.pending -= 1
        return JSONResponse(prediction_payload(prediction))

    from ser.serve_live import StreamLimits, add_live_routes

    add_live_routes(app, limits=stream_limits or StreamLimits(), upload_limit=limit,
                    too_large=too_large, allowed_origins=tuple(cors_origins))
    app.add_middleware(UploadLimit, limit=limit + _MULTIPART_SLACK, detail=too_large,
                       paths=("/predict", "/timeline"))
    app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=False,
                       allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"])
    return app


def _decode(data: bytes, shown: str, rate: int) -> np.ndarray:
    try:
        return load_audio(data, target_sr=rate, name=shown)
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - the client's bytes, not a server fault: a 400
        log.warning("upload %s could not be decoded: %r", shown, exc)
        raise AudioError(shown, f"could not be decoded ({type(exc).__name__}: {exc})",
                         "truncated") from exc


def _infer(recognizer: EmotionRecognizer, clip: np.ndarray) -> Prediction:
    return recognizer.predict(clip, sampling_rate=recognizer.sampling_rate)


def make_server(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000,
                log_level: str = "info") -> Any:
    """A uvicorn server that logs ``ready: http://HOST:PORT`` once the model is loaded *and*
    the socket listens; ``server.started`` turns true at the same moment (tests poll it)."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                log.info("ready: http://%s:%d", host, bound_port(self))

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            lifespan="on")
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
                 start_timeout: float = 60.0, log_level: str = "warning") -> None:
        self.server = make_server(app, host=host, port=port, log_level=log_level)
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
    cors_origins: Sequence[str] = ("http://localhost:3000",),
    backbone: str | None = None,
    recognizer_options: dict[str, Any] | None = None,
    log_level: str = "info",
    stream_limits: Any = None,
) -> int:
    """Serve until interrupted (Ctrl-C). Returns 1 if start-up failed (e.g. the model did not
    load; the reason is logged), else 0."""
    app = create_app(model, max_upload_mb=max_upload_mb, cors_origins=cors_origins,
                     backbone=backbone, recognizer_options=recognizer_options,
                     stream_limits=stream_limits)
    server = make_server(app, host=host, port=port, log_level=log_level)
    server.run()
    return 0 if server.started else 1


__all__ = ["ServerThread", "UploadLimit", "bound_port", "create_app", "make_server", "prediction_payload", "run_server"]
