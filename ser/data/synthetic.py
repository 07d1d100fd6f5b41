"""Synthetic speech-emotion corpora in the Kaggle and RAVDESS layouts, spoken by espeak-ng.

Why: the real corpora cannot be downloaded on the machines this project is built on (DESIGN.md §3),
yet tests, the offline demo and the benchmarks need files that look like them (the same folder
layouts, names and speakers, mixed sample rates, a few stereo files) and that hold speech whose
emotion a model can learn and carry from one language to another.

The speech is text to speech (:mod:`ser.data.tts`): Indonesian sentences for the Kaggle layout and
RAVDESS's two English sentences for the RAVDESS layout. Every speaker is its own espeak-ng voice
(pitch register, vocal-tract length, breathiness, jitter, speaking rate, synthesiser source) made
from its speaker id, and the speakers are the real ones of each file name: a source-1 Kaggle id is
the CREMA-D actor of that line of CREMA-D's file list, a source-2 id or a RAVDESS actor folder the
RAVDESS actor (:mod:`ser.data.speakers`), with their sex. So a speaker-disjoint split of the
synthetic data is as meaningful as on the real data. Each emotion is a set of prosodic deviations
from neutral (:data:`PROSODY`: pitch level and range, rate, pauses, loudness, voice quality, final
intonation, spectral tilt) scaled by the clip's intensity and the speaker's expressiveness, with
per-clip variation so that the classes overlap. What carries over from one layout to the other is
prosody: the languages, sentences and room noise differ.

Every file is rendered from its own random stream, seeded by (seed, layout, file key) (espeak-ng's
own noise too, through libc's ``srand``), so the same seed gives byte-identical files whatever the
size, the order of writing or the number of workers. Writing is atomic: a corpus is built in a
temporary folder under a lock and moved into place when complete, so concurrent runs asking for
the same corpus (two demos started together) wait for one another instead of clashing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser.data.speakers import RAVDESS_FIRST_ID, crema_files, kaggle_speaker, ravdess_speaker
from ser.labels import LABELS, RAVDESS_EMOTIONS

logger = logging.getLogger(__name__)

VERSION = 2  # 1: formant synthesiser; 2: espeak-ng speech
MARKER = "synthetic.json"
LOCK = ".synthetic.lock"
SIZES = ("tiny", "demo", "full")

# ----------------------------------------------------------------------------------------------
# Prosody: what makes an emotion. Deviations from neutral, scaled by intensity.
# ----------------------------------------------------------------------------------------------

_RATIO_FIELDS = ("rate_x", "range_x")  # scaled on a log scale


@dataclass(frozen=True)
class Prosody:
    """One emotion's voice settings at intensity 1 (see :meth:`scaled`)."""

    pitch: float  # espeak pitch, 0-100 (50: the speaker's own register)
    range_x: float  # pitch excursion, times neutral
    rate_x: float  # words per minute, times the speaker's own
    gap_s: float  # extra pause between words, seconds
    loud_db: float  # level, dB from neutral
    breath: float  # aspiration noise added to the speaker's own (espeak breath units)
    flutter: float  # tremor depth added to the speaker's own, percent of f0 (peak)
    roughness: float  # irregular pulses (creak) added, 0..7
    effort: float  # voicing and consonant strength, times neutral (pressed / lax voice)
    formant_pct: float  # formant frequency shift, percent (spread lips of a smile raise them)
    tilt_db: float  # spectral tilt above 500 Hz, dB/octave (positive: brighter)
    rise: float  # probability of a rising end (a question contour)
    exclaim: float  # probability of an exclamation contour

    def scaled(self, k: float) -> Prosody:
        """Neutral plus ``k`` times this emotion's deviation (log scale for the ratios)."""
        values = {}
        for f in fields(self):
            own, base = getattr(self, f.name), getattr(NEUTRAL, f.name)
            if f.name in _RATIO_FIELDS:
                values[f.name] = base * (own / base) ** k
            else:
                values[f.name] = base + k * (own - base)
        values["rise"] = min(1.0, max(0.0, values["rise"]))
        values["exclaim"] = min(1.0, max(0.0, values["exclaim"]))
        return Prosody(**values)


NEUTRAL = Prosody(pitch=50.0, range_x=1.0, rate_x=1.0, gap_s=0.0, loud_db=0.0, breath=0.0,
                  flutter=0.0, roughness=0.0, effort=1.0, formant_pct=0.0, tilt_db=0.0, rise=0.0,
                  exclaim=0.0)

# Directions follow the vocal-affect literature (e.g. Juslin & Laukka 2003; Scherer 2003): anger
# and happiness high, wide and fast, anger pressed and loud; sadness low, narrow, slow, soft and
# breathy; fear high, fast, narrow, with tremor and rising ends; disgust low, slow and creaky.
PROSODY: dict[str, Prosody] = {
    "netral": NEUTRAL,
    "marah": replace(NEUTRAL, pitch=62, range_x=1.35, rate_x=1.18, loud_db=7.0, breath=-3,
                     roughness=1, effort=1.4, formant_pct=2, tilt_db=5.0, exclaim=0.9),
    "jijik": replace(NEUTRAL, pitch=38, range_x=1.3, rate_x=0.80, gap_s=0.07, loud_db=1.0,
                     breath=4, flutter=0.8, roughness=5, effort=0.95, formant_pct=-3,
                     tilt_db=-1.0),
    "takut": replace(NEUTRAL, pitch=80, range_x=0.55, rate_x=1.25, gap_s=0.03, loud_db=2.0,
                     breath=16, flutter=4.5, effort=0.8, tilt_db=-2.0, rise=0.8),
    "bahagia": replace(NEUTRAL, pitch=70, range_x=2.0, rate_x=1.05, loud_db=4.0, breath=2,
                       effort=1.1, formant_pct=6, tilt_db=1.5, exclaim=0.5),
    "sedih": replace(NEUTRAL, pitch=34, range_x=0.45, rate_x=0.78, gap_s=0.07, loud_db=-6.0,
                     breath=16, flutter=1.5, roughness=2, effort=0.7, tilt_db=-5.0),
    # RAVDESS only: calm is neutral but softer and slower; surprised has the widest pitch range.
    "calm": replace(NEUTRAL, pitch=44, range_x=0.8, rate_x=0.88, gap_s=0.05, loud_db=-4.0,
                    breath=5, effort=0.85, tilt_db=-2.0),
    "surprised": replace(NEUTRAL, pitch=68, range_x=2.2, rate_x=1.0, loud_db=4.0, breath=2,
                         effort=1.1, formant_pct=2, tilt_db=1.0, rise=0.9),
}

# Intensity word (Kaggle names) or RAVDESS code -> how far from neutral. The unspecified intensity
# (no_data, tidak_ditentukan) draws a scale per clip from NO_DATA_SCALE.
KAGGLE_INTENSITY_SCALE = {"rendah": 0.7, "sedang": 1.0, "tinggi": 1.3}
NO_DATA_SCALE = (0.85, 1.15)
RAVDESS_INTENSITY_SCALE = {1: 0.85, 2: 1.35}

# ----------------------------------------------------------------------------------------------
# Languages: what the two layouts do NOT share (language, sentences, room noise).
# ----------------------------------------------------------------------------------------------

# CREMA-D's 12 sentences (the code in its file names), said in Indonesian.
CREMA_SENTENCES = {
    "DFA": "jangan lupa bawa jaket", "IEO": "sekarang sudah jam sebelas",
    "IOM": "saya sedang menuju ke rapat", "ITH": "saya rasa saya ada janji dengan dokter",
    "ITS": "saya rasa saya pernah melihat ini", "IWL": "saya ingin jam weker yang baru",
    "IWW": "saya ingin tahu ini tentang apa", "MTI": "mungkin besok akan dingin",
    "TAI": "pesawatnya hampir penuh", "TIE": "itulah yang sebenarnya terjadi",
    "TSI": "permukaannya licin", "WSI": "kita akan berhenti beberapa menit lagi",
}
# RAVDESS statements 01 and 02: in Indonesian for the Kaggle layout, as recorded for RAVDESS.
RAVDESS_SENTENCES_ID = ("anak-anak sedang berbicara di dekat pintu",
                        "anjing-anjing sedang duduk di dekat pintu")
RAVDESS_SENTENCES_EN = ("kids are talking by the door", "dogs are sitting by the door")


@dataclass(frozen=True)
class Room:
    language: str  # espeak voice
    noise_alpha: float  # background noise spectrum ~ 1/f**alpha (0 white, 1 pink)
    noise_dbfs: tuple[float, float]
    hum_hz: float  # mains hum, 0 for none


ROOMS = {"indonesian": Room("id", 1.0, (-58.0, -48.0), 50.0),
         "ravdess": Room("en-us", 0.0, (-68.0, -60.0), 0.0)}

# ----------------------------------------------------------------------------------------------
# Speakers and clips
# ----------------------------------------------------------------------------------------------


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


def _seed_seq(seed: int, *keys: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *(zlib.crc32(k.encode()) for k in keys)])


@lru_cache(maxsize=512)
def make_speaker(seed: int, name: str, gender: str) -> Speaker:
    """The speaker's voice depends on (seed, speaker name) only, not on the corpus or its size."""
    rng = np.random.default_rng(_seed_seq(seed, "speaker", name))
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


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render and write one file; picklable for worker processes."""

    layout: str  # "indonesian" | "ravdess"
    key: str  # unique within the layout; seeds the clip's random stream
    relpath: str  # relative to the layout's root
    speaker: str
    gender: str
    emotion: str  # one of LABELS, or "calm" / "surprised" (RAVDESS)
    intensity: float | None  # scale of the deviation from neutral; None: draw (unspecified)
    text: str
    sample_rate: int
    channels: int
    pad_s: tuple[float, float]  # silence before and after the speech, drawn in this range


# ----------------------------------------------------------------------------------------------
# Signal generation
# ----------------------------------------------------------------------------------------------


def _coloured_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Unit-RMS noise with a 1/f**alpha power spectrum."""
    if alpha == 0.0:
        return rng.standard_normal(n, dtype=np.float32)
    nfft = 1 << max(1, (n - 1).bit_length())
    spec = np.fft.rfft(rng.standard_normal(nfft))
    k = np.arange(spec.size, dtype=np.float64)
    k[0] = 1.0
    noise = np.fft.irfft(spec * k ** (-alpha / 2), nfft)[:n]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _tilt(x: np.ndarray, sr: int, db_per_octave: float) -> np.ndarray:
    """Spectral tilt above 500 Hz (whole-clip FFT: clips are a few seconds)."""
    if not db_per_octave:
        return x
    nfft = 1 << (x.size - 1).bit_length()
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = (np.maximum(f, 500.0) / 500.0) ** (db_per_octave / 6.02)
    return np.fft.irfft(np.fft.rfft(x, nfft) * gain, nfft)[: x.size].astype(np.float32)


def _tremor(rng: np.random.Generator, x: np.ndarray, sr: int, depth_pct: float) -> np.ndarray:
    """A 4-7 Hz vibrato of ``depth_pct`` percent (peak frequency deviation) by a moving delay."""
    if depth_pct <= 0.01:
        return x
    rate = rng.uniform(4.0, 7.0)
    amp = depth_pct / 100.0 / (2 * np.pi * rate) * sr  # delay amplitude in samples
    t = np.arange(x.size, dtype=np.float64)
    where = t - amp * (1.0 + np.sin(2 * np.pi * rate * t / sr + rng.uniform(0, 2 * np.pi)))
    return np.interp(where, t, x, left=0.0).astype(np.float32)


def speak_clip(rng: np.random.Generator, spec: ClipSpec, speaker: Speaker) -> tuple[np.ndarray, int]:
    """The utterance of ``spec`` in the speaker's voice and the emotion's prosody (mono, float32,
    level set, silence padded) and its sample rate (espeak-ng's)."""
    from ser.data.tts import Voice, engine

    tts = engine()
    k = spec.intensity if spec.intensity is not None else rng.uniform(*NO_DATA_SCALE)
    k = min(2.0, k * speaker.expressiveness * math.exp(rng.normal(0.0, 0.1)))
    p = PROSODY[spec.emotion].scaled(k)
    effort = min(1.6, max(0.5, p.effort))
    voice = Voice(
        language=ROOMS[spec.layout].language,
        gender=speaker.gender,
        pitch_hz=(speaker.f0, speaker.f0 * speaker.span),
        formant_scale=tuple(f + p.formant_pct for f in speaker.formants),
        breath=int(round(min(40.0, max(0.0, speaker.breath + p.breath + rng.normal(0, 1.5))))),
        roughness=int(round(min(7.0, max(0.0, speaker.roughness + p.roughness)))),
        voicing=int(round(100 * effort)),
        consonants=int(round(100 * effort)),
        klatt=speaker.klatt,
    )
    u = rng.random()
    end = "?" if u < p.rise else "!" if u < p.rise + p.exclaim else "."
    speech = tts.speak(
        spec.text[0].upper() + spec.text[1:] + end, voice,
        rate_wpm=min(400.0, max(115.0, speaker.rate_wpm * p.rate_x * math.exp(rng.normal(0, 0.06)))),
        pitch=min(100.0, max(0.0, p.pitch + rng.normal(0.0, 3.0))),
        pitch_range=min(100.0, max(0.0, 50.0 * p.range_x * math.exp(rng.normal(0.0, 0.1)))),
        word_gap=max(0.0, p.gap_s * rng.uniform(0.6, 1.2)),
        seed=int(rng.integers(1, 2**31 - 1)),
    )
    sr = tts.sample_rate
    speech = _tremor(rng, speech, sr, speaker.flutter + p.flutter)
    speech = _tilt(speech, sr, p.tilt_db + rng.normal(0.0, 0.7))
    level_db = -26.0 + speaker.loud_db + p.loud_db + rng.normal(0.0, 1.5)
    speech = speech * (10 ** (level_db / 20) / max(_rms(speech[np.abs(speech) > 1e-3]), 1e-9))
    peak = float(np.max(np.abs(speech)))
    if peak > 0.9:
        speech *= 0.9 / peak
    before, after = (int(rng.uniform(*spec.pad_s) * sr) for _ in range(2))
    return np.concatenate([np.zeros(before, np.float32), speech.astype(np.float32),
                           np.zeros(after, np.float32)]), sr


def add_room_noise(rng: np.random.Generator, speech: np.ndarray, sr: int, room: Room) -> np.ndarray:
    """The room's background: coloured noise at a random level, and mains hum where it has it."""
    noise_db = rng.uniform(*room.noise_dbfs)
    out = speech + _coloured_noise(rng, speech.size, room.noise_alpha) * 10 ** (noise_db / 20)
    if room.hum_hz:
        hum_phase = (2 * np.pi * room.hum_hz * np.arange(speech.size) / sr
                     + rng.uniform(0, 2 * np.pi))
        out += (np.sin(hum_phase) + 0.5 * np.sin(3 * hum_phase)) * 10 ** ((noise_db - 6.0) / 20)
    return out


def render_clip(seed: int, spec: ClipSpec) -> np.ndarray:
    """The clip's samples as (frames, channels) int16, from its own random stream."""
    rng = np.random.default_rng(_seed_seq(seed, spec.layout, "clip", spec.key))
    speaker = make_speaker(seed, spec.speaker, spec.gender)
    speech, sr = speak_clip(rng, spec, speaker)
    if spec.sample_rate != sr:
        speech = soxr.resample(speech, sr, spec.sample_rate, quality="HQ")
    room = ROOMS[spec.layout]
    channels = [add_room_noise(rng, speech, spec.sample_rate, room)]
    if spec.channels == 2:  # a second microphone: a little quieter, its own noise
        channels.append(add_room_noise(rng, speech * rng.uniform(0.8, 0.95), spec.sample_rate,
                                       room))
    data = np.stack(channels, axis=1)
    return np.clip(np.round(data * 32767.0), -32768, 32767).astype(np.int16)


def _write_clip(job: tuple[int, ClipSpec, str]) -> float:
    seed, spec, path = job
    data = render_clip(seed, spec)
    sf.write(path, data, spec.sample_rate, subtype="PCM_16", format="WAV")
    return data.shape[0] / spec.sample_rate


# ----------------------------------------------------------------------------------------------
# Corpus layouts
# ----------------------------------------------------------------------------------------------


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
    rng = np.random.default_rng(_seed_seq(seed, "indonesian", "selection", size))
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


def _kaggle_jobs(seed: int, size: str) -> tuple[list[ClipSpec], list[KaggleItem], list[KaggleItem]]:
    profile = PROFILES[size]
    train, test = _kaggle_selection(seed, size)
    rng = np.random.default_rng(_seed_seq(seed, "indonesian", "formats", size))
    specs = []
    for split, items in (("train", train), ("test", test)):
        for j, (it, (sr, ch)) in enumerate(zip(items, _formats(rng, items, split == "train"))):
            rel = f"train/{it.name}" if split == "train" else f"test/test{j + 1}.wav"
            specs.append(ClipSpec("indonesian", f"{it.source}_{it.file_id:05d}", rel, it.speaker,
                                  it.gender, it.label, it.scale, it.text, sr, ch,
                                  profile.pad_s1 if it.source == 1 else profile.pad_s2))
    return specs, train, test


def _ravdess_jobs(size: str) -> list[ClipSpec]:
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


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _count_wavs(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for e in os.scandir(folder) if e.is_file() and e.name.endswith(".wav"))


def _on_disk_counts(out: Path) -> dict[str, int]:
    rav = out / "ravdess"
    actors = sorted(rav.glob("Actor_*")) if rav.is_dir() else []
    return {"indonesian/train": _count_wavs(out / "indonesian" / "train"),
            "indonesian/test": _count_wavs(out / "indonesian" / "test"),
            "ravdess": sum(_count_wavs(a) for a in actors)}


def _read_marker(out: Path) -> dict | None:
    path = out / MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable marker (%s); the corpora will be rewritten", path, exc)
        return {}


def _is_current(out: Path, wanted: dict) -> bool:
    marker = _read_marker(out)
    return bool(marker and marker.get("complete")
                and all(marker.get(k) == v for k, v in wanted.items())
                and marker.get("counts") == _on_disk_counts(out))


def _check_ours(out: Path, marker: dict | None) -> None:
    """Refuse to replace folders this module did not write."""
    targets = [out / "indonesian", out / "ravdess"]
    present = [p for p in targets if p.exists() and (not p.is_dir() or any(p.iterdir()))]
    if present and marker is None:
        raise FileExistsError(
            f"{', '.join(map(str, present))} already exist(s) and were not written by "
            f"write_synthetic_corpora (no {out / MARKER}); choose another folder or remove them")


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on ``out`` between processes (released when the process dies)."""
    with open(out / LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_synthetic_corpora(out_dir: str | os.PathLike, seed: int = 0, size: str = "demo", *,
                            workers: int | None = None) -> dict[str, Path]:
    """Write the Indonesian (Kaggle layout) and RAVDESS synthetic corpora under ``out_dir``.

    Returns ``{"indonesian": out_dir/"indonesian", "ravdess": out_dir/"ravdess"}``. A complete
    corpus of the same seed, size and generator version is left as is (the demo calls this on
    every run); anything else this function wrote before is replaced. ``workers``: processes
    (default: 2 where there are CPUs for it); the files do not depend on it. Safe to call from
    several processes at once: one writes (into a temporary folder, moved into place when
    complete), the others wait for it and then find the corpus there.
    """
    if size not in PROFILES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    out = Path(out_dir)
    roots = {"indonesian": out / "indonesian", "ravdess": out / "ravdess"}
    wanted = {"generator": "ser.data.synthetic", "version": VERSION, "seed": int(seed),
              "size": size}
    if _is_current(out, wanted):
        logger.info("synthetic corpora (size=%s, seed=%s) already in %s", size, seed, out)
        return roots
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        if _is_current(out, wanted):  # another process wrote it while this one waited
            logger.info("synthetic corpora (size=%s, seed=%s) written meanwhile in %s", size,
                        seed, out)
            return roots
        marker = _read_marker(out)
        _check_ours(out, marker)
        if marker and marker.get("complete"):
            logger.info("%s: another size/seed/version or files changed since it was written; "
                        "rewriting", out)
        build = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=out))
        try:
            counts = _write_into(build, seed, size, workers)
            (out / MARKER).unlink(missing_ok=True)  # from here on the folder is incomplete
            for layout, root in roots.items():
                if root.exists():
                    logger.info("removing the previous synthetic corpus at %s", root)
                    shutil.rmtree(root) if root.is_dir() else root.unlink()
                os.replace(build / layout, root)
            _write_atomic_text(out / MARKER, json.dumps(
                {**wanted, "complete": True, "counts": counts}, indent=2) + "\n")
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return roots


def _write_into(build: Path, seed: int, size: str, workers: int | None) -> dict[str, int]:
    """Write both corpora under ``build``; the counts for the marker."""
    started = time.perf_counter()
    roots = {"indonesian": build / "indonesian", "ravdess": build / "ravdess"}
    kaggle_specs, train, test = _kaggle_jobs(seed, size)
    specs = kaggle_specs + _ravdess_jobs(size)
    for folder in {(roots[s.layout] / s.relpath).parent for s in specs}:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [(int(seed), s, str(roots[s.layout] / s.relpath)) for s in specs]
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(jobs) >= 200 else 1
    logger.info("writing %d synthetic files (size=%s, seed=%s, %d worker(s))", len(jobs), size,
                seed, workers)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            durations = list(pool.map(_write_clip, jobs, chunksize=32))
    else:
        durations = [_write_clip(job) for job in jobs]
    kaggle = roots["indonesian"]
    (kaggle / "train.csv").write_text(
        "id,label\n" + "".join(f"{it.name},{it.label}\n" for it in train))
    (kaggle / "test.csv").write_text(
        "id\n" + "".join(f"test{j + 1}.wav\n" for j in range(len(test))))
    logger.info("wrote %d files, %.0f s of audio, in %.1f s", len(jobs), sum(durations),
                time.perf_counter() - started)
    return {"indonesian/train": len(train), "indonesian/test": len(test),
            "ravdess": len(specs) - len(kaggle_specs)}
