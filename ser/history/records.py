"""One history record: what a request sent and what the server answered, and its JSON / CSV forms.

The record is built on the request path (cheap: an id, the time, the content hash) and written
later by :class:`ser.history.writer.HistoryWriter`; its id is known at once, so ``/predict`` can
answer it before the row exists.
"""

from __future__ import annotations

import csv
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from ser.labels import LABELS

if TYPE_CHECKING:  # importing ser.inference loads torch: `ser history` does not need it
    from ser.inference import Prediction

PROB_COLUMNS = tuple(f"p_{label}" for label in LABELS)
# /history.csv and `ser history --out x.csv`: one row per record, windows as a JSON string.
CSV_COLUMNS = ("id", "time", "file_name", "sha256", "size_bytes", "duration", "model_path",
               "model_sha256", "emotion", "confidence", *PROB_COLUMNS, "n_windows", "windows",
               "client", "storage_path")
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_MAX_NAME = 512
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _IdClock:
    """UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter, then random bits.

    Time-ordered, so sorting ids sorts records by time (the counter keeps ids made in the same
    millisecond by one process in order); random enough that servers sharing a database never
    make the same id.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def new_id(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._last_ms:
                self._last_ms, self._counter = ms, secrets.randbits(11)
            else:  # same millisecond (or the clock stepped back): count on from the last id
                self._counter += 1
                if self._counter >= 1 << 12:
                    self._last_ms, self._counter = self._last_ms + 1, 0
            ms, counter = self._last_ms, self._counter
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | secrets.randbits(62)
        digits = f"{value:032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


new_id = _IdClock().new_id


def clean_file_name(name: str | None) -> str | None:
    """The client's file name as data: control characters (NUL breaks PostgreSQL text) removed,
    at most 512 characters. Never used as a path."""
    if name is None:
        return None
    return "".join(ch for ch in name if ch.isprintable() or ch == " ")[:_MAX_NAME]


@dataclass(frozen=True)
class Record:
    """One answered request. ``storage_path`` is the audio's key under --keep-audio, or ""."""

    id: str
    created_at: datetime
    file_name: str | None
    sha256: str
    size_bytes: int
    duration: float | None
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    windows: list[dict[str, Any]] | None = None
    model_path: str | None = None
    model_sha256: str | None = None
    client: str | None = None
    storage_path: str = ""

    @classmethod
    def of_prediction(cls, prediction: Prediction, *, sha256: str, size_bytes: int,
                      file_name: str | None, client: str | None = None,
                      storage_path: str = "", model_path: str | None = None) -> Record:
        windows = [{"start": w.start, "end": w.end, "emotion": w.label,
                    "confidence": w.confidence, "probabilities": dict(w.probabilities)}
                   for w in prediction.windows] or None
        return cls(id=new_id(), created_at=datetime.now(timezone.utc),
                   file_name=clean_file_name(file_name), sha256=sha256, size_bytes=size_bytes,
                   duration=prediction.duration, emotion=prediction.label,
                   confidence=float(prediction.confidence),
                   probabilities={label: float(prediction.probabilities[label])
                                  for label in LABELS},
                   windows=windows, model_path=model_path, client=client,
                   storage_path=storage_path)

    # -- database rows ------------------------------------------------------------------------

    def to_row(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k != "probabilities"}
        row["storage_path"] = self.storage_path or None
        row.update({f"p_{label}": self.probabilities[label] for label in LABELS})
        return row

    @classmethod
    def from_row(cls, row: Any) -> Record:
        data = dict(row._mapping)
        created = data["created_at"]
        if created.tzinfo is None:  # SQLite keeps no zone; every time written is UTC
            created = created.replace(tzinfo=timezone.utc)
        return cls(id=data["id"], created_at=created, file_name=data["file_name"],
                   sha256=data["sha256"], size_bytes=int(data["size_bytes"]),
                   duration=data["duration"], emotion=data["emotion"],
                   confidence=data["confidence"],
                   probabilities={label: data[f"p_{label}"] for label in LABELS},
                   windows=data["windows"], model_path=data["model_path"],
                   model_sha256=data["model_sha256"], client=data["client"],
                   storage_path=data["storage_path"] or "")

    # -- what users see -----------------------------------------------------------------------

    @property
    def time(self) -> str:
        """ISO 8601 in UTC with a Z, to the microsecond."""
        return self.created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def to_json(self) -> dict[str, Any]:
        """The record as GET /history answers it (``client`` only when it was logged)."""
        body: dict[str, Any] = {
            "id": self.id, "file_id": self.id, "time": self.time, "file_name": self.file_name,
            "sha256": self.sha256, "size_bytes": self.size_bytes, "duration": self.duration,
            "model": {"path": self.model_path, "sha256": self.model_sha256},
            "emotion": self.emotion, "confidence": self.confidence,
            "probabilities": dict(self.probabilities), "storage_path": self.storage_path,
        }
        if self.windows:
            body["windows"] = self.windows
        if self.client is not None:
            body["client"] = self.client
        return body

    def to_csv_row(self) -> dict[str, Any]:
        """One row of :data:`CSV_COLUMNS`; text the client chose is kept from running as a
        spreadsheet formula (a leading ``'``)."""
        row = {"id": self.id, "time": self.time, "file_name": _no_formula(self.file_name),
               "sha256": self.sha256, "size_bytes": self.size_bytes, "duration": self.duration,
               "model_path": self.model_path, "model_sha256": self.model_sha256,
               "emotion": self.emotion, "confidence": self.confidence,
               "n_windows": len(self.windows or ()),
               "windows": json.dumps(self.windows) if self.windows else "",
               "client": _no_formula(self.client), "storage_path": self.storage_path}
        row.update({f"p_{label}": self.probabilities[label] for label in LABELS})
        return row


def _no_formula(value: str | None) -> str | None:
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value



def csv_writer(handle: IO[str]) -> csv.DictWriter:
    """A writer of :data:`CSV_COLUMNS` rows (``writer.writerow(record.to_csv_row())``), its
    header already written."""
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    return writer
