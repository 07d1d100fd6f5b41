"""Live recognition routes added to the app of :mod:`ser.serve`: the ``/stream`` WebSocket (its
protocol and bounds: :mod:`ser.serve.stream`), timelines of uploads (``POST /timeline``) and the
page's static files (``/static/...``).
"""

from __future__ import annotations

import io
from typing import Any

import anyio
from fastapi import FastAPI, File, Request, UploadFile, WebSocket
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from ser.audio import AudioError
from ser.inference.live import StreamEvent
from ser.serve.api import ERROR_RESPONSES
from ser.serve.stream import StreamLimits, serve_stream
from ser.serve.uploads import STATUS_OF_KIND, decode_upload, shown_name


def model_runner(state: Any) -> Any:
    """``await run(fn, seconds)``: ``fn`` on a worker thread, holding the server's model gate
    (:class:`ser.serve.schedule.PriorityGate`, shared with ``/predict``; cheapest first)."""

    async def run(fn: Any, seconds: float) -> Any:
        def gated() -> Any:
            with state.model_gate.hold(seconds):
                return fn()

        return await anyio.to_thread.run_sync(gated, limiter=state.work_threads)

    return run


def add_live_routes(app: FastAPI, *, limits: StreamLimits, upload_limit: int,
                    too_large: str, allowed_origins: tuple[str, ...]) -> None:
    """``/stream``, ``POST /timeline`` and ``/static``; the app's state must hold
    ``recognizer``, ``model_gate``, ``work_threads`` and ``audio_limits`` (set by its lifespan)."""
    app.state.live_streams = 0
    app.mount("/static", StaticFiles(packages=[("ser", "static")]), name="static")

    @app.post("/timeline", responses=ERROR_RESPONSES,
              summary="Emotion per speech segment of one (long) recording")
    async def timeline(request: Request, file: UploadFile = File(...)) -> JSONResponse:
        state = request.app.state
        shown = shown_name(file.filename)
        data = await file.read()
        await file.close()
        if len(data) > upload_limit:
            return JSONResponse({"detail": too_large}, status_code=413)
        if not data:
            return JSONResponse({"detail": f"empty file {shown} (0 bytes): nothing to analyse"},
                                status_code=400)
        recognizer = state.recognizer
        run = model_runner(state)
        try:
            clip = await anyio.to_thread.run_sync(decode_upload, io.BytesIO(data), shown,
                                                  recognizer.sampling_rate, state.audio_limits,
                                                  limiter=state.work_threads)
            result = await run(lambda: recognizer.timeline(clip, recognizer.sampling_rate),
                               clip.size / recognizer.sampling_rate)
        except AudioError as exc:
            status = STATUS_OF_KIND.get(exc.kind, 400)
            return JSONResponse({"detail": f"cannot use the uploaded file {shown}: {exc.reason}"},
                                status_code=status)
        return JSONResponse({
            "duration": result.duration, "speech_seconds": result.speech_seconds,
            "segments": [StreamEvent("segment", s).payload() for s in result.segments]})

    @app.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        await serve_stream(ws, limits, allowed_origins, model_runner(ws.app.state))


__all__ = ["StreamLimits", "add_live_routes"]
