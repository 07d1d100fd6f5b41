"""Live recognition over a WebSocket: one ``/stream`` session, from the handshake to the close
(the route itself is added by :mod:`ser.serve.live`).

The ``/stream`` protocol
------------------------
Connect to ``ws://HOST:PORT/stream`` (``?rate=48000`` when the audio is not at 16 kHz: any rate
from 8,000 to 192,000 Hz is resampled to 16 kHz on the server). The server answers
``{"type": "ready", "rate", "limits": {...}}``. Then:

* client -> server, binary messages: mono PCM, signed 16-bit little-endian (``s16le``), at the
  declared rate, any number of samples per message up to ``max_frame_seconds`` (100 ms chunks
  are typical). A text message ``{"type": "stop"}`` ends the stream: the open segment is scored.
* server -> client, text messages (JSON), one per event:
  ``{"type": "segment", "start", "end", "emotion", "confidence", "probabilities"}`` for each
  finished speech segment (seconds from the start of the stream), ``{"type": "partial", ...}``
  (same fields) for the segment still open, every ``partial_hop`` seconds, and after a stop
  ``{"type": "end", "seconds"}``, then the server closes (1000).
* errors: ``{"type": "error", "detail": str}``, then the server closes with 1008 (a limit or a
  bad message), 1009 (a frame too large) or 1013 (too many streams; retry later).

Bounds, each with its own message: ``max_streams`` concurrent streams, ``max_session_seconds``
of audio per stream (and that plus 60 s of wall-clock time), ``max_buffer_seconds`` of audio
received and not yet analysed (a client sending faster than the server keeps up),
``idle_timeout`` seconds without a message, and ``max_frame_seconds`` of audio per message. Partial updates are skipped while a stream is
behind, so the final events keep their latency under load.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import numpy as np
from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from ser.inference.live import LiveSession, StreamEvent

# The name its log lines had before the module moved into ser/serve/.
log = logging.getLogger("ser.serve_live")

MIN_RATE, MAX_RATE = 8_000, 192_000


@dataclass(frozen=True)
class StreamLimits:
    """Bounds of ``/stream`` (seconds of audio unless said otherwise)."""

    max_streams: int = 4
    max_session_seconds: float = 1800.0
    max_buffer_seconds: float = 10.0
    idle_timeout: float = 10.0          # wall-clock seconds without a message
    max_frame_seconds: float = 1.0
    partial_hop: float | None = 1.0

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        for name in ("max_session_seconds", "max_buffer_seconds", "idle_timeout",
                     "max_frame_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")


class _Refused(Exception):
    def __init__(self, detail: str, code: int = 1008) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


async def _refuse(ws: WebSocket, detail: str, code: int) -> None:
    log.info("stream refused: %s", detail)
    try:
        await ws.send_text(json.dumps({"type": "error", "detail": detail}))
        await ws.close(code=code)
    except Exception:  # noqa: BLE001 - the client may already be gone
        pass


def _origin_allowed(ws: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin: accept the page's own host and the configured CORS origins
    (a page elsewhere must not stream through a user's local server); other clients send none."""
    origin = ws.headers.get("origin")
    if origin is None or origin in allowed:
        return True
    return urlsplit(origin).netloc == ws.headers.get("host")


def _parse_rate(ws: WebSocket) -> int:
    text = ws.query_params.get("rate", "16000")
    try:
        rate = int(float(text))
    except ValueError:
        raise _Refused(f"rate must be a number of Hz, got {text!r}") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise _Refused(f"rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    return rate


async def serve_stream(ws: WebSocket, limits: StreamLimits, allowed_origins: tuple[str, ...],
                       run: Any) -> None:
    """One ``/stream`` session; ``run`` runs the model off the event loop (``await run(fn,
    seconds)``, :func:`ser.serve.live.model_runner`)."""
    state = ws.app.state
    await ws.accept()
    if not _origin_allowed(ws, allowed_origins):
        await _refuse(ws, f"origin {ws.headers.get('origin')!r} may not use this server", 1008)
        return
    if state.live_streams >= limits.max_streams:
        await _refuse(ws, f"server busy: {limits.max_streams} streams already open; retry "
                          "later", 1013)
        return
    state.live_streams += 1
    try:
        try:
            rate = _parse_rate(ws)
        except _Refused as exc:
            await _refuse(ws, exc.detail, exc.code)
            return
        session = await anyio.to_thread.run_sync(
            lambda: LiveSession(state.recognizer, sampling_rate=rate,
                                partial_hop=limits.partial_hop))
        await ws.send_text(json.dumps({"type": "ready", "rate": rate, "format": "s16le",
                                       "limits": asdict(limits)}))
        await _Pump(ws, session, rate, limits, run).run()
    finally:
        state.live_streams -= 1


class _Pump:
    """Receives audio into a bounded queue while a worker analyses it and sends the events."""

    def __init__(self, ws: WebSocket, session: LiveSession, rate: int, limits: StreamLimits,
                 run: Any) -> None:
        self.ws, self.session, self.rate, self.limits, self.infer = (
            ws, session, rate, limits, run)
        self.queue: deque[np.ndarray] = deque()
        self.queued = 0        # samples received and not yet analysed
        self.received = 0      # samples received in all
        self.stopped = False
        self.wake = anyio.Event()
        self.error: _Refused | None = None
        self.gone = False

    async def run(self) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._work, group.cancel_scope)
            try:
                await self._receive()
            except _Refused as exc:
                self.error = exc
                group.cancel_scope.cancel()
            except WebSocketDisconnect:
                self.gone = True
                group.cancel_scope.cancel()
        if self.error is not None and not self.gone:
            await _refuse(self.ws, self.error.detail, self.error.code)

    async def _receive(self) -> None:
        max_frame = int(self.limits.max_frame_seconds * self.rate) * 2
        # A client trickling audio slower than real time must not hold a slot for ever.
        deadline = anyio.current_time() + self.limits.max_session_seconds + 60
        while not self.stopped:
            if anyio.current_time() > deadline:
                raise _Refused(f"stream open longer than {self.limits.max_session_seconds:g} s "
                               "(+60 s) of wall-clock time; start a new one")
            try:
                with anyio.fail_after(self.limits.idle_timeout):
                    message = await self.ws.receive()
            except TimeoutError:
                raise _Refused(f"no audio for {self.limits.idle_timeout:g} s: stream closed "
                               "(send audio continuously, or {\"type\": \"stop\"} to end)")
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                self._take(message["bytes"], max_frame)
            elif message.get("text") is not None:
                self._command(message["text"])

    def _take(self, data: bytes, max_frame: int) -> None:
        if len(data) > max_frame:
            raise _Refused(f"frame of {len(data)} bytes is larger than "
                           f"{self.limits.max_frame_seconds:g} s of audio ({max_frame} bytes of "
                           f"s16le at {self.rate} Hz); send smaller chunks", 1009)
        if len(data) % 2:
            raise _Refused(f"frame of {len(data)} bytes is not 16-bit PCM (odd length)")
        samples = np.frombuffer(data, dtype="<i2")
        self.received += samples.size
        if self.received > self.limits.max_session_seconds * self.rate:
            raise _Refused(f"stream longer than the limit of {self.limits.max_session_seconds:g}"
                           " s of audio; start a new one")
        self.queued += samples.size
        if self.queued > self.limits.max_buffer_seconds * self.rate:
            raise _Refused(f"more than {self.limits.max_buffer_seconds:g} s of audio waiting "
                           "to be analysed: send audio in real time, not faster")
        self.queue.append(samples)
        self.wake.set()

    def _command(self, text: str) -> None:
        try:
            command = json.loads(text)
        except json.JSONDecodeError:
            command = None
        if not isinstance(command, dict) or command.get("type") != "stop":
            raise _Refused(f"unknown text message {text[:60]!r}: audio goes in binary "
                           "messages; the only command is {\"type\": \"stop\"}")
        self.stopped = True
        self.wake.set()

    async def _work(self, scope: anyio.CancelScope) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake = anyio.Event()
                while self.queue:
                    chunk = np.concatenate(list(self.queue))
                    self.queue.clear()
                    self.queued = 0
                    keeping_up = chunk.size <= 0.5 * self.rate
                    events = await self.infer(
                        lambda: self.session.feed(chunk, keeping_up=keeping_up),
                        chunk.size / self.rate)
                    await self._send(events)
                if self.stopped:
                    events = await self.infer(self.session.finish, 0.0)
                    await self._send(events)
                    await self.ws.send_text(json.dumps({"type": "end",
                                                        "seconds": self.session.seconds}))
                    await self.ws.close(code=1000)
                    return
        except Exception as exc:  # noqa: BLE001 - a client gone mid-send, or a server fault
            if not isinstance(exc, (WebSocketDisconnect, RuntimeError)):
                log.exception("stream failed")
                self.error = _Refused(f"internal server error ({type(exc).__name__}); see the "
                                      "server log", 1011)
            else:
                self.gone = True
            scope.cancel()

    async def _send(self, events: list[StreamEvent]) -> None:
        for event in events:
            await self.ws.send_text(json.dumps(event.payload()))


__all__ = ["MAX_RATE", "MIN_RATE", "StreamLimits", "serve_stream"]
