"""The metadata a Kaggle training file's name carries: ``{source}_{id5}_{emotion}_{intensity}.wav``
(e.g. ``2_07910_jijik_tinggi.wav``), and the exact speaker it gives (:mod:`ser.data.speakers`).

The CSV label stays the truth; the name is parsed for speakers and reports. A name that does not
parse is allowed: its metadata is None and its speaker unknown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ser.data.speakers import Speaker, kaggle_speaker
from ser.labels import KAGGLE_INTENSITIES

_NAME_RE = re.compile(
    r"^(?P<source>\d+)_(?P<file_id>\d+)_(?P<emotion>[a-z]+)_"
    r"(?P<intensity>" + "|".join(KAGGLE_INTENSITIES) + r")\.wav$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class KaggleName:
    """Metadata carried by a training file name; the CSV label stays the truth."""

    source: int
    file_id: int
    emotion: str
    intensity: str

    @property
    def speaker(self) -> Speaker | None:
        """The exact speaker (CREMA-D or RAVDESS actor); None when the id fits neither."""
        return kaggle_speaker(self.source, self.file_id)


def parse_kaggle_name(name: str) -> KaggleName | None:
    """Parse ``{source}_{id5}_{emotion}_{intensity}.wav`` (name or path); None if it doesn't fit."""
    match = _NAME_RE.match(os.path.basename(str(name)))
    if match is None:
        return None
    return KaggleName(
        source=int(match["source"]),
        file_id=int(match["file_id"]),
        emotion=match["emotion"].lower(),
        intensity=match["intensity"].lower(),
    )


def speaker_of(name: KaggleName | None) -> Speaker | None:
    """Speaker of a row from its parsed name; None when the name does not parse or fit."""
    return name.speaker if name is not None else None
