"""Synthetic speech-emotion corpora in the Kaggle and RAVDESS layouts.

Why: the real corpora cannot be downloaded on the machines this project is built on (DESIGN.md §3),
yet tests, the offline demo and the benchmarks need files that look like them: the same folder
layouts and names, mixed sample rates, a few stereo files, and classes that a model can learn.

The voices are source-filter synthesis: a Rosenberg glottal pulse train (with jitter, shimmer and
aspiration noise) through time-varying formant resonators, syllable by syllable, with onset
consonants, short pauses and a pitch contour (declination, accents, final movement, tremor). Each
emotion is a set of prosodic deviations from neutral (:data:`PROSODY`) scaled by the clip's
intensity; speakers and clips add their own random variation so that the classes overlap. The two
layouts use different carriers (vowel tables, phrases, consonants, background noise), so what
carries over from one to the other is prosody, as in a cross-lingual evaluation.

Every file is rendered from its own random stream, seeded by (seed, layout, file key), so the same
seed gives byte-identical files whatever the size, the order of writing or the number of workers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser.labels import LABELS, RAVDESS_EMOTIONS

logger = logging.getLogger(__name__)

VERSION = 1
MARKER = "synthetic.json"
SIZES = ("tiny", "demo", "full")

# ----------------------------------------------------------------------------------------------
# Prosody: what makes an emotion. Deviations from neutral, scaled by intensity.
# ----------------------------------------------------------------------------------------------


_RATIO_FIELDS = ("range_x", "rate_x", "pause_x")  # scaled on a log scale


@dataclass(frozen=True)
class Prosody:
    """One emotion's voice settings at intensity 1 (see :meth:`scaled`)."""

    f0_st: float  # pitch level, semitones from the speaker's neutral
    range_x: float  # pitch excursion of the accents, times neutral
    rate_x: float  # syllables per second, times neutral
    loud_db: float  # level, dB from neutral
    breath: float  # aspiration noise added to the speaker's own (ratio to the voiced source)
    tilt_db: float  # spectral tilt above 500 Hz, dB/octave (positive: brighter, pressed voice)
    open_q: float  # glottal open quotient (high: lax, breathy; low: pressed, sharp pulses)
    jitter: float  # cycle-to-cycle f0 perturbation (fraction)
    shimmer: float  # cycle-to-cycle amplitude perturbation (fraction)
    tremor_st: float  # depth of a 4.5-6.5 Hz pitch tremor, semitones
    final_st: float  # pitch movement over the last syllable, semitones (negative: fall)
    pause_x: float  # probability and length of pauses between words, times neutral
    creak: float  # phrase-final creaky voice (low, irregular pulses), 0..1

    def scaled(self, k: float) -> Prosody:
        """Neutral plus ``k`` times this emotion's deviation (log scale for the ratios)."""
        values = {}
        for f in fields(self):
            own, base = getattr(self, f.name), getattr(NEUTRAL, f.name)
            if f.name in _RATIO_FIELDS:
                values[f.name] = base * (own / base) ** k
            else:
                values[f.name] = base + k * (own - base)
        return Prosody(**values)


NEUTRAL = Prosody(f0_st=0.0, range_x=1.0, rate_x=1.0, loud_db=0.0, breath=0.0, tilt_db=0.0,
                  open_q=0.60, jitter=0.010, shimmer=0.05, tremor_st=0.0, final_st=-1.0,
                  pause_x=1.0, creak=0.1)

# Directions follow the vocal-affect literature (e.g. Juslin & Laukka 2003; Scherer 2003): anger
# and happiness high, wide and fast with anger pressed and loud; sadness low, narrow, slow, soft
# and breathy; fear high, fast, narrow with tremor and a rising end; disgust low, slow and creaky.
PROSODY: dict[str, Prosody] = {
    "netral": NEUTRAL,
    "marah": replace(NEUTRAL, f0_st=4.0, range_x=1.5, rate_x=1.15, loud_db=8.0, breath=-0.02,
                     tilt_db=4.0, open_q=0.40, jitter=0.015, shimmer=0.06, final_st=-3.0,
                     pause_x=0.7, creak=0.0),
    "jijik": replace(NEUTRAL, f0_st=-2.0, range_x=1.25, rate_x=0.80, loud_db=1.0, breath=0.05,
                     tilt_db=-1.0, open_q=0.55, jitter=0.035, shimmer=0.14, final_st=-3.0,
                     pause_x=1.5, creak=0.8),
    "takut": replace(NEUTRAL, f0_st=6.0, range_x=0.70, rate_x=1.20, loud_db=2.0, breath=0.12,
                     tilt_db=-2.0, open_q=0.70, jitter=0.025, shimmer=0.10, tremor_st=0.8,
                     final_st=2.0, pause_x=1.3, creak=0.0),
    "bahagia": replace(NEUTRAL, f0_st=4.0, range_x=1.8, rate_x=1.10, loud_db=4.0, breath=0.02,
                       tilt_db=2.0, open_q=0.55, jitter=0.012, shimmer=0.05, final_st=1.0,
                       pause_x=0.8, creak=0.0),
    "sedih": replace(NEUTRAL, f0_st=-2.5, range_x=0.50, rate_x=0.75, loud_db=-6.0, breath=0.12,
                     tilt_db=-5.0, open_q=0.78, jitter=0.020, shimmer=0.08, tremor_st=0.2,
                     final_st=-2.0, pause_x=1.8, creak=0.3),
    # RAVDESS only: calm is neutral but softer and slower; surprised has the widest pitch range.
    "calm": replace(NEUTRAL, f0_st=-1.0, range_x=0.80, rate_x=0.90, loud_db=-4.0, breath=0.04,
                    tilt_db=-2.0, open_q=0.65, jitter=0.008, final_st=-1.5, pause_x=1.2),
    "surprised": replace(NEUTRAL, f0_st=5.0, range_x=2.3, rate_x=1.0, loud_db=4.0, breath=0.03,
                         tilt_db=1.0, open_q=0.55, jitter=0.012, final_st=5.0, pause_x=0.9,
                         creak=0.0),
}

# Intensity word (Kaggle names) or RAVDESS code -> how far from neutral. The unspecified intensities
# (no_data, tidak_ditentukan) draw a scale per clip from NO_DATA_SCALE.
KAGGLE_INTENSITY_SCALE = {"rendah": 0.6, "sedang": 1.0, "tinggi": 1.4}
NO_DATA_SCALE = (0.75, 1.2)
RAVDESS_INTENSITY_SCALE = {1: 0.85, 2: 1.35}

# ----------------------------------------------------------------------------------------------
# Carriers: what the two layouts do NOT share (vowels, phrases, consonants, room noise).
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Syllable:
    onset: str  # consonant key in the carrier's table, "" for none
    vowel: str  # vowel key in the carrier's table
    stress: bool
    word_end: bool


@dataclass(frozen=True)
class Carrier:
    vowels: dict[str, tuple[tuple[float, float, float, float], ...]]  # 1 target or a glide of 2
    # consonant -> (centre Hz, bandwidth Hz, duration s, level re the vowel, plosive?)
    consonants: dict[str, tuple[float, float, float, float, bool]]
    phrases: tuple[tuple[Syllable, ...], ...]
    noise_alpha: float  # background noise spectrum ~ 1/f**alpha (0 white, 1 pink)
    noise_dbfs: tuple[float, float]
    hum_hz: float  # mains hum frequency, 0 for none


_ID_LETTERS = "aiueo"


def _indonesian_phrase(text: str) -> tuple[Syllable, ...]:
    """'sa-ya su-dah' -> syllables; stress on each word's penultimate syllable, as in Indonesian."""
    out: list[Syllable] = []
    for word in text.split():
        parts = word.split("-")
        for i, part in enumerate(parts):
            v = next(j for j, ch in enumerate(part) if ch in _ID_LETTERS)
            onset = part[:v]
            out.append(Syllable(onset=onset, vowel=part[v], stress=i == max(0, len(parts) - 2),
                                word_end=i == len(parts) - 1))
    return tuple(out)


_ID_PHRASES = (
    "sa-ya su-dah ma-kan", "ki-ta a-kan per-gi be-sok", "ja-ngan lu-pa ja-ket-mu",
    "di-a ti-dak ta-hu", "ru-mah i-tu be-sar se-ka-li", "a-ku su-ka ma-kan na-si",
    "pin-tu-nya ter-bu-ka", "ma-ri ki-ta pu-lang", "bu-ku i-ni ba-ru",
    "hu-jan tu-run la-gi", "ka-mi me-nung-gu di lu-ar", "se-mu-a o-rang su-dah da-tang",
)

_PLOSIVE, _FRIC = True, False
INDONESIAN = Carrier(
    vowels={
        "a": ((700, 1250, 2600, 3600),), "i": ((280, 2300, 3000, 3800),),
        "u": ((320, 800, 2350, 3400),), "e": ((450, 1950, 2600, 3600),),
        "o": ((470, 900, 2500, 3450),),
    },
    consonants={
        "s": (5500, 2500, 0.090, 0.35, _FRIC), "h": (1500, 3000, 0.060, 0.15, _FRIC),
        "c": (3500, 1500, 0.060, 0.35, _FRIC), "k": (2000, 800, 0.035, 0.45, _PLOSIVE),
        "t": (4000, 1500, 0.030, 0.45, _PLOSIVE), "p": (900, 800, 0.025, 0.35, _PLOSIVE),
        "b": (800, 800, 0.012, 0.20, _PLOSIVE), "d": (3000, 1500, 0.012, 0.20, _PLOSIVE),
        "g": (1800, 800, 0.015, 0.20, _PLOSIVE), "j": (3000, 1500, 0.040, 0.25, _FRIC),
    },
    phrases=tuple(_indonesian_phrase(p) for p in _ID_PHRASES),
    noise_alpha=1.0, noise_dbfs=(-58.0, -48.0), hum_hz=50.0,
)


def _english_phrase(spec: str) -> tuple[Syllable, ...]:
    """'k.ih/! aa/ ...': onset.vowel, '!' stressed, '/' ends a word."""
    out = []
    for token in spec.split():
        stress, word_end = "!" in token, "/" in token
        onset, vowel = token.strip("!/").split(".")
        out.append(Syllable(onset, vowel, stress, word_end))
    return tuple(out)


RAVDESS_CARRIER = Carrier(
    vowels={  # Peterson & Barney (1952) male averages, F4 approximate
        "iy": ((270, 2290, 3010, 3700),), "ih": ((390, 1990, 2550, 3600),),
        "eh": ((530, 1840, 2480, 3500),), "ae": ((660, 1720, 2410, 3500),),
        "aa": ((730, 1090, 2440, 3400),), "ao": ((570, 840, 2410, 3300),),
        "uh": ((440, 1020, 2240, 3300),), "uw": ((300, 870, 2240, 3300),),
        "er": ((490, 1350, 1690, 3300),), "ax": ((500, 1500, 2500, 3500),),
        "ay": ((730, 1090, 2440, 3400), (390, 1990, 2550, 3600)),
    },
    consonants={
        "k": (1800, 700, 0.040, 0.45, _PLOSIVE), "t": (4500, 1800, 0.035, 0.45, _PLOSIVE),
        "d": (3500, 1500, 0.015, 0.20, _PLOSIVE), "b": (700, 600, 0.012, 0.20, _PLOSIVE),
        "dh": (4000, 3000, 0.030, 0.10, _FRIC), "s": (6500, 2500, 0.100, 0.35, _FRIC),
    },
    phrases=(
        # 01 "Kids are talking by the door", 02 "Dogs are sitting by the door"
        _english_phrase("k.ih!/ .er/ t.ao! .ih/ b.ay!/ dh.ax/ d.ao!/"),
        _english_phrase("d.ao!/ .er/ s.ih! t.ih/ b.ay!/ dh.ax/ d.ao!/"),
    ),
    noise_alpha=0.0, noise_dbfs=(-68.0, -60.0), hum_hz=0.0,
)
CARRIERS = {"indonesian": INDONESIAN, "ravdess": RAVDESS_CARRIER}

# ----------------------------------------------------------------------------------------------
# Speakers and clips
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speaker:
    gender: str
    f0: float  # Hz, neutral speaking pitch
    formant_scale: float  # vocal tract length: women ~16 % higher formants
    rate: float  # syllables per second, neutral
    breath: float
    tilt_db: float
    open_q: float  # offset to the emotion's open quotient
    range_x: float
    jitter: float
    expressiveness: float  # how far this speaker moves from neutral
    loud_db: float


def _seed_seq(seed: int, *keys: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *(zlib.crc32(k.encode()) for k in keys)])


@lru_cache(maxsize=512)
def make_speaker(seed: int, layout: str, key: str, gender: str) -> Speaker:
    """The speaker's voice depends on (seed, layout, key) only, not on the corpus size."""
    rng = np.random.default_rng(_seed_seq(seed, layout, "speaker", key))
    male = gender == "male"
    return Speaker(
        gender=gender,
        f0=(115.0 if male else 205.0) * 2 ** (rng.normal(0.0, 1.8) / 12),
        formant_scale=(1.0 if male else 1.16) * rng.uniform(0.95, 1.05),
        rate=4.6 * rng.uniform(0.85, 1.15),
        breath=rng.uniform(0.01, 0.05) if male else rng.uniform(0.03, 0.08),
        tilt_db=rng.uniform(-2.0, 2.0),
        open_q=rng.uniform(-0.05, 0.05),
        range_x=rng.uniform(0.8, 1.25),
        jitter=rng.uniform(0.0, 0.005),
        expressiveness=rng.uniform(0.7, 1.3),
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
    phrase: int
    sample_rate: int
    channels: int
    pad_s: tuple[float, float]  # silence before and after the speech, drawn in this range


# ----------------------------------------------------------------------------------------------
# Signal generation
# ----------------------------------------------------------------------------------------------

_CTL_RATE = 200.0  # control-rate contours (Hz), interpolated to samples
_PULSE_TABLE = 4096  # samples of one glottal period in the lookup table
VOICE_SR = 16_000  # the voice is rendered at this rate, then resampled to the file's


def _hop(sr: int) -> int:
    """~16 ms, a multiple of 16 samples so that the FFT sizes stay smooth."""
    return max(16, int(round(sr * 0.016 / 16)) * 16)


def _resonance_gain(f: np.ndarray, centres: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """|H(f)| of cascaded 2-pole resonances (unit gain at 0 Hz); (..., K) -> (..., len(f))."""
    f2 = (f.astype(np.float32)) ** 2
    fc2 = (centres.astype(np.float32) ** 2)[..., None]
    bw2 = (bandwidths.astype(np.float32) ** 2)[..., None]
    power = fc2**2 / ((fc2 - f2) ** 2 + bw2 * f2)
    return np.sqrt(np.prod(power, axis=-2))


def _resonator_filter(x: np.ndarray, sr: int, hop: int, centres: np.ndarray,
                      bandwidths: np.ndarray, tilt_db: float = 0.0) -> np.ndarray:
    """Filter ``x`` frame by frame with a cascade of 2-pole resonances (frames of 2*hop, Hann OLA).

    ``centres`` and ``bandwidths`` are (n_frames, K), frame i centred on sample i*hop. Zero-padding
    each frame to 3*hop keeps most of the resonators' ringing (a few ms) from wrapping around.
    """
    n = x.size
    n_frames = centres.shape[0]
    nfft = 3 * hop  # a frame is 2*hop; the last hop leaves room for the ringing
    padded = np.zeros((n_frames + 1) * hop, dtype=np.float64)
    padded[hop:hop + n] = x[: max(0, min(n, padded.size - hop))]
    frames = np.lib.stride_tricks.sliding_window_view(padded, 2 * hop)[::hop][:n_frames]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))
    spec = np.fft.rfft(frames * window, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = _resonance_gain(f, centres, bandwidths)
    if tilt_db:
        gain *= ((np.maximum(f, 500.0) / 500.0) ** (tilt_db / 6.02)).astype(np.float32)
    y = np.fft.irfft(spec * gain, nfft).reshape(n_frames, 3, hop)
    out = np.zeros((n_frames + 2, hop))
    for j in range(3):
        out[j:j + n_frames] += y[:, j, :]
    return out.reshape(-1)[hop:hop + n]


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
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


def _max_gate(out: np.ndarray, sr: int, start: float, end: float, ramp: float,
              level: float = 1.0) -> None:
    """out = max(out, level * gate): 1 inside [start, end], raised-cosine ramps of ``ramp`` s."""
    a = max(0, int((start - ramp) * sr))
    b = min(out.size, int((end + ramp) * sr) + 2)
    if b <= a:
        return
    t = np.arange(a, b) / sr
    x = np.minimum(np.clip((t - (start - ramp)) / ramp, 0.0, 1.0),
                   np.clip(((end + ramp) - t) / ramp, 0.0, 1.0))
    np.maximum(out[a:b], level * (0.5 - 0.5 * np.cos(np.pi * x)), out=out[a:b])


def synthesize_utterance(rng: np.random.Generator, sr: int, speaker: Speaker, prosody: Prosody,
                         carrier: Carrier, phrase: int, pad_s: tuple[float, float]) -> np.ndarray:
    """One phrase spoken by ``speaker`` with ``prosody``: mono float64 at ``sr``, no room noise."""
    syllables = carrier.phrases[phrase]
    n_syl = len(syllables)
    stress = np.array([s.stress for s in syllables])

    # --- timing: syllable durations, pauses between words, leading and trailing silence
    rate = speaker.rate * prosody.rate_x * math.exp(rng.normal(0.0, 0.08))
    dur = (1.0 / rate) * np.exp(rng.normal(0.0, 0.18, n_syl)) * np.where(stress, 1.15, 0.92)
    dur[-1] *= 1.3  # phrase-final lengthening
    word_end = np.array([s.word_end for s in syllables])
    word_end[-1] = False
    p_pause = min(0.6, 0.22 * prosody.pause_x)
    pauses = np.where(word_end & (rng.random(n_syl) < p_pause),
                      rng.uniform(0.04, 0.14, n_syl) * min(prosody.pause_x, 2.0), 0.0)
    lead, trail = rng.uniform(*pad_s, 2)
    starts = lead + np.concatenate([[0.0], np.cumsum(dur + pauses)[:-1]])
    ends = starts + dur
    total = ends[-1] + trail
    n = int(total * sr)
    t = np.arange(n) / sr
    t_ctl = np.arange(0.0, total + 1.0 / _CTL_RATE, 1.0 / _CTL_RATE)

    # onset consonants take the start of their syllable; the vowel (voicing) follows
    cons = [carrier.consonants.get(s.onset) for s in syllables]
    cons_dur = np.array([min(c[2], 0.4 * d) if c else 0.0 for c, d in zip(cons, dur)])
    voice_start = starts + np.where(cons_dur > 0, cons_dur * 0.8, 0.0)

    # --- pitch contour (semitones re the speaker's neutral f0), at control rate
    speech_start, speech_end = starts[0], ends[-1]
    rel = np.clip((t_ctl - speech_start) / (speech_end - speech_start), 0.0, 1.0)
    st = prosody.f0_st + rng.normal(0.0, 1.0) - 2.0 * rel  # level + clip variation + declination
    excursion = 2.5 * speaker.range_x * prosody.range_x * math.exp(rng.normal(0.0, 0.2))
    centres = 0.5 * (voice_start + ends)
    for i in np.flatnonzero(stress):
        sd = 0.35 * dur[i]
        bump = np.exp(-0.5 * ((t_ctl - centres[i]) / sd) ** 2)
        st = st + excursion * rng.uniform(0.5, 1.2) * bump
    final = np.clip((t_ctl - voice_start[-1]) / (ends[-1] - voice_start[-1]), 0.0, 1.0)
    st = st + prosody.final_st * final
    for _ in range(3):  # slow random drift
        st = st + rng.uniform(0.1, 0.25) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t_ctl
                                                  + rng.uniform(0, 2 * np.pi))
    if prosody.tremor_st > 0:
        st = st + prosody.tremor_st * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t_ctl
                                             + rng.uniform(0, 2 * np.pi))
    creak = max(0.0, prosody.creak) * final  # creaky voice grows over the last syllable
    f0_ctl = speaker.f0 * 2 ** (st / 12) * (1.0 - 0.45 * creak)
    f0 = np.interp(t, t_ctl, np.clip(f0_ctl, 45.0, 700.0))
    jitter_amt = np.interp(t, t_ctl, speaker.jitter + max(0.0, prosody.jitter) + 0.08 * creak)

    # --- glottal source: Rosenberg pulses, per-cycle jitter and shimmer
    cycles = (np.cumsum(f0) / sr).astype(np.int64)
    n_cycles = int(cycles[-1]) + 2
    jit = rng.standard_normal(n_cycles)
    f0 = f0 * (1.0 + jitter_amt * jit[np.minimum(cycles, n_cycles - 1)])
    phase = np.cumsum(f0) / sr
    cyc = np.minimum(phase.astype(np.int64), n_cycles - 1)
    frac = phase - np.floor(phase)
    open_q = float(np.clip(prosody.open_q + speaker.open_q, 0.3, 0.9))
    tp, tn = open_q * 2.5 / 3.5, open_q / 3.5  # opening phase 2.5x the closing phase
    # derivative of the glottal flow (per unit phase) times f0: the excitation, rate-independent;
    # one period tabulated, then looked up by phase
    grid = (np.arange(_PULSE_TABLE) + 0.5) / _PULSE_TABLE
    table = np.where(grid < tp, 0.5 * np.pi / tp * np.sin(np.pi * grid / tp),
                     np.where(grid < open_q,
                              -0.5 * np.pi / tn * np.sin(0.5 * np.pi * (grid - tp) / tn), 0.0))
    src = table[(frac * _PULSE_TABLE).astype(np.int64)] * f0
    shimmer = max(0.0, prosody.shimmer) + 0.15 * np.interp(t, t_ctl, creak)
    src *= np.exp(shimmer * rng.standard_normal(n_cycles)[cyc])

    voice_gate = np.zeros(n)
    for i in range(n_syl):
        _max_gate(voice_gate, sr, voice_start[i], ends[i], 0.015)
    voiced = voice_gate > 0.5
    src_rms = _rms(src[voiced]) if voiced.any() else 1.0
    breath = max(0.0, speaker.breath + prosody.breath + rng.normal(0.0, 0.01))
    aspiration = (rng.standard_normal(n, dtype=np.float32) * (0.4 + 0.6 * (frac < open_q))
                  * breath * 4.0 * src_rms * math.sqrt(sr / 16000.0))
    excitation = (src + aspiration) * voice_gate

    # --- syllable loudness envelope
    env = np.zeros(n)
    for i in range(n_syl):
        level_db = (2.0 if stress[i] else -1.0) + rng.normal(0.0, 1.5)
        level_db -= 3.0 if i == n_syl - 1 else 0.0
        _max_gate(env, sr, starts[i] + 0.02, ends[i] - 0.04, 0.03, 10 ** (level_db / 20))
    excitation *= env

    # --- vocal tract: formant targets per syllable, interpolated between syllables
    hop = _hop(sr)
    n_frames = n // hop + 2
    t_frames = np.arange(n_frames) * hop / sr
    anchor_t, anchor_f = [], []
    for i, s in enumerate(syllables):
        targets = carrier.vowels[s.vowel]
        a, b = voice_start[i], ends[i]
        if len(targets) == 1:
            anchor_t += [a + 0.3 * (b - a), a + 0.7 * (b - a)]
            anchor_f += [targets[0], targets[0]]
        else:
            anchor_t += [a + 0.25 * (b - a), a + 0.8 * (b - a)]
            anchor_f += [targets[0], targets[1]]
    anchor_f_arr = np.asarray(anchor_f, dtype=np.float64) * speaker.formant_scale
    anchor_f_arr *= np.exp(rng.normal(0.0, 0.04, anchor_f_arr.shape))  # token-to-token variation
    formants = np.stack([np.interp(t_frames, anchor_t, anchor_f_arr[:, k]) for k in range(4)], 1)
    formants = np.minimum(formants, 0.45 * sr)
    bandwidths = np.array([80.0, 100.0, 150.0, 250.0]) * np.array([1.0 + 3.0 * breath, 1, 1, 1])
    bandwidths = np.broadcast_to(bandwidths, formants.shape)
    tilt = speaker.tilt_db + prosody.tilt_db + rng.normal(0.0, 1.0)
    vowel_sig = _resonator_filter(excitation, sr, hop, formants, bandwidths, tilt)

    # --- onset consonants: shaped noise bursts, each through one wide resonance
    speech = vowel_sig
    vowel_rms = _rms(vowel_sig[voiced]) if voiced.any() else 1.0
    for i, c in enumerate(cons):
        if not c:
            continue
        centre, bw, _, level, plosive = c
        a, d = starts[i], cons_dur[i]
        lo, hi = int(a * sr), min(n, int((a + 1.3 * d) * sr) + 1)
        if hi - lo < 8:
            continue
        local = (np.arange(lo, hi) / sr - a) / d
        shape = np.exp(-4.0 * local) if plosive else np.sin(np.pi * np.clip(local / 1.3, 0, 1))
        burst = rng.standard_normal(hi - lo) * shape
        nfft = 1 << (hi - lo + sr // 50).bit_length()  # room for the resonance to ring
        fc = min(centre * speaker.formant_scale, 0.45 * sr)
        gain = _resonance_gain(np.fft.rfftfreq(nfft, 1.0 / sr), np.array([fc]), np.array([bw]))
        burst = np.fft.irfft(np.fft.rfft(burst, nfft) * gain, nfft)[: hi - lo]
        target = level * env[min(n - 1, int(voice_start[i] * sr) + 1)] * vowel_rms
        speech[lo:hi] += burst * (target * _rms(shape) / max(_rms(burst), 1e-12))

    # --- level (RMS over the voiced part), kept below full scale
    level_db = -28.0 + speaker.loud_db + prosody.loud_db + rng.normal(0.0, 1.5)
    speech *= 10 ** (level_db / 20) / max(_rms(speech[voiced]) if voiced.any() else _rms(speech),
                                          1e-12)
    peak = float(np.max(np.abs(speech)))
    if peak > 0.9:
        speech *= 0.9 / peak
    return speech


def add_room_noise(rng: np.random.Generator, speech: np.ndarray, sr: int, carrier: Carrier
                   ) -> np.ndarray:
    """The carrier's background: coloured noise at a random level, and mains hum where it has it."""
    noise_db = rng.uniform(*carrier.noise_dbfs)
    out = speech + _coloured_noise(rng, speech.size, carrier.noise_alpha) * 10 ** (noise_db / 20)
    if carrier.hum_hz:
        hum_phase = (2 * np.pi * carrier.hum_hz * np.arange(speech.size) / sr
                     + rng.uniform(0, 2 * np.pi))
        out += (np.sin(hum_phase) + 0.5 * np.sin(3 * hum_phase)) * 10 ** ((noise_db - 6.0) / 20)
    return out


def render_clip(seed: int, spec: ClipSpec) -> np.ndarray:
    """The clip's samples as (frames, channels) int16, from its own random stream.

    The voice is rendered at 16 kHz (what the models see) and resampled to the file's rate; the
    room noise is added at the file's rate, so high-rate files do have a full-band noise floor.
    """
    rng = np.random.default_rng(_seed_seq(seed, spec.layout, "clip", spec.key))
    speaker = make_speaker(seed, spec.layout, spec.speaker, spec.gender)
    k = spec.intensity if spec.intensity is not None else rng.uniform(*NO_DATA_SCALE)
    k *= speaker.expressiveness * math.exp(rng.normal(0.0, 0.15))
    prosody = PROSODY[spec.emotion].scaled(k)
    carrier = CARRIERS[spec.layout]
    speech = synthesize_utterance(rng, VOICE_SR, speaker, prosody, carrier, spec.phrase, spec.pad_s)
    if spec.sample_rate != VOICE_SR:
        speech = soxr.resample(speech, VOICE_SR, spec.sample_rate, quality="HQ")
    channels = [add_room_noise(rng, speech, spec.sample_rate, carrier)]
    if spec.channels == 2:  # a second microphone: a little quieter, its own noise
        channels.append(add_room_noise(rng, speech * rng.uniform(0.8, 0.95), spec.sample_rate,
                                       carrier))
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
    s1_speakers: int | None  # source-1 (CREMA-D-like) speakers to draw from; None: all 91
    s2_actors: int | None  # source-2 (RAVDESS-like) actors to draw from; None: all 24
    train_per_class: int | None  # None: the real class counts
    n_test: int | None  # None: all the rest (the real 1,700)
    ravdess_actors: tuple[int, ...]
    pad_s1: tuple[float, float]
    pad_s2: tuple[float, float]
    pad_ravdess: tuple[float, float]


PROFILES = {
    "tiny": SizeProfile(16, 4, 5, 6, (1, 2), (0.05, 0.2), (0.05, 0.2), (0.05, 0.2)),
    "demo": SizeProfile(8, 4, 40, 30, (1, 2, 8, 11, 15, 22), (0.1, 0.35), (0.1, 0.3), (0.1, 0.3)),
    "full": SizeProfile(None, None, None, None, tuple(range(1, 25)), (0.2, 0.6), (0.6, 1.25),
                        (0.6, 1.25)),
}

# The real Kaggle train class counts (DESIGN.md §2).
KAGGLE_TRAIN_COUNTS = {"bahagia": 1191, "jijik": 1117, "marah": 1190, "netral": 958, "sedih": 1192,
                       "takut": 1150}
S2_FIRST_ID = 7442  # source 2 ids start here (DESIGN.md §2)
# CREMA-D's ANG DIS FEA HAP NEU SAD, in its file order
_CREMA_EMOTIONS = ("marah", "jijik", "takut", "bahagia", "netral", "sedih")


@dataclass(frozen=True)
class KaggleItem:
    file_id: int
    source: int
    speaker: str
    gender: str
    label: str
    intensity: str  # rendah | sedang | tinggi | no_data | tidak_ditentukan
    scale: float | None
    phrase: int

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


def kaggle_catalogue(seed: int) -> list[KaggleItem]:
    """All 8,498 ids of the Kaggle data set as the real one lays them out (DESIGN.md §2).

    Source 1 follows CREMA-D's sorted list: per speaker 12 sentences x 6 emotions, one sentence at
    three intensities (82 files), 20 files missing overall, so ids 0..7441. Source 2 follows
    RAVDESS speech, 60 ids per actor from 7442 with calm and surprised left out (1,056 files).
    """
    # Source 1 is CREMA-D's real file list, so the speaker and sex that ser.data.speakers
    # derives from a synthetic name are the voice that speaks it (speaker splits work on it).
    from ser.data.speakers import crema_files, crema_sex

    levels = {"XX": "no_data", "LO": "rendah", "MD": "sedang", "HI": "tinggi"}
    emotions = dict(zip(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"), _CREMA_EMOTIONS))
    sentences = {code: i for i, code in enumerate(sorted(
        {name.split("_")[1] for name in crema_files()}))}
    items = []
    for file_id, name in enumerate(crema_files()):
        actor, sentence, emotion, level = name[:-4].split("_")
        word = levels.get(level, "no_data")
        items.append(KaggleItem(file_id, 1, f"s1_{int(actor) - 1000:03d}",
                                crema_sex()[int(actor)], emotions[emotion], word,
                                KAGGLE_INTENSITY_SCALE.get(word), sentences[sentence]))
    words = {1: "sedang", 2: "tinggi"}
    for actor in range(1, 25):
        for pos, (emotion, intensity, statement, _rep) in enumerate(_ravdess_actor_files()):
            label = RAVDESS_EMOTIONS[emotion][1]
            if label is None:
                continue
            items.append(KaggleItem(S2_FIRST_ID + (actor - 1) * 60 + pos, 2, f"s2_{actor:02d}",
                                    "male" if actor % 2 else "female", label, words[intensity],
                                    KAGGLE_INTENSITY_SCALE[words[intensity]], statement - 1 + 8))
    return items


def _kaggle_selection(seed: int, size: str) -> tuple[list[KaggleItem], list[KaggleItem]]:
    """(train, test) items for ``size``; full: the real class counts, test the rest."""
    profile = PROFILES[size]
    items = kaggle_catalogue(seed)
    rng = np.random.default_rng(_seed_seq(seed, "indonesian", "selection", size))
    if profile.s1_speakers is not None:
        s1 = sorted({it.speaker for it in items if it.source == 1})
        s2 = sorted({it.speaker for it in items if it.source == 2})
        keep = set(rng.choice(s1, profile.s1_speakers, replace=False).tolist())
        keep |= set(rng.choice(s2, profile.s2_actors, replace=False).tolist())
        items = [it for it in items if it.speaker in keep]
    train: list[KaggleItem] = []
    for label in LABELS:
        pool = [it for it in items if it.label == label]
        want = (KAGGLE_TRAIN_COUNTS[label] if profile.train_per_class is None
                else profile.train_per_class)
        if want > len(pool):
            raise ValueError(f"size {size!r}: {want} {label} files wanted, only {len(pool)} ids")
        train += [pool[i] for i in rng.choice(len(pool), want, replace=False)]
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
                                  it.gender, it.label, it.scale, it.phrase, sr, ch,
                                  profile.pad_s1 if it.source == 1 else profile.pad_s2))
    return specs, train, test


def _ravdess_jobs(size: str) -> list[ClipSpec]:
    profile = PROFILES[size]
    specs = []
    for actor in profile.ravdess_actors:
        for emotion, intensity, statement, repetition in _ravdess_actor_files():
            codes = (emotion, intensity, statement, repetition, actor)
            name = "03-01-" + "-".join(f"{c:02d}" for c in codes)
            emo = RAVDESS_EMOTIONS[emotion][1] or RAVDESS_EMOTIONS[emotion][0]
            specs.append(ClipSpec("ravdess", name, f"Actor_{actor:02d}/{name}.wav",
                                  f"actor{actor:02d}", "male" if actor % 2 else "female", emo,
                                  RAVDESS_INTENSITY_SCALE[intensity], statement - 1, 48000, 1,
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


def _prepare(out: Path, marker: dict | None) -> None:
    """Clear what a previous write left; refuse to touch folders this module did not write."""
    targets = [out / "indonesian", out / "ravdess"]
    present = [p for p in targets if p.exists() and (not p.is_dir() or any(p.iterdir()))]
    if present and marker is None:
        raise FileExistsError(
            f"{', '.join(map(str, present))} already exist(s) and were not written by "
            f"write_synthetic_corpora (no {out / MARKER}); choose another folder or remove them")
    for p in present:
        logger.info("removing the previous synthetic corpus at %s", p)
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def write_synthetic_corpora(out_dir: str | os.PathLike, seed: int = 0, size: str = "demo", *,
                            workers: int | None = None) -> dict[str, Path]:
    """Write the Indonesian (Kaggle layout) and RAVDESS synthetic corpora under ``out_dir``.

    Returns ``{"indonesian": out_dir/"indonesian", "ravdess": out_dir/"ravdess"}``. A complete
    corpus of the same seed, size and generator version is left as is (the demo calls this on
    every run); anything else this function wrote before is replaced. ``workers``: processes
    (default: 2 where there are CPUs for it); the files do not depend on it.
    """
    if size not in PROFILES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    out = Path(out_dir)
    roots = {"indonesian": out / "indonesian", "ravdess": out / "ravdess"}
    marker = _read_marker(out)
    wanted = {"generator": "ser.data.synthetic", "version": VERSION, "seed": int(seed),
              "size": size}
    if marker and marker.get("complete") and all(marker.get(k) == v for k, v in wanted.items()):
        if marker.get("counts") == _on_disk_counts(out):
            logger.info("synthetic corpora (size=%s, seed=%s) already in %s", size, seed, out)
            return roots
        logger.info("%s: files missing or added since it was written; rewriting", out)

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _prepare(out, marker)
    (out / MARKER).write_text(json.dumps({**wanted, "complete": False}, indent=2) + "\n")

    kaggle_specs, train, test = _kaggle_jobs(seed, size)
    specs = kaggle_specs + _ravdess_jobs(size)
    for folder in {(roots[s.layout] / s.relpath).parent for s in specs}:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [(int(seed), s, str(roots[s.layout] / s.relpath)) for s in specs]
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(jobs) >= 64 else 1
    logger.info("writing %d synthetic files (size=%s, seed=%s, %d worker(s)) to %s",
                len(jobs), size, seed, workers, out)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            durations = list(pool.map(_write_clip, jobs, chunksize=16))
    else:
        durations = [_write_clip(job) for job in jobs]

    kaggle = roots["indonesian"]
    (kaggle / "train.csv").write_text(
        "id,label\n" + "".join(f"{it.name},{it.label}\n" for it in train))
    (kaggle / "test.csv").write_text(
        "id\n" + "".join(f"test{j + 1}.wav\n" for j in range(len(test))))
    counts = {"indonesian/train": len(train), "indonesian/test": len(test),
              "ravdess": len(specs) - len(kaggle_specs)}
    (out / MARKER).write_text(json.dumps({**wanted, "complete": True, "counts": counts}, indent=2)
                              + "\n")
    logger.info("wrote %d files, %.0f s of audio, in %.1f s", len(jobs), sum(durations),
                time.perf_counter() - started)
    return roots
