"""RAVDESS speech: index of ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` files with their metadata.

Everything comes from the file name (DESIGN.md §2): modality, vocal channel (01 speech, 02 song),
emotion, intensity, statement, repetition, actor (odd = male). Only speech is evaluated; song files
are counted and skipped, and files whose names do not parse are listed and skipped, so a stray file
never stops an evaluation and never goes unnoticed. Emotions map onto the six classes through
:data:`ser.labels.RAVDESS_EMOTIONS`; calm and surprised keep ``label=None``.
"""

from __future__ import annotations

import logging
import numbers
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ser.data.speakers import ravdess_speaker
from ser.labels import RAVDESS_EMOTIONS

log = logging.getLogger(__name__)

DEFAULT_ACTORS: tuple[int, ...] = (1, 2, 8, 11, 15, 22)
SPEECH, SONG = 1, 2
INTENSITIES: dict[int, str] = {1: "normal", 2: "strong"}
STATEMENTS: dict[int, str] = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
COLUMNS: tuple[str, ...] = (
    "path", "actor", "gender", "emotion", "label", "intensity", "statement", "repetition",
    "speaker", "statement_text",
)

_NAME_RE = re.compile(r"^" + "-".join([r"(\d{2})"] * 7) + r"\.wav$", re.IGNORECASE)
_ACTOR_DIR_RE = re.compile(r"^Actor_(\d+)$", re.IGNORECASE)

_GET_HELP = (
    "Expected: a folder holding Actor_01 ... Actor_24 sub-folders of "
    "03-01-EE-II-SS-RR-AA.wav files (or its parent, e.g. the folder you unzipped "
    "Audio_Speech_Actors_01-24.zip into). Get RAVDESS from https://zenodo.org/records/1188976 "
    "(Audio_Speech_Actors_01-24.zip). For an offline try-out, `ser synth DIR` writes a synthetic "
    "corpus in this layout."
)


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name."""

    modality: int
    vocal_channel: int
    emotion_code: int
    intensity_code: int
    statement: int
    repetition: int
    actor: int

    @property
    def emotion(self) -> str:
        return RAVDESS_EMOTIONS[self.emotion_code][0]

    @property
    def label(self) -> str | None:
        """One of the six classes, or None for calm and surprised."""
        return RAVDESS_EMOTIONS[self.emotion_code][1]

    @property
    def intensity(self) -> str:
        return INTENSITIES[self.intensity_code]

    @property
    def gender(self) -> str:
        return "male" if self.actor % 2 else "female"

    @property
    def is_speech(self) -> bool:
        return self.vocal_channel == SPEECH

    @property
    def statement_text(self) -> str:
        return STATEMENTS[self.statement]


@dataclass
class RavdessIndex:
    """The speech files of the selected actors, and what was left out and why."""

    frame: pd.DataFrame
    skipped_song: int = 0
    skipped_unparsed: list[str] = field(default_factory=list)
    root: Path | None = None  # the folder whose Actor_XX sub-folders were read (first, if several)
    actors: tuple[int, ...] = ()  # the actors asked for
    warnings: list[str] = field(default_factory=list)  # oddities that did not stop loading


def parse_ravdess_name(name: str) -> RavdessName | None:
    """Parse ``03-01-EE-II-SS-RR-AA.wav`` (name or path); None if any field is out of range."""
    match = _NAME_RE.match(os.path.basename(str(name)))
    if match is None:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, match.groups())
    if (modality not in (1, 2, 3) or channel not in (SPEECH, SONG)
            or emotion not in RAVDESS_EMOTIONS or intensity not in INTENSITIES
            or statement not in STATEMENTS
            or repetition not in (1, 2) or actor < 1):
        return None
    return RavdessName(modality, channel, emotion, intensity, statement, repetition, actor)


def resolve_actors(actors: str | int | Iterable[int | str] | None) -> tuple[int, ...] | None:
    """``"default"`` -> :data:`DEFAULT_ACTORS`, ``"all"``/None -> None (every actor), else the ids.

    Accepts a list of ints or digit strings (Hydra lists included) and "1,2,8" strings.
    """
    if actors is None:
        return None
    if isinstance(actors, str):
        word = actors.strip().lower()
        if word == "default":
            return DEFAULT_ACTORS
        if word == "all":
            return None
        items: Iterable[int | str] = [a for a in word.strip("[]").split(",") if a.strip()]
    elif isinstance(actors, numbers.Integral):
        items = [int(actors)]
    else:
        items = list(actors)
        if len(items) == 1 and isinstance(items[0], str) and not items[0].strip().isdigit():
            return resolve_actors(items[0])  # ["all"], ["default"], or an error naming it
    out: list[int] = []
    for item in items:
        try:
            number = int(str(item).strip())
        except ValueError:
            raise ValueError(
                f"actors must be 'default', 'all' or a list of actor numbers, got {actors!r}"
            ) from None
        if number < 1:
            raise ValueError(f"actor numbers start at 1, got {number} in {actors!r}")
        out.append(number)
    if not out:
        raise ValueError(f"actors is empty ({actors!r}); use 'default', 'all' or actor numbers")
    return tuple(sorted(set(out)))


def find_actor_dirs(root: str | os.PathLike) -> list[Path]:
    """Actor_XX folders in ``root``, or else in its sub-folders one level down; sorted.

    Raises FileNotFoundError (saying what was expected and where to get RAVDESS) when none.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"RAVDESS root {path} {'is not a folder' if path.exists() else 'does not exist'}. "
            f"{_GET_HELP}")
    dirs = _actor_dirs_in(path)
    if not dirs:
        for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            dirs.extend(_actor_dirs_in(child))
    if not dirs:
        raise FileNotFoundError(f"no Actor_XX folders in {path} or its sub-folders. {_GET_HELP}")
    return dirs


def _actor_dirs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _ACTOR_DIR_RE.match(p.name))


def load_ravdess(
    root: str | os.PathLike,
    actors: str | int | Iterable[int | str] | None = "default",
) -> RavdessIndex:
    """Index the speech files of ``actors`` under ``root``, sorted by actor then file name.

    ``root`` is the folder holding the Actor_XX folders, or a parent of it one level up (e.g. the
    folder into which ``Audio_Speech_Actors_01-24.zip`` was unzipped; if several sub-folders hold
    Actor_XX folders, all are read). The actor is taken from the file name, which is the truth in
    RAVDESS; a file in another actor's folder is kept and warned about. ``skipped_song`` counts
    the song files of the selected actors; ``skipped_unparsed`` lists every file whose name does
    not parse, in any actor folder (its actor is unknown). Raises FileNotFoundError when there is
    no Actor_XX folder or no speech file, ValueError when none of the asked actors is present.
    """
    selected = resolve_actors(actors)
    dirs = find_actor_dirs(root)
    warnings: list[str] = []
    rows: list[dict] = []
    seen: dict[str, str] = {}
    song = 0
    unparsed: list[str] = []
    present: set[int] = set()
    for folder in dirs:
        folder_actor = int(_ACTOR_DIR_RE.match(folder.name)[1])  # type: ignore[index]
        try:
            with os.scandir(folder) as entries:
                # Not only regular files: a dangling link or a special file keeps its row and
                # fails when read, with the reason, instead of vanishing from the evaluation.
                files = sorted(e.name for e in entries
                               if not e.is_dir() and not e.name.startswith("."))
        except OSError as exc:
            warnings.append(f"{folder} cannot be listed ({(exc.strerror or str(exc)).lower()}); "
                            "its files are not evaluated")
            continue
        for name in files:
            full = os.path.abspath(os.path.join(folder, name))
            parsed = parse_ravdess_name(name)
            if parsed is None:
                unparsed.append(full)
                continue
            present.add(parsed.actor)
            if selected is not None and parsed.actor not in selected:
                continue
            if not parsed.is_speech:
                song += 1
                continue
            if name in seen:
                warnings.append(f"{full} repeats {seen[name]}; only the first is used")
                continue
            seen[name] = full
            if parsed.actor != folder_actor:
                warnings.append(
                    f"{full} is in {folder.name} but its name says actor {parsed.actor:02d}; "
                    "the name is used")
            rows.append(_row(full, parsed))
    if selected is not None:
        absent = [a for a in selected if a not in present]
        if len(absent) == len(selected):
            raise ValueError(
                f"none of the actors {list(selected)} is in {root}; "
                f"present: {sorted(present) or 'none'}")
        if absent:
            warnings.append(f"actors {absent} asked for but not in {root}")
    if not rows:
        raise FileNotFoundError(
            f"no RAVDESS speech files (03-01-...) for actors "
            f"{list(selected) if selected else 'all'} under {root} ({song} song files, "
            f"{len(unparsed)} unparsed names skipped). {_GET_HELP}")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    # Keep None (not NaN) for calm/surprised: pandas would infer a string column with NaN.
    frame["label"] = pd.Series([r["label"] for r in rows], dtype=object)
    frame = frame.sort_values(["actor", "path"], kind="stable", ignore_index=True)
    for message in warnings:
        log.warning("RAVDESS: %s", message)
    if song or unparsed:
        log.info("RAVDESS: skipped %d song files and %d files with unparsed names",
                 song, len(unparsed))
    log.info("RAVDESS: %d speech files from %d actors", len(frame), frame["actor"].nunique())
    return RavdessIndex(frame, song, unparsed, dirs[0].parent, selected or tuple(sorted(present)),
                        warnings)


def _row(path: str, n: RavdessName) -> dict:
    return {
        "path": path, "actor": n.actor, "gender": n.gender, "emotion": n.emotion, "label": n.label,
        "intensity": n.intensity, "statement": n.statement, "repetition": n.repetition,
        "speaker": ravdess_speaker(n.actor).speaker, "statement_text": n.statement_text,
    }
