"""One synthetic clip from its :class:`ClipSpec`: speech in the speaker's voice and the emotion's
prosody, the room's noise, the file's sample rate and channels; and its file."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from ser.data.synthetic.effects import coloured_noise, rms, tilt, tremor
from ser.data.synthetic.languages import ROOMS, Room
from ser.data.synthetic.prosody import NO_DATA_SCALE, PROSODY
from ser.data.synthetic.seeds import seed_seq
from ser.data.synthetic.voices import Speaker, make_speaker


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
    speech = tremor(rng, speech, sr, speaker.flutter + p.flutter)
    speech = tilt(speech, sr, p.tilt_db + rng.normal(0.0, 0.7))
    level_db = -26.0 + speaker.loud_db + p.loud_db + rng.normal(0.0, 1.5)
    speech = speech * (10 ** (level_db / 20) / max(rms(speech[np.abs(speech) > 1e-3]), 1e-9))
    peak = float(np.max(np.abs(speech)))
    if peak > 0.9:
        speech *= 0.9 / peak
    before, after = (int(rng.uniform(*spec.pad_s) * sr) for _ in range(2))
    return np.concatenate([np.zeros(before, np.float32), speech.astype(np.float32),
                           np.zeros(after, np.float32)]), sr


def add_room_noise(rng: np.random.Generator, speech: np.ndarray, sr: int, room: Room) -> np.ndarray:
    """The room's background: coloured noise at a random level, and mains hum where it has it."""
    noise_db = rng.uniform(*room.noise_dbfs)
    out = speech + coloured_noise(rng, speech.size, room.noise_alpha) * 10 ** (noise_db / 20)
    if room.hum_hz:
        hum_phase = (2 * np.pi * room.hum_hz * np.arange(speech.size) / sr
                     + rng.uniform(0, 2 * np.pi))
        out += (np.sin(hum_phase) + 0.5 * np.sin(3 * hum_phase)) * 10 ** ((noise_db - 6.0) / 20)
    return out


def render_clip(seed: int, spec: ClipSpec) -> np.ndarray:
    """The clip's samples as (frames, channels) int16, from its own random stream."""
    rng = np.random.default_rng(seed_seq(seed, spec.layout, "clip", spec.key))
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


def write_clip(job: tuple[int, ClipSpec, str]) -> float:
    """Render ``(seed, spec, path)`` and write it as 16-bit WAV (one worker's job); its seconds."""
    seed, spec, path = job
    data = render_clip(seed, spec)
    sf.write(path, data, spec.sample_rate, subtype="PCM_16", format="WAV")
    return data.shape[0] / spec.sample_rate
