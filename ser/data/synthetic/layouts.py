"""The synthetic corpora's files laid out as the real ones: Kaggle ids, names, splits and formats,
RAVDESS actor folders; one :class:`ClipSpec` per file.

The speakers are the real ones of each file name: a source-1 Kaggle id is the CREMA-D actor of
that line of CREMA-D's file list, a source-2 id or a RAVDESS actor folder the RAVDESS actor
(:mod:`ser.data.speakers`), with their sex. So a speaker-disjoint split of the synthetic data is
as meaningful as on the real data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ser.data.speakers import RAVDESS_FIRST_ID, crema_files, kaggle_speaker, ravdess_speaker
from ser.data.synthetic.languages import (CREMA_SENTENCES, RAVDESS_SENTENCES_EN,
                                          RAVDESS_SENTENCES_ID)
from ser.data.synthetic.profiles import PROFILES
from ser.data.synthetic.prosody import KAGGLE_INTENSITY_SCALE, RAVDESS_INTENSITY_SCALE
from ser.data.synthetic.rendering import ClipSpec
from ser.data.synthetic.seeds import seed_seq
from ser.labels import LABELS, RAVDESS_EMOTIONS

# The real Kaggle train class counts (DESIGN.md §2).
KAGGLE_TRAIN_COUNTS = {"bahagia": 1191, "jijik": 1117, "marah": 1190, "netral": 958, "sedih": 1192,
                       "takut": 1150}
S2_FIRST_ID = RAVDESS_FIRST_ID
_CREMA_LABELS = {"ANG": "marah", "DIS": "jijik", "FEA": "takut", "HAP": "bahagia", "NEU": "netral",
                 "SAD": "sedih"}
_CREMA_LEVELS = {"HI": "tinggi", "LO": "rendah", "MD": "sedang", "XX": "no_data"}


@dataclass(frozen=True)
class KaggleItem:
    file_id: int
    source: int
    speaker: str
    gender: str
    label: str
    intensity: str  # rendah | sedang | tinggi | no_data | tidak_ditentukan
    scale: float | None
    text: str

    @property
    def name(self) -> str:
        return f"{self.source}_{self.file_id:05d}_{self.label}_{self.intensity}.wav"


def _ravdess_actor_files() -> list[tuple[int, int, int, int]]:
    """(emotion, intensity, statement, repetition) in RAVDESS's sorted file order, 60 per actor."""
    out = []
    for emotion in range(1, 9):
        for intensity in (1,) if emotion == 1 else (1, 2):
            for statement in (1, 2):
                for repetition in (1, 2):
                    out.append((emotion, intensity, statement, repetition))
    return out


@lru_cache(maxsize=1)
def kaggle_catalogue() -> tuple[KaggleItem, ...]:
    """All 8,498 ids of the Kaggle data set as the real one lays them out (DESIGN.md §2).

    Source 1 is CREMA-D's sorted file list (ids 0..7441): actor, sentence, emotion and level come
    from the name. Source 2 follows RAVDESS speech, 60 ids per actor from 7442, calm and
    surprised left out (1,056 files). Speakers are those of :func:`ser.data.speakers.kaggle_speaker`.
    """
    items = []
    for file_id, name in enumerate(crema_files()):
        _actor, sentence, emotion, level = name[: -len(".wav")].split("_")
        who = kaggle_speaker(1, file_id)
        word = _CREMA_LEVELS[level]
        items.append(KaggleItem(file_id, 1, who.speaker, who.gender, _CREMA_LABELS[emotion], word,
                                KAGGLE_INTENSITY_SCALE.get(word), CREMA_SENTENCES[sentence]))
    words = {1: "sedang", 2: "tinggi"}
    for actor in range(1, 25):
        for pos, (emotion, intensity, statement, _rep) in enumerate(_ravdess_actor_files()):
            label = RAVDESS_EMOTIONS[emotion][1]
            if label is None:
                continue
            file_id = S2_FIRST_ID + (actor - 1) * 60 + pos
            who = kaggle_speaker(2, file_id)
            items.append(KaggleItem(file_id, 2, who.speaker, who.gender, label, words[intensity],
                                    KAGGLE_INTENSITY_SCALE[words[intensity]],
                                    RAVDESS_SENTENCES_ID[statement - 1]))
    return tuple(items)


def _pick_speakers(rng: np.random.Generator, speakers: dict[str, str], n: int) -> set[str]:
    """``n`` speakers, half of each sex (as far as there are)."""
    by_sex = {g: sorted(s for s, sex in speakers.items() if sex == g) for g in ("female", "male")}
    first = min(n - n // 2, len(by_sex["female"]))
    chosen = set(rng.choice(by_sex["female"], first, replace=False).tolist())
    chosen |= set(rng.choice(by_sex["male"], n - first, replace=False).tolist())
    return chosen


def _kaggle_selection(seed: int, size: str) -> tuple[list[KaggleItem], list[KaggleItem]]:
    """(train, test) items for ``size``; full: the real class counts, test the rest."""
    profile = PROFILES[size]
    items = list(kaggle_catalogue())
    rng = np.random.default_rng(seed_seq(seed, "indonesian", "selection", size))
    if profile.s1_speakers is not None:
        s1 = {it.speaker: it.gender for it in items if it.source == 1}
        s2 = {it.speaker: it.gender for it in items if it.source == 2}
        keep = _pick_speakers(rng, s1, profile.s1_speakers)
        keep |= _pick_speakers(rng, s2, profile.s2_actors)
        items = [it for it in items if it.speaker in keep]
    train: list[KaggleItem] = []
    speakers = [str(x) for x in rng.permutation(sorted({it.speaker for it in items}))]
    position = {name: i for i, name in enumerate(speakers)}
    for j, label in enumerate(LABELS):
        pool = [it for it in items if it.label == label]
        want = (KAGGLE_TRAIN_COUNTS[label] if profile.train_per_class is None
                else profile.train_per_class)
        if want > len(pool):
            raise ValueError(f"size {size!r}: {want} {label} files wanted, only {len(pool)} ids")
        pool = [pool[i] for i in rng.permutation(len(pool))]
        if profile.train_per_class is not None:
            # round robin over the speakers (rotated per label) so that every speaker has files
            seen: dict[str, int] = {}
            rank = []
            for it in pool:
                seen[it.speaker] = seen.get(it.speaker, -1) + 1
                rank.append((seen[it.speaker],
                             (position[it.speaker] - j * want) % len(speakers)))
            pool = [it for _, it in sorted(zip(rank, pool), key=lambda pair: pair[0])]
        train += pool[:want]
    chosen = {it.file_id for it in train}
    rest = [it for it in items if it.file_id not in chosen]
    n_test = len(rest) if profile.n_test is None else profile.n_test
    test = [rest[i] for i in rng.choice(len(rest), n_test, replace=False)]
    train = [train[i] for i in rng.permutation(len(train))]
    # the real data spells one intensity "tidak_ditentukan"
    odd = [i for i, it in enumerate(train) if it.intensity == "no_data" and it.label != "netral"]
    if odd:
        i = odd[int(rng.integers(len(odd)))]
        train[i] = replace(train[i], intensity="tidak_ditentukan")
    return train, test


def _formats(rng: np.random.Generator, items: list[KaggleItem], at_least_one: bool
             ) -> list[tuple[int, int]]:
    """(sample rate, channels): 16 kHz for source 1, 48 kHz for source 2, ~3 % at 44.1 kHz and
    ~3 % stereo (at least one of each in the training set)."""
    out = [(16000 if it.source == 1 else 48000, 1) for it in items]
    k = int(round(0.03 * len(items)))
    if at_least_one:
        k = max(1, k)
    if k and items:
        for i in rng.choice(len(items), min(k, len(items)), replace=False):
            out[i] = (44100, out[i][1])
        for i in rng.choice(len(items), min(k, len(items)), replace=False):
            out[i] = (out[i][0], 2)
    return out


def kaggle_jobs(seed: int, size: str) -> tuple[list[ClipSpec], list[KaggleItem], list[KaggleItem]]:
    profile = PROFILES[size]
    train, test = _kaggle_selection(seed, size)
    rng = np.random.default_rng(seed_seq(seed, "indonesian", "formats", size))
    specs = []
    for split, items in (("train", train), ("test", test)):
        for j, (it, (sr, ch)) in enumerate(zip(items, _formats(rng, items, split == "train"))):
            rel = f"train/{it.name}" if split == "train" else f"test/test{j + 1}.wav"
            specs.append(ClipSpec("indonesian", f"{it.source}_{it.file_id:05d}", rel, it.speaker,
                                  it.gender, it.label, it.scale, it.text, sr, ch,
                                  profile.pad_s1 if it.source == 1 else profile.pad_s2))
    return specs, train, test


def ravdess_jobs(size: str) -> list[ClipSpec]:
    profile = PROFILES[size]
    specs = []
    for actor in profile.ravdess_actors:
        who = ravdess_speaker(actor)
        for emotion, intensity, statement, repetition in _ravdess_actor_files():
            codes = (emotion, intensity, statement, repetition, actor)
            name = "03-01-" + "-".join(f"{c:02d}" for c in codes)
            emo = RAVDESS_EMOTIONS[emotion][1] or RAVDESS_EMOTIONS[emotion][0]
            specs.append(ClipSpec("ravdess", name, f"Actor_{actor:02d}/{name}.wav", who.speaker,
                                  who.gender, emo, RAVDESS_INTENSITY_SCALE[intensity],
                                  RAVDESS_SENTENCES_EN[statement - 1], 48000, 1,
                                  profile.pad_ravdess))
    return specs
