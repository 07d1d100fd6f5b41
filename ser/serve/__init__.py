"""HTTP serving: the recognizer behind ``POST /predict``, for the original project's web front end.

    from ser.serve import create_app, run_server
    app = create_app("outputs/run/model")          # or an EmotionRecognizer already built
    run_server("outputs/run/model", host="127.0.0.1", port=8000)

Why it is built this way:

* The model is loaded once, in the app's lifespan, so the server accepts requests only when it
  can answer them; ``run_server`` logs ``ready`` at that moment (scripts and tests wait on it).
* What a client may cost is bounded before it is spent (:mod:`ser.serve.guard`): more than
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
  cheapest upload first (:mod:`ser.serve.schedule`): at most ``decode_workers`` uploads are
  decoded and held at once (default 2, or one per forward pass where more run at once; a long
  one never takes the last slot), and the model runs ``max_concurrency`` forward passes at a
  time (default: 1 with PyTorch, which uses every core for one; one per core with the ONNX
  runtime, which runs each on one core), taken once per window of a long recording, so a short
  upload does not wait for a long one to finish. Cheapest first is bounded by ``ageing`` (audio
  seconds of priority an upload gains per second it waits, default 10): a long upload is
  overtaken by later short ones for at most its length / ``ageing`` seconds (a 10-minute one
  for about a minute), never forever.
* Every error is ``{"detail": str}`` with a status saying what is wrong: 413 too large (bytes,
  length or channels), 415 not audio or an unaccepted sample rate, 400 empty / corrupt / too
  short, 422 a request without a ``file`` field, 408 a body too slow, 503 busy. ``/openapi.json``
  lists each of them and the 200 body's schema.
* Each answer is recorded by :mod:`ser.history` (``history=``) on a thread of its own: the
  answer never waits for the database, and a failing database is a warning, not an error.

Where each part lives: ``app`` (:func:`create_app`), ``uploads`` (``POST /predict``), ``runner``
(:func:`run_server`, :func:`make_server`, :class:`ServerThread`), ``api`` (the answers' schema,
:func:`prediction_payload`), ``guard`` (what a client may cost), ``schedule`` (cheapest upload
first), ``live`` (``/stream``, ``/timeline``, the page's files).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ser.serve.api import prediction_payload
    from ser.serve.app import DEFAULT_CORS_ORIGINS, cors_origins_with, create_app
    from ser.serve.runner import ServerThread, bound_port, make_server, run_server

# The public names and the module that holds each. They are imported on first use, so that
# importing a part (the CLI's parser reads ser.serve.schedule) does not load FastAPI and the
# model code: ``ser predict`` and ``ser --help`` work without the serve extra.
_EXPORTS = {
    "DEFAULT_CORS_ORIGINS": "ser.serve.app",
    "ServerThread": "ser.serve.runner",
    "bound_port": "ser.serve.runner",
    "cors_origins_with": "ser.serve.app",
    "create_app": "ser.serve.app",
    "make_server": "ser.serve.runner",
    "prediction_payload": "ser.serve.api",
    "run_server": "ser.serve.runner",
}

__all__ = ["DEFAULT_CORS_ORIGINS", "ServerThread", "bound_port", "cors_origins_with", "create_app",
           "make_server", "prediction_payload", "run_server"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
