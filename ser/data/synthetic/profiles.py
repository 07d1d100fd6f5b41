"""The sizes of the synthetic corpora (``ser synth --size``): speakers, files and silences."""

from __future__ import annotations

from dataclasses import dataclass

SIZES = ("tiny", "demo", "full")


@dataclass(frozen=True)
class SizeProfile:
    s1_speakers: int | None  # source-1 (CREMA-D) speakers to draw from; None: all 91
    s2_actors: int | None  # source-2 (RAVDESS) actors to draw from; None: all 24
    train_per_class: int | None  # None: the real class counts
    n_test: int | None  # None: all the rest (the real 1,700)
    ravdess_actors: tuple[int, ...]
    pad_s1: tuple[float, float]
    pad_s2: tuple[float, float]
    pad_ravdess: tuple[float, float]


PROFILES = {
    # tiny: enough speakers (10, both sexes) for a speaker-disjoint split, a few files each
    "tiny": SizeProfile(8, 2, 5, 6, (1, 2), (0.05, 0.2), (0.05, 0.2), (0.05, 0.2)),
    # demo: 60 Kaggle speakers (48 CREMA-D + 12 RAVDESS, half of each sex), 200 files per class:
    # the demo's 60/20/20 speaker split trains on 36 voices and scores 12 + 12 unseen ones. Twice
    # the 30 speakers x 100 files it had: for the same number of training steps (half the
    # epochs) the model meets twice the voices, which is what carries to unseen speakers and to
    # RAVDESS (bench/BENCHMARKS.md, issue 15). All 24 RAVDESS actors.
    "demo": SizeProfile(48, 12, 200, 30, tuple(range(1, 25)), (0.1, 0.35), (0.1, 0.3),
                        (0.1, 0.3)),
    "full": SizeProfile(None, None, None, None, tuple(range(1, 25)), (0.2, 0.6), (0.6, 1.25),
                        (0.6, 1.25)),
}
