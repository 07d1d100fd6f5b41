"""HTTP routes of the history: ``GET /history``, ``GET /history/{id}``, ``DELETE /history/{id}``,
``GET /history.csv``, and the page's script ``GET /static/history.js``.

Every read first waits (briefly) for this server's own queued records, so a client that just got
an answer from ``/predict`` finds its record. With ``--store none`` they answer 404 with a detail;
while the store is down, 503 with the reason. Database calls run on worker threads.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ser.history.records import ID_PATTERN, csv_writer
from ser.history.service import READ_FLUSH_S, History, HistoryUnavailable
from ser.history.store import HistoryStore
from ser.history.writer import describe_error
from ser.serve.api import ErrorBody

# What every history route may answer besides 200 (all {"detail": str}), for /openapi.json.
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "history is off (--store none), or no record "
                                             "with that id"},
    422: {"model": ErrorBody, "description": "a query parameter out of range"},
    503: {"model": ErrorBody, "description": "the history store is unavailable"},
}

log = logging.getLogger(__name__)

router = APIRouter()
T = TypeVar("T")

_OFF = "history is off: the server was started with --store none"
_ID = re.compile(ID_PATTERN)


def _history(request: Request) -> History:
    history = getattr(request.app.state, "history", None)
    if history is None or not history.enabled:
        raise HTTPException(404, _OFF)
    return history


def _check_id(record_id: str) -> None:
    if not _ID.match(record_id):
        raise HTTPException(404, f"no prediction with id {record_id[:80]!r}: history ids are "
                                 "the UUIDs that /predict answers as 'id'")


async def _with_store(history: History, work: Callable[[HistoryStore], T]) -> T:
    """Run ``work(store)`` on a worker thread after this server's queued writes; 503 if the
    store fails."""

    def call() -> T:
        history.flush(READ_FLUSH_S)
        return work(history.store())

    try:
        return await anyio.to_thread.run_sync(call)
    except HistoryUnavailable as exc:
        raise HTTPException(404, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the store, not the request, failed
        reason = describe_error(exc)
        log.warning("history: read failed: %s", reason)
        raise HTTPException(503, f"history store unavailable ({history.shown}): {reason}") \
            from None


@router.get("/history", responses=RESPONSES)
async def list_history(
    request: Request,
    limit: int = Query(50, ge=1, le=500, description="records per page (1-500)"),
    before: str | None = Query(None, pattern=ID_PATTERN,
                               description="only records older than this id (next page)"),
) -> dict[str, Any]:
    """The newest records first; ``next_before`` is the ``before`` of the next page (null on
    the last one)."""
    records = await _with_store(_history(request), lambda s: s.page(limit, before))
    return {"items": [r.to_json() for r in records],
            "next_before": records[-1].id if len(records) == limit else None}


@router.get("/history.csv", responses=RESPONSES)
async def history_csv(
    request: Request,
    limit: int | None = Query(None, ge=1, description="only the newest N records"),
) -> StreamingResponse:
    """Every record (or the newest ``limit``), newest first, as CSV (columns: CSV_COLUMNS)."""
    store = await _with_store(_history(request), lambda s: s)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        for i, record in enumerate(store.iter_all(limit), 1):
            writer.writerow(record.to_csv_row())
            if i % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="history.csv"'})


RECORD_PATH = "/history/{record_id}"


@router.get(RECORD_PATH, responses=RESPONSES, summary="One recorded prediction")
async def history_record(request: Request, record_id: str) -> JSONResponse:
    history = _history(request)
    _check_id(record_id)
    record = await _with_store(history, lambda s: s.get(record_id))
    if record is None:
        raise HTTPException(404, f"no prediction with id {record_id} in the history")
    return JSONResponse(record.to_json())


@router.delete(RECORD_PATH, responses=RESPONSES,
               summary="Delete a recorded prediction and, unless shared, its kept audio")
async def delete_history_record(request: Request, record_id: str) -> JSONResponse:
    """Delete the record and, unless another record has the same audio, its kept audio file."""
    history = _history(request)
    _check_id(record_id)
    remove = history.archive.remove if history.archive is not None else None
    deleted = await _with_store(history, lambda s: s.delete(record_id, remove_audio=remove))
    if deleted is None:
        raise HTTPException(404, f"no prediction with id {record_id} in the history")
    key = deleted.record.storage_path
    log.info("history: deleted %s%s", record_id,
             f" and its audio {key}" if deleted.audio_removed else "")
    return JSONResponse({"deleted": record_id, "storage_path": key,
                         "audio_removed": deleted.audio_removed})


@router.api_route(RECORD_PATH, methods=["POST", "PUT", "PATCH", "OPTIONS", "TRACE"],
                  include_in_schema=False)
async def history_record_other_methods() -> JSONResponse:
    """405 naming every method the path allows: the GET and DELETE routes are separate (one
    route for both gave /openapi.json two operations with one operationId), and each alone
    would list only its own."""
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405,
                        headers={"Allow": "GET, HEAD, DELETE"})


@router.get("/static/history.js", include_in_schema=False)
async def history_script() -> Response:
    script = resources.files("ser").joinpath("static/history.js").read_text(encoding="utf-8")
    return Response(script, media_type="text/javascript; charset=utf-8")
