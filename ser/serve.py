"""HTTP serving: the recognizer behind ``POST /predict``, for the original project's web front end.

    from ser.serve import create_app, run_server
    app = create_app("outputs/run/model")          # or an EmotionRecognizer already built
    run_server("outputs/run/model", host="127.0.0.1", port=8000)

Why it is built this way:

* The model is loaded once, in the app's lifespan, so the server accepts requests only when it
  can answer them; ``run_server`` logs ``ready`` at that moment (scripts and tests wait on it).
* What a client may cost is bounded before it is spent (:mod:`ser.serve_guard`): more than
  ``max_pending`` requests in progress get 503 before their body is read; a body past
  ``max_upload_mb`` gets 413 as it streams in (declared length or not); a body slower than
  ``body_timeout`` gets 408; a connection without complete headers after ``header_timeout`` is
  closed. The body is spooled by the multipart parser (1 MB in memory, the rest in an anonymous
  temporary file); nothing is ever written under a name the client chose (the client's name
  only appears, quoted, in error messages).
* The audio header is read first and checked against ``limits`` (:class:`ser.audio.AudioLimits`:
  length, channels, sample rate): a small file that claims an hour of 8-channel audio is refused
  (413) without being decoded. Decoding streams (one block at a time, mixed down and resampled
  on the way), so a decoded upload costs its 16 kHz mono samples and no more.
* Decoding and the forward pass run in worker threads, never on the event loop, scheduled
  cheapest upload first (:mod:`ser.serve_schedule`): at most ``decode_workers`` uploads are
  decoded and held at once (a long one never takes the last slot), and the model runs
  ``max_concurrency`` forward passes at a time (default 1: torch already uses every core for
  one), taken once per window of a long recording, so a short upload does not wait for a long
  one to finish. Cheapest first is bounded by ``ageing`` (audio seconds of priority an upload
  gains per second it waits, default 10): a long upload is overtaken by later short ones for at
  most its length / ``ageing`` seconds (a 10-minute one for about a minute), never forever.
* Every error is ``{"detail": str}`` with a status saying what is wrong: 413 too large (bytes,
  length or channels), 415 not audio or an unaccepted sample rate, 400 empty / corrupt / too
  short, 422 a request without a ``file`` field, 408 a body too slow, 503 busy. ``/openapi.json``
  lists each of them and the 200 body's schema.
* Each answer is recorded by :mod:`ser.history` (``history=``) on a thread of its own: the
  answer never waits for the database, and a failing database is a warning, not an error.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, BinaryIO

import anyio
import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ser.audio import DEFAULT_LIMITS, AudioError, AudioInfo, AudioLimits, audio_info, load_audio
from ser.history.routes import router as history_router
from ser.history.service import History, HistoryOptions
from ser.inference import EmotionRecognizer, Prediction
from ser.serve_api import ERROR_RESPONSES, PingBody, PredictionBody
from ser.serve_guard import Admission, RequestGuard, h11_protocol
from ser.serve_schedule import DEFAULT_AGEING, PriorityGate, PrioritySlots

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Room for the multipart boundary and part headers around the file itself.
_MULTIPART_SLACK = 64 * 1024
# The browser origins of the original front end (``npm start``), allowed by default.
DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")


def cors_origins_with(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The default origins plus ``extra`` (``--cors-origin`` adds, it does not replace)."""
    return tuple(dict.fromkeys((*DEFAULT_CORS_ORIGINS, *extra)))


# AudioError kinds by status: not audio (or not a rate we take) 415, beyond a size bound 413;
# the rest are broken audio (400).
_STATUS_OF_KIND = {"not_audio": 415, "bad_rate": 415, "too_long": 413, "too_many_channels": 413}
# Uploads longer than this (seconds) count as long for the decode slots (serve_schedule).
_LONG_UPLOAD_S = 30.0
# Header reads (cheap, before any slot is held) at once.
_HEADER_READERS = 4


def prediction_payload(prediction: Prediction) -> dict[str, Any]:
    """The JSON the front end expects; ``windows`` only for recordings cut into windows."""
    body: dict[str, Any] = {
        "emotion": prediction.label,
        "confidence": prediction.confidence,
        "probabilities": dict(prediction.probabilities),
    }
    if prediction.duration is not None:
        body["duration"] = prediction.duration
    if prediction.warning:
        body["warning"] = prediction.warning
    if prediction.windows:
        body["windows"] = [
            {"start": w.start, "end": w.end, "emotion": w.label, "confidence": w.confidence,
             "probabilities": dict(w.probabilities)}
            for w in prediction.windows
        ]
    return body


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
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
    max_concurrency: int = 1,
    decode_workers: int = 2,
    ageing: float = DEFAULT_AGEING,
    max_pending: int = 64,
    limits: AudioLimits = DEFAULT_LIMITS,
    body_timeout: float = 60.0,
    backbone: str | None = None,
    recognizer_options: dict[str, Any] | None = None,
    on_ready: Callable[[EmotionRecognizer], None] | None = None,
    history: HistoryOptions | None = None,
    stream_limits: Any = None,
) -> FastAPI:
    """The FastAPI app. A path is loaded at start-up (lifespan), a recognizer is used as is.

    A recognizer is anything with ``sampling_rate`` and ``predict(clip, sampling_rate, *,
    batch_size, gate)`` (see :meth:`EmotionRecognizer.predict`). ``recognizer_options`` go to
    :meth:`EmotionRecognizer.from_pretrained` (``device``, ``threads``, ``quantize``,
    ``long_threshold`` ...); ``on_ready`` is called once the model is loaded, before the first
    request is accepted. ``limits`` bound what an upload may contain (see the module docstring).
    ``ageing`` bounds how long cheapest-first lets a long upload wait (:mod:`ser.serve_schedule`).
    ``history`` says where answers are recorded (:mod:`ser.history`; default: nowhere).
    ``stream_limits`` (a :class:`ser.serve_live.StreamLimits`) bounds the ``/stream`` WebSocket.
    """
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if max_concurrency < 1 or decode_workers < 1 or max_pending < 1:
        raise ValueError("max_concurrency, decode_workers and max_pending must be at least 1")
    if not 0 <= ageing < float("inf"):
        raise ValueError(f"ageing must be a finite number >= 0, got {ageing}")
    if not body_timeout > 0:
        raise ValueError(f"body_timeout must be positive, got {body_timeout}")
    limit = int(max_upload_mb * MB)
    too_large = (f"upload too large: the limit is {max_upload_mb:g} MB "
                 f"({limit} bytes); send a shorter or compressed recording")
    options = dict(recognizer_options or {})
    if backbone is not None:
        options["backbone"] = backbone
    recorder = History(history)  # a bad --store fails here, before the model loads
    admission = Admission(max_pending)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            recognizer = await anyio.to_thread.run_sync(_load_recognizer, recognizer_or_path,
                                                        options)
        except Exception as exc:
            log.error("cannot start: the model did not load: %s", exc)
            raise
        app.state.recognizer = recognizer
        app.state.header_limiter = anyio.CapacityLimiter(_HEADER_READERS)
        # One clock for both gates: a request's arrival ranks it in each (serve_schedule).
        app.state.slots = PrioritySlots(decode_workers, long_cost=_LONG_UPLOAD_S, ageing=ageing,
                                        clock=time.monotonic)
        # Threads of their own for the slot holders: the multipart parser's spool writes use
        # anyio's shared pool, and a crowd of uploads must not make a decode wait for a thread.
        app.state.work_threads = anyio.CapacityLimiter(decode_workers)
        app.state.model_gate = PriorityGate(max_concurrency, ageing=ageing, clock=time.monotonic)
        app.state.audio_limits = limits
        try:
            await anyio.to_thread.run_sync(recorder.start, getattr(recognizer, "source", None))
        except Exception as exc:
            log.error("cannot start: the history store %s cannot be used: %s", recorder.shown, exc)
            raise
        app.state.history = recorder
        if on_ready is not None:
            on_ready(recognizer)
        log.info("model loaded: %s", getattr(recognizer, "source", "") or "in-memory recognizer")
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(recorder.close)

    app = FastAPI(title="ser: speech emotion recognition", lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.admission = admission

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

    @app.get("/ping", response_model=PingBody)
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        page = resources.files("ser").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    @app.post("/predict", response_model=PredictionBody, responses=ERROR_RESPONSES,
              summary="The emotion of one recording")
    async def predict(request: Request, file: UploadFile = File(
            ..., description="the recording: wav, flac, ogg or mp3")) -> JSONResponse:
        state = request.app.state
        shown = _shown_name(file.filename)
        try:
            if file.size == 0:
                raise AudioError(shown, "empty file (0 bytes): nothing to analyse", "empty")
            info = await anyio.to_thread.run_sync(_header, file.file, shown, limits,
                                                  limiter=state.header_limiter)
            arrived = time.monotonic()  # its rank in both gates ages from here
            async with state.slots.hold(info.duration, arrived=arrived):
                recognizer: EmotionRecognizer = state.recognizer
                clip = await anyio.to_thread.run_sync(_decode, file.file, shown,
                                                      recognizer.sampling_rate, limits,
                                                      limiter=state.work_threads)
                gate = functools.partial(state.model_gate.hold, info.duration, arrived=arrived)
                prediction = await anyio.to_thread.run_sync(_infer, recognizer, clip, gate,
                                                            limiter=state.work_threads)
                if info.warning:  # a cut file: the answer covers the part that is there
                    prediction = dataclasses.replace(prediction, warning=info.warning)
                # The history keeps the upload's hash (and, with --keep-audio, its bytes): read
                # back from the spool, at most max_upload_mb, only when a store is on.
                data = (await anyio.to_thread.run_sync(_read_all, file.file,
                                                       limiter=state.work_threads)
                        if state.history.enabled else b"")
        except AudioError as exc:
            log.info("rejected upload %s: %s", shown, exc.reason)
            return JSONResponse({"detail": f"cannot use the uploaded file {shown}: {exc.reason}"},
                                status_code=_STATUS_OF_KIND.get(exc.kind, 400))
        finally:
            await file.close()
        body = prediction_payload(prediction)
        body.update(await state.history.record(data, file.filename, prediction,
                                               request.client.host if request.client else None))
        return JSONResponse(body)

    from ser.serve_live import StreamLimits, add_live_routes

    app.include_router(history_router)
    add_live_routes(app, limits=stream_limits or StreamLimits(), upload_limit=limit,
                    too_large=too_large, allowed_origins=tuple(cors_origins))
    app.add_middleware(RequestGuard, admission=admission, limit=limit + _MULTIPART_SLACK,
                       too_large=too_large, body_timeout=body_timeout,
                       paths=("/predict", "/timeline"))
    app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=False,
                       allow_methods=["GET", "POST", "DELETE", "OPTIONS"], allow_headers=["*"])
    return app


def _read_all(file: BinaryIO) -> bytes:
    file.seek(0)
    return file.read()


def _header(file: BinaryIO, shown: str, limits: AudioLimits) -> AudioInfo:
    """The upload's header, checked against ``limits`` before anything is decoded."""
    info = _client_fault(audio_info, file, name=shown)
    limits.check(info)
    return info


def _decode(file: BinaryIO, shown: str, rate: int, limits: AudioLimits) -> np.ndarray:
    return _client_fault(load_audio, file, target_sr=rate, name=shown, limits=limits)


def _client_fault(read: Callable[..., Any], file: BinaryIO, *, name: str, **kwargs: Any) -> Any:
    """Run a reader of the client's bytes; any failure of it is a 400 naming the file, not a
    server fault."""
    try:
        return read(file, name=name, **kwargs)
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - the client's bytes, not a server fault: a 400
        log.warning("upload %s could not be decoded: %r", name, exc)
        raise AudioError(name, f"could not be decoded ({type(exc).__name__}: {exc})",
                         "truncated") from exc


def _infer(recognizer: EmotionRecognizer, clip: np.ndarray,
           gate: Callable[[], Any]) -> Prediction:
    # One window per forward pass, so that a long upload yields the model between windows
    # (on the CPU, batching windows gains ~5%).
    return recognizer.predict(clip, sampling_rate=recognizer.sampling_rate, batch_size=1,
                              gate=gate)


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
    backbone: str | None = None,
    recognizer_options: dict[str, Any] | None = None,
    log_level: str = "info",
    history: HistoryOptions | None = None,
    stream_limits: Any = None,
) -> int:
    """Serve until interrupted (Ctrl-C). Returns 1 if start-up failed (e.g. the model did not
    load; the reason is logged), else 0."""
    app = create_app(model, max_upload_mb=max_upload_mb, cors_origins=cors_origins,
                     limits=limits, body_timeout=body_timeout, ageing=ageing, backbone=backbone,
                     recognizer_options=recognizer_options, history=history,
                     stream_limits=stream_limits)
    server = make_server(app, host=host, port=port, log_level=log_level,
                         header_timeout=header_timeout)
    server.run()
    return 0 if server.started else 1


__all__ = ["DEFAULT_CORS_ORIGINS", "ServerThread", "bound_port", "cors_origins_with", "create_app", "make_server", "prediction_payload", "run_server"]
