"""A map-style dataset over a file frame: one clip in, one item dict out, errors kept per item.

A file that cannot be decoded becomes an item with ``error`` set (the file's name and the reason),
never an exception and never a clip of silence: the collate function leaves it out of the batch
and reports it, so one broken file neither stops an epoch nor trains the model on a fake clip.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ser.audio import MIN_SAMPLES, TARGET_SR, AudioError, audio_info, load_audio
from ser.data.corpora import header_durations
from ser.labels import LABEL2ID, LABELS

log = logging.getLogger(__name__)


def label_ids(values: pd.Series | list[Any]) -> np.ndarray:
    """Class ids for label values: one of the six names (or an id 0..5) -> id; None/NaN -> -1.

    Names outside the six also give -1, with a warning: a training frame should not hold them
    (``load_kaggle`` leaves such rows out), an evaluation frame may (RAVDESS calm, surprised).
    """
    ids = np.full(len(values), -1, dtype=np.int64)
    unknown: list[Any] = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            continue
        if isinstance(value, str):
            if value in LABEL2ID:
                ids[i] = LABEL2ID[value]
            else:
                unknown.append(value)
        elif isinstance(value, (int, np.integer)) and 0 <= int(value) < len(LABELS):
            ids[i] = int(value)
        else:
            unknown.append(value)
    if unknown:
        shown = ", ".join(repr(v) for v in sorted(set(map(str, unknown)))[:5])
        log.warning("%d labels are not among the six classes (%s): their items get label -1",
                    len(unknown), shown)
    return ids


class AudioClipDataset(Dataset):
    """Items ``{"input_values", "label", "index", "error"}`` for the rows of ``frame``.

    ``frame`` needs a ``path`` column; ``index`` is the row position, so predictions join back to
    the frame with ``frame.iloc[index]``. With ``max_seconds`` and ``random_crop`` (training), a
    longer clip is cut to a random ``max_seconds`` window and only that window is decoded; with
    ``max_seconds`` and no ``random_crop`` the centre window is taken; without ``max_seconds``
    clips are kept whole (evaluation). ``augment`` is called as ``augment(wave, rng)`` (or
    ``augment(wave)`` if it takes one argument) on the loaded clip.

    Randomness (crop position, augmentation). Keyed by ``(index, epoch)`` — what
    :class:`~ser.data.batching.LengthGroupedBatchSampler` yields with ``tag_epoch=True`` — it is
    drawn from ``default_rng([seed, epoch, index])``: a pure function of seed, epoch and clip, the
    same with any number of workers and in a resumed run. Keyed by a plain ``index``, it comes
    from a generator seeded with ``seed`` and ``torch.initial_seed()`` of the loading process
    (the ``seed_everything`` seed in the main process, torch's per-epoch seed in a worker): still
    repeatable under one seed and worker count, and new every epoch.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        label_column: str = "label",
        max_seconds: float | None = None,
        random_crop: bool = False,
        augment: Callable[..., np.ndarray] | None = None,
        seed: int = 0,
    ) -> None:
        if "path" not in frame.columns:
            raise KeyError(f"the frame needs a 'path' column; it has {list(frame.columns)}")
        if max_seconds is not None and max_seconds * TARGET_SR < MIN_SAMPLES:
            raise ValueError(f"max_seconds={max_seconds} is shorter than the backbone's minimum "
                             f"input ({MIN_SAMPLES / TARGET_SR:.3f} s)")
        self.paths: list[str] = [str(p) for p in frame["path"]]
        if label_column in frame.columns:
            self.labels = label_ids(frame[label_column].tolist())
        else:
            self.labels = np.full(len(frame), -1, dtype=np.int64)
        self.max_seconds = max_seconds
        self.random_crop = random_crop
        self.augment = augment
        self._augment_takes_rng = augment is not None and _takes_rng(augment)
        self.seed = int(seed)
        self._durations: np.ndarray | None = None
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def durations(self) -> np.ndarray:
        """Seconds per row from the file headers (NaN where unreadable); read once, in threads."""
        if self._durations is None:
            self._durations = header_durations(self.paths)
        return self._durations

    def cropped_durations(self) -> np.ndarray:
        """Lengths as batches will hold them: ``min(duration, max_seconds)``."""
        if self.max_seconds is None:
            return self.durations
        return np.minimum(self.durations, self.max_seconds)

    def _process_generator(self) -> np.random.Generator:
        # Re-seed in each new process (fork copies this object) and after a new torch seed.
        key = (os.getpid(), torch.initial_seed())
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng([self.seed, key[1]])
            self._rng_key = key
        return self._rng

    def _duration_of(self, i: int) -> float:
        if self._durations is not None:
            return float(self._durations[i])
        try:
            return audio_info(self.paths[i]).duration
        except AudioError:
            return math.nan  # load_audio below raises the same error, with its reason

    def _load(self, i: int, rng: Callable[[], np.random.Generator]) -> np.ndarray:
        path = self.paths[i]
        if self.max_seconds is None:
            return load_audio(path)
        duration = self._duration_of(i)
        if not duration > self.max_seconds:  # also NaN: let load_audio report the file
            return load_audio(path)
        spare = duration - self.max_seconds
        offset = rng().uniform(0.0, spare) if self.random_crop else spare / 2
        audio = load_audio(path, offset=offset, duration=self.max_seconds)
        # Resampling can round up by a sample; keep every crop within max_seconds.
        return audio[: int(self.max_seconds * TARGET_SR)]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            i, epoch = int(key[0]), int(key[1])
            made: list[np.random.Generator] = []

            def rng() -> np.random.Generator:  # only built when a crop or augment needs it
                if not made:
                    made.append(np.random.default_rng([self.seed, epoch, i]))
                return made[0]
        else:
            i = int(key)
            rng = self._process_generator
        try:
            audio: np.ndarray | None = self._load(i, rng)
            error = None
        except AudioError as exc:
            audio, error = None, str(exc)
        if audio is not None and self.augment is not None:
            out = self.augment(audio, rng()) if self._augment_takes_rng else self.augment(audio)
            audio = np.ascontiguousarray(out, dtype=np.float32)
        return {"input_values": audio, "label": int(self.labels[i]), "index": i, "error": error}


def _takes_rng(augment: Callable[..., np.ndarray]) -> bool:
    """Whether ``augment`` accepts ``(wave, rng)``; ``ser.augment.Augment`` does."""
    try:
        inspect.signature(augment).bind(np.zeros(1, dtype=np.float32), None)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): call it with the clip alone
        return False
    return True
