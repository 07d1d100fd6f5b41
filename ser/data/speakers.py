"""Who speaks in each clip of the Indonesian Kaggle data, exactly, from its file name.

The "Indonesian" training set is English acted speech relabelled (DESIGN.md §2):

* source 1 (``1_{id}_...``): line ``id + 1`` of CREMA-D's ``AudioWAV`` file list sorted bytewise
  (package data in ``ser/data/crema_d/``, with the actors' sex), whose names start with the
  actor id: ``1_04253_marah_sedang.wav`` is ``1053_IEO_ANG_MD.wav``, speaker ``crema-1053``;
* source 2 (``2_{id}_...``, ids from 7442): RAVDESS speech, 60 ids per actor, calm and surprised
  removed; odd actors are male: ``2_07910_...`` is speaker ``ravdess-08``.

A speaker-disjoint split needs these; the approximate id blocks used before are gone.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

CREMA_FILES = 7442  # names in CREMA-D's AudioWAV folder; source-1 ids are 0..7441
RAVDESS_FIRST_ID = 7442
RAVDESS_FILES_PER_ACTOR = 60
RAVDESS_ACTORS = 24


@dataclass(frozen=True)
class Speaker:
    """``speaker`` e.g. ``crema-1053`` or ``ravdess-08``; ``gender`` ``male``/``female``;
    ``corpus`` the original corpus (``crema-d`` or ``ravdess``)."""

    speaker: str
    gender: str
    corpus: str


@lru_cache(maxsize=1)
def crema_files() -> tuple[str, ...]:
    """CREMA-D's AudioWAV names, sorted bytewise: entry ``i`` is Kaggle source-1 id ``i``."""
    text = resources.files("ser.data").joinpath("crema_d/audio-wav-files.txt").read_text()
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != CREMA_FILES:
        raise RuntimeError(f"ser/data/crema_d/audio-wav-files.txt has {len(names)} names, "
                           f"expected {CREMA_FILES}: the package data is damaged")
    return names


@lru_cache(maxsize=1)
def crema_sex() -> dict[int, str]:
    """Actor id -> ``male``/``female`` from CREMA-D's VideoDemographics.csv."""
    text = resources.files("ser.data").joinpath("crema_d/VideoDemographics.csv").read_text()
    return {int(row["ActorID"]): row["Sex"].strip().lower()
            for row in csv.DictReader(text.splitlines())}


def ravdess_speaker(actor: int) -> Speaker:
    return Speaker(f"ravdess-{actor:02d}", "male" if actor % 2 else "female", "ravdess")


def kaggle_speaker(source: int | None, file_id: int | None) -> Speaker | None:
    """The speaker of a Kaggle training clip from the source and id of its name; None when the
    name carries no known source or the id is outside its corpus."""
    if source is None or file_id is None:
        return None
    if source == 1 and 0 <= file_id < CREMA_FILES:
        actor = int(crema_files()[file_id].split("_", 1)[0])
        return Speaker(f"crema-{actor}", crema_sex()[actor], "crema-d")
    if source == 2 and file_id >= RAVDESS_FIRST_ID:
        actor = (file_id - RAVDESS_FIRST_ID) // RAVDESS_FILES_PER_ACTOR + 1
        if actor <= RAVDESS_ACTORS:
            return ravdess_speaker(actor)
    return None
