"""``POST /predict``: one uploaded recording to its answer, and the steps ``/timeline`` shares.

The header is read and checked against the limits before anything is decoded; the upload then
waits for a decode slot (cheapest first), is decoded in a worker thread, and the model runs one
window per pass under the model gate. Anything the client's bytes make a reader raise is the
client's fault (4xx naming the file, :data:`STATUS_OF_KIND`), never a 500. The client's file
name is only ever shown, quoted, in messages (:func:`shown_name`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import anyio
import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse

from ser.audio import AudioError, AudioInfo, AudioLimits, audio_info, load_audio
from ser.inference import EmotionRecognizer, Prediction
from ser.serve.api import ERROR_RESPONSES, PredictionBody, prediction_payload

# The package's logger: log lines name ser.serve, as before the package was split.
log = logging.getLogger(__package__)

# AudioError kinds by status: not audio (or not a rate we take) 415, beyond a size bound 413;
# the rest are broken audio (400).
STATUS_OF_KIND = {"not_audio": 415, "bad_rate": 415, "too_long": 413, "too_many_channels": 413}


def add_predict_route(app: FastAPI, limits: AudioLimits) -> None:
    """``POST /predict`` on ``app``; its state is filled by the lifespan
    (:func:`ser.serve.create_app`)."""

    @app.post("/predict", response_model=PredictionBody, responses=ERROR_RESPONSES,
              summary="The emotion of one recording")
    async def predict(request: Request, file: UploadFile = File(
            ..., description="the recording: wav, flac, ogg or mp3")) -> JSONResponse:
        state = request.app.state
        shown = shown_name(file.filename)
        refusal: JSONResponse | None = None
        try:
            if file.size == 0:
                raise AudioError(shown, "empty file (0 bytes): nothing to analyse", "empty")
            info = await anyio.to_thread.run_sync(read_header, file.file, shown, limits,
                                                  limiter=state.header_limiter)
            arrived = time.monotonic()  # its rank in both gates ages from here
            async with state.slots.hold(info.duration, arrived=arrived):
                recognizer: EmotionRecognizer = state.recognizer
                clip = await anyio.to_thread.run_sync(decode_upload, file.file, shown,
                                                      recognizer.sampling_rate, limits,
                                                      limiter=state.work_threads)
                gate = functools.partial(state.model_gate.hold, info.duration, arrived=arrived)
                prediction = await anyio.to_thread.run_sync(infer, recognizer, clip, gate,
                                                            limiter=state.work_threads)
                if info.warning:  # a cut file: the answer covers the part that is there
                    prediction = dataclasses.replace(prediction, warning=info.warning)
                # The history keeps the upload's hash (and, with --keep-audio, its bytes): read
                # back from the spool, at most max_upload_mb, only when a store is on.
                data = (await anyio.to_thread.run_sync(read_all, file.file,
                                                       limiter=state.work_threads)
                        if state.history.enabled else b"")
        except AudioError as exc:
            log.info("rejected upload %s: %s", shown, exc.reason)
            refusal = JSONResponse({"detail": f"cannot use the uploaded file {shown}: "
                                              f"{exc.reason}"},
                                   status_code=STATUS_OF_KIND.get(exc.kind, 400))
        finally:
            await file.close()
        if refusal is not None:  # held back: see ser.serve.schedule.DEFAULT_REFUSAL_DELAY
            await anyio.sleep(getattr(state, "refusal_delay", 0.0))
            return refusal
        body = prediction_payload(prediction)
        body.update(await state.history.record(data, file.filename, prediction,
                                               request.client.host if request.client else None))
        return JSONResponse(body)


def shown_name(filename: str | None) -> str:
    """The client's file name for messages only: quoted, control characters out, bounded."""
    name = "".join(ch for ch in (filename or "upload") if ch.isprintable())[:80]
    return repr(name or "upload")


def read_all(file: BinaryIO) -> bytes:
    file.seek(0)
    return file.read()


def read_header(file: BinaryIO, shown: str, limits: AudioLimits) -> AudioInfo:
    """The upload's header, checked against ``limits`` before anything is decoded."""
    info = client_fault(audio_info, file, name=shown)
    limits.check(info)
    return info


def decode_upload(file: BinaryIO, shown: str, rate: int, limits: AudioLimits) -> np.ndarray:
    return client_fault(load_audio, file, target_sr=rate, name=shown, limits=limits)


def client_fault(read: Callable[..., Any], file: BinaryIO, *, name: str, **kwargs: Any) -> Any:
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


def infer(recognizer: EmotionRecognizer, clip: np.ndarray,
           gate: Callable[[], Any]) -> Prediction:
    # One window per forward pass, so that a long upload yields the model between windows
    # (on the CPU, batching windows gains ~5%).
    return recognizer.predict(clip, sampling_rate=recognizer.sampling_rate, batch_size=1,
                              gate=gate)
