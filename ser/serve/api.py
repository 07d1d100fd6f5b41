"""The shapes of ``ser serve``'s answers, for ``/openapi.json``: a client generated from the
schema gets the 200 body's fields and, for every refusal, ``{"detail": str}``.

The server builds its JSON with :func:`prediction_payload` (below); these models describe it
(``tests/test_serve_openapi.py`` checks the two agree, with schemathesis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ser.labels import LABELS

if TYPE_CHECKING:
    from ser.inference import Prediction

Label = Literal[LABELS]  # type: ignore[valid-type]
Probability = Field(ge=0.0, le=1.0)


class WindowBody(BaseModel):
    """One window of a long recording."""

    start: float = Field(ge=0.0, description="seconds from the start of the recording")
    end: float = Field(ge=0.0, description="seconds from the start of the recording")
    emotion: Label
    confidence: float = Probability
    probabilities: dict[Label, float]  # type: ignore[valid-type]


class PredictionBody(BaseModel):
    """The emotion of a recording: the top label, its probability, and all six."""

    emotion: Label = Field(description="the most probable of the six labels")
    confidence: float = Field(ge=0.0, le=1.0, description="the probability of `emotion`")
    probabilities: dict[Label, float] = Field(  # type: ignore[valid-type]
        description="the probability of each of the six labels, in the model's order")
    duration: float | None = Field(default=None, ge=0.0,
                                   description="the recording's length in seconds")
    warning: str | None = Field(
        default=None, description="present when the file holds less than a whole recording "
                                  "(cut short of what its header declares): the answer covers "
                                  "the part that is there")
    windows: list[WindowBody] | None = Field(
        default=None, description="present for recordings long enough to be cut into "
                                  "windows; the top-level figures are then their mean")
    id: str | None = Field(default=None, description="the history record of this answer "
                                                     "(GET /history/{id}); null with --store none")
    file_id: str | None = Field(default=None, description="the same as `id` (the original "
                                                          "backend's name)")
    storage_path: str = Field(default="", description="the key of the kept audio "
                                                      "(--keep-audio), else empty")


class PingBody(BaseModel):
    status: Literal["ok"]


class ErrorBody(BaseModel):
    """Every refusal: one sentence saying what is wrong."""

    detail: str = Field(description="what is wrong with the request, in plain words")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("empty, truncated or corrupt audio, or a clip too short for the model"),
    408: _error("the request body did not arrive within the server's body timeout"),
    413: _error("the upload is larger than the byte limit, or its audio is longer or has "
                "more channels than the server accepts"),
    415: _error("not an audio file (wav, flac, ogg, mp3), or a sample rate outside the "
                "accepted range"),
    422: _error("no multipart/form-data field 'file', or it is not a file"),
    500: _error("a fault of the server (logged with its traceback)"),
    503: _error("the server is busy (too many requests in progress); retry shortly"),
}

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


__all__ = ["ERROR_RESPONSES", "ErrorBody", "PingBody", "PredictionBody", "WindowBody",
           "prediction_payload"]
