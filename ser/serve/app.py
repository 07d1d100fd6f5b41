"""The FastAPI app of ``ser serve``: options checked, the model and history started in the
lifespan, errors as ``{"detail": str}``, ``/ping``, the upload page, and the routes of
:mod:`ser.serve.uploads` (``/predict``), :mod:`ser.history` and :mod:`ser.serve.live` behind the
request guard and CORS. The module docstring of :mod:`ser.serve` says why it is built this way.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ser.audio import DEFAULT_LIMITS, AudioLimits
from ser.history.routes import router as history_router
from ser.history.service import History, HistoryOptions
from ser.inference import EmotionRecognizer
from ser.serve.api import PingBody
from ser.serve.guard import Admission, RequestGuard
from ser.serve.live import StreamLimits, add_live_routes
from ser.serve.schedule import DEFAULT_AGEING, DEFAULT_REFUSAL_DELAY, PriorityGate, PrioritySlots
from ser.serve.uploads import add_predict_route

# The package's logger: log lines name ser.serve, as before the package was split.
log = logging.getLogger(__package__)

MB = 1024 * 1024
# Room for the multipart boundary and part headers around the file itself.
_MULTIPART_SLACK = 64 * 1024
# The browser origins of the original front end (``npm start``), allowed by default.
DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")


def cors_origins_with(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The default origins plus ``extra`` (``--cors-origin`` adds, it does not replace)."""
    return tuple(dict.fromkeys((*DEFAULT_CORS_ORIGINS, *extra)))


# Uploads longer than this (seconds) count as long for the decode slots (ser.serve.schedule).
_LONG_UPLOAD_S = 30.0
# Header reads (cheap, before any slot is held) at once.
_HEADER_READERS = 4


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


def forward_passes_at_once(recognizer: Any) -> int:
    """One for PyTorch, which spreads one forward pass over every core; the ONNX runtime's
    ``clips_at_once`` (one core per clip, :mod:`ser.inference.onnx_runtime`), so concurrent
    uploads keep every core busy."""
    return int(getattr(getattr(recognizer, "runtime", None), "clips_at_once", 1))


def create_app(
    recognizer_or_path: EmotionRecognizer | str | os.PathLike,
    *,
    max_upload_mb: float = 10,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
    max_concurrency: int | None = None,
    decode_workers: int | None = None,
    ageing: float = DEFAULT_AGEING,
    refusal_delay: float = DEFAULT_REFUSAL_DELAY,
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
    ``ageing`` bounds how long cheapest-first lets a long upload wait (:mod:`ser.serve.schedule`).
    ``refusal_delay``: seconds a refused upload's 4xx answer is held back (see
    :data:`ser.serve.schedule.DEFAULT_REFUSAL_DELAY`).
    ``max_concurrency``: forward passes at once; default: as many as the runtime runs side by
    side (:func:`forward_passes_at_once`). ``decode_workers``: uploads decoded and held at once;
    default: 2, or one per forward pass where there are more.
    ``history`` says where answers are recorded (:mod:`ser.history`; default: nowhere).
    ``stream_limits`` (a :class:`ser.serve.live.StreamLimits`) bounds the ``/stream`` WebSocket.
    """
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if any(n is not None and n < 1 for n in (max_concurrency, decode_workers)) \
            or max_pending < 1:
        raise ValueError("max_concurrency, decode_workers and max_pending must be at least 1")
    if not 0 <= refusal_delay < float("inf"):
        raise ValueError(f"refusal_delay must be a finite number >= 0, got {refusal_delay}")
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
        # One clock for both gates: a request's arrival ranks it in each (ser.serve.schedule).
        passes = max_concurrency or forward_passes_at_once(recognizer)
        uploads = decode_workers or max(2, passes)
        app.state.slots = PrioritySlots(uploads, long_cost=_LONG_UPLOAD_S, ageing=ageing,
                                        clock=time.monotonic)
        # Threads of their own for the slot holders: the multipart parser's spool writes use
        # anyio's shared pool, and a crowd of uploads must not make a decode wait for a thread.
        app.state.work_threads = anyio.CapacityLimiter(uploads)
        app.state.model_gate = PriorityGate(passes, ageing=ageing, clock=time.monotonic)
        app.state.audio_limits = limits
        app.state.refusal_delay = refusal_delay
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

    add_predict_route(app, limits)
    app.include_router(history_router)
    add_live_routes(app, limits=stream_limits or StreamLimits(), upload_limit=limit,
                    too_large=too_large, allowed_origins=tuple(cors_origins))
    app.add_middleware(RequestGuard, admission=admission, limit=limit + _MULTIPART_SLACK,
                       too_large=too_large, body_timeout=body_timeout,
                       paths=("/predict", "/timeline"))
    app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=False,
                       allow_methods=["GET", "POST", "DELETE", "OPTIONS"], allow_headers=["*"])
    return app


