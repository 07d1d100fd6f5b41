"""Connection and request guards for ``ser serve``: what a hostile client may cost the server.

* :class:`Admission` counts requests in progress; :class:`RequestGuard` refuses one past
  ``max_pending`` with 503 **before reading its body**, so a crowd of uploads cannot pile up
  bodies in memory. It also answers 413 for a body past the byte limit (declared or streamed,
  counted as it arrives, never buffered here) and 408 for a body that does not arrive within
  ``body_timeout`` seconds.
* :func:`h11_protocol` is uvicorn's h11 protocol with a **header timeout**: a connection that
  opens and sends nothing, or stops in the middle of its request line or headers, is closed
  after ``header_timeout`` seconds (uvicorn's own keep-alive timeout only covers the time
  between requests, and stops counting at the first byte of the next one).

The body itself is parsed by Starlette's multipart parser into a spooled temporary file (1 MB
in memory, the rest on disk), so a request in progress holds about 1 MB, whatever its size.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A client that keeps sending past the limit is read (and dropped) this far, so that it gets to
# read the 413, then cut.
_DRAIN_FACTOR = 4
_CLOSE = {"connection": "close"}


class Admission:
    """Requests in progress on the guarded paths, refused past ``limit``."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the pending-request limit must be at least 1, got {limit}")
        self.limit = limit
        self.pending = 0

    def try_enter(self) -> bool:
        if self.pending >= self.limit:
            return False
        self.pending += 1
        return True

    def leave(self) -> None:
        self.pending -= 1


class RequestGuard:
    """ASGI middleware: admission (503), byte limit (413) and body timeout (408) on POSTs to
    ``paths``; every refusal is ``{"detail": str}`` and closes the connection."""

    def __init__(self, app: ASGIApp, *, admission: Admission, limit: int, too_large: str,
                 body_timeout: float, paths: Sequence[str] = ("/predict",)) -> None:
        self.app = app
        self.admission = admission
        self.limit = limit
        self.too_large = too_large
        self.body_timeout = body_timeout
        self.paths = tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if not self.admission.try_enter():
            await _reply(send, 503, f"server busy: {self.admission.limit} requests already in "
                                    "progress; retry shortly", {"retry-after": "1"})
            return
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.admission.leave()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = anyio.current_time() + self.body_timeout
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _drain(receive, self.limit * _DRAIN_FACTOR, deadline)
            await _reply(send, 413, self.too_large)
            return
        seen = 0
        done = False

        async def guarded_receive() -> Message:
            nonlocal seen, done
            if done:  # the body is in; what follows is the wait for a disconnect
                return await receive()
            message = await _receive_by(receive, deadline, self.body_timeout)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                more = message.get("more_body", False)
                if seen > self.limit:
                    if more:
                        await _drain(receive, self.limit * _DRAIN_FACTOR - seen, deadline)
                    # Raised inside the app's body parsing: FastAPI re-raises HTTPExceptions,
                    # and the app's handler turns it into the JSON answer.
                    raise HTTPException(413, self.too_large, headers=_CLOSE)
                done = not more
            return message

        await self.app(scope, guarded_receive, send)


async def _receive_by(receive: Receive, deadline: float, timeout: float) -> Message:
    try:
        with anyio.fail_after(max(deadline - anyio.current_time(), 0.0)):
            return await receive()
    except TimeoutError:
        raise HTTPException(408, f"request body not received within {timeout:g} s; send the "
                                 "upload in one go", headers=_CLOSE) from None


async def _drain(receive: Receive, budget: int, deadline: float) -> None:
    """Read and drop up to ``budget`` more body bytes (until the deadline)."""
    with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return


async def _reply(send: Send, status: int, detail: str,
                 headers: dict[str, str] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"),
           (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def h11_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class, closing connections whose request line and headers do not
    arrive within ``header_timeout`` seconds (counted from the connection, or from the first
    byte of each later request on a kept-alive connection). Pass it as ``Config(http=...)``."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the headers are in: the body has its own timeout
            elif self._header_timer is None and self.timeout_keep_alive_task is None:
                self._arm()  # the first bytes of a request on a kept-alive connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout, self._header_expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_expired(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.logger.info("closing a connection that sent no complete request headers "
                                 "within %g s", header_timeout)
                self.transport.close()

    return HeaderTimeoutH11Protocol


__all__ = ["Admission", "RequestGuard", "h11_protocol"]
