"""Decoding: any readable file (or bytes, or an array) to 16 kHz mono float32, or an AudioError.

Limits are checked from the header first; the data then streams through in blocks, mixed down
and resampled by soxr on the way (see the :mod:`ser.audio` overview for why).
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from ser.audio.errors import AudioError
from ser.audio.limits import DEFAULT_LIMITS, AudioLimits
from ser.audio.opening import AudioSource, name_of, open_audio

TARGET_SR = 16_000
# The Wav2Vec2 convolutional feature encoder needs 400 samples (25 ms at 16 kHz) for one frame.
MIN_SAMPLES = 400

# Frames read (and mixed down, resampled) at a time: 2 MB for 8 channels of float32.
_BLOCK_FRAMES = 1 << 16


def load_audio(
    source: AudioSource,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    target_sr: int = TARGET_SR,
    min_samples: int = MIN_SAMPLES,
    name: str | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Decode ``source`` to mono float32 at ``target_sr``.

    ``offset`` and ``duration`` (seconds) select a slice; where the format can seek (wav, flac,
    ogg, mp3 through libsndfile) only that slice is decoded. Silence is valid audio; NaN or
    infinite samples and clips shorter than ``min_samples`` after resampling are not. ``limits``
    are checked from the header before anything is decoded (see :class:`AudioLimits`); a file
    object is read from its start, in place.
    """
    label = name_of(source, name)
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(label, f"bad slice: offset={offset}, duration={duration}", "bad_slice")
    with open_audio(source, label) as snd:
        rate = snd.samplerate
        limits.check_format(label, rate=rate, channels=snd.channels)
        start = int(round(offset * rate))
        if start and snd.frames and start >= snd.frames:
            raise AudioError(
                label,
                f"slice starts at {offset:.3f} s, after the end ({snd.frames / rate:.3f} s)",
                "bad_slice",
            )
        count = -1 if duration is None else max(1, int(round(duration * rate)))
        span = (snd.frames - start) if count < 0 else min(count, max(snd.frames - start, 0))
        limits.check_length(label, span / rate)
        # The header may understate the length: never read more than the limit (plus one frame
        # to tell "exactly at the limit" from "past it").
        cap = None if not limits.max_seconds else int(limits.max_seconds * rate) + 1
        if cap is not None and (count < 0 or count > cap):
            count = cap
        try:
            if start:
                snd.seek(start)
            mono, read, bad = _read_mono(snd, count, rate, target_sr)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(label, f"truncated or corrupt audio data ({exc})", "truncated") from exc
    if cap is not None and read >= cap:
        limits.check_length(label, read / rate)
    if bad:
        raise AudioError(label, f"{bad} NaN or infinite samples", "non_finite")
    return _checked_length(mono, target_sr, min_samples, label)


def _read_mono(snd: sf.SoundFile, count: int, rate: int,
               target_sr: int) -> tuple[np.ndarray, int, int]:
    """Read ``count`` frames (-1: to the end) block by block, mixing down and resampling each
    block as it comes; returns (mono at ``target_sr``, frames read, non-finite samples)."""
    resampler = (soxr.ResampleStream(rate, target_sr, 1, dtype="float32", quality="HQ")
                 if rate != target_sr else None)
    parts: list[np.ndarray] = []
    read = bad = 0
    while count < 0 or read < count:
        want = _BLOCK_FRAMES if count < 0 else min(_BLOCK_FRAMES, count - read)
        block = snd.read(frames=want, dtype="float32", always_2d=True)
        if not len(block):
            break
        read += len(block)
        finite = np.isfinite(block)
        if not finite.all():
            bad += int((~finite).sum())
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        parts.append(resampler.resample_chunk(mono) if resampler is not None else mono)
        if len(block) < want:
            break
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    mono = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return mono, read, bad


def to_mono(array: np.ndarray, sampling_rate: int, *, target_sr: int = TARGET_SR,
            min_samples: int = MIN_SAMPLES, name: str = "<array>",
            limits: AudioLimits = DEFAULT_LIMITS) -> np.ndarray:
    """The same checks and conversion as :func:`load_audio`, for audio already in memory.

    Accepts (samples,), or (samples, channels) as soundfile returns it. Only the rate and
    channel bounds of ``limits`` apply: the array's length is already paid for, but a tiny rate
    would still multiply it in the resampler.
    """
    data = np.asarray(array, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise AudioError(name, f"expected 1-D or (samples, channels) audio, got shape {data.shape}",
                         "not_audio")
    limits.check_format(name, rate=int(sampling_rate), channels=data.shape[1])
    return _finish(data, int(sampling_rate), target_sr, min_samples, name)


def _finish(data: np.ndarray, rate: int, target_sr: int, min_samples: int, label: str) -> np.ndarray:
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(label, f"{bad} NaN or infinite samples", "non_finite")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != target_sr and mono.size:
        mono = soxr.resample(mono, rate, target_sr, quality="HQ").astype(np.float32, copy=False)
    return _checked_length(mono, target_sr, min_samples, label)


def _checked_length(mono: np.ndarray, target_sr: int, min_samples: int, label: str) -> np.ndarray:
    if mono.size < min_samples:
        raise AudioError(
            label,
            f"too short: {mono.size} samples at {target_sr} Hz ({mono.size / target_sr * 1000:.0f} ms);"
            f" the backbone needs at least {min_samples} ({min_samples / target_sr * 1000:.0f} ms)",
            "too_short",
        )
    return np.ascontiguousarray(mono, dtype=np.float32)
