"""The synthetic speakers' voices: one espeak-ng voice per speaker id, the same in both layouts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ser.data.synthetic.seeds import seed_seq


@dataclass(frozen=True)
class Speaker:
    """A speaker's voice, the same in both layouts (RAVDESS actors appear in both)."""

    name: str  # e.g. crema-1053, ravdess-08
    gender: str
    f0: float  # Hz, neutral speaking pitch
    span: float  # top of the pitch range, times f0
    formants: tuple[float, ...]  # percent of espeak's formant frequencies, formants 0..8
    rate_wpm: float
    breath: float
    flutter: float
    roughness: float
    # espeak-ng's Klatt source, variants 1-6. Not its own source (0): that one keeps state from
    # one utterance to the next, so a clip would depend on the clips spoken before it.
    klatt: int
    expressiveness: float  # how far this speaker moves from neutral
    loud_db: float


@lru_cache(maxsize=512)
def make_speaker(seed: int, name: str, gender: str) -> Speaker:
    """The speaker's voice depends on (seed, speaker name) only, not on the corpus or its size."""
    rng = np.random.default_rng(seed_seq(seed, "speaker", name))
    male = gender == "male"
    tract = (100.0 if male else 112.0) * rng.uniform(0.95, 1.05)
    return Speaker(
        name=name, gender=gender,
        f0=(105.0 if male else 195.0) * 2 ** (rng.normal(0.0, 1.8) / 12),
        span=rng.uniform(1.3, 1.6),
        formants=tuple(float(tract * rng.uniform(0.97, 1.03)) for _ in range(9)),
        rate_wpm=165.0 * rng.uniform(0.85, 1.15),
        breath=rng.uniform(0.0, 6.0) if male else rng.uniform(3.0, 12.0),
        flutter=rng.uniform(0.0, 0.8),
        roughness=float(rng.integers(0, 2)),
        klatt=int(rng.integers(1, 7)),
        expressiveness=rng.uniform(0.85, 1.15),
        loud_db=rng.uniform(-3.0, 3.0),
    )
