"""Signal effects on the synthesised speech: coloured noise, spectral tilt, tremor, level."""

from __future__ import annotations

import numpy as np


def coloured_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Unit-RMS noise with a 1/f**alpha power spectrum."""
    if alpha == 0.0:
        return rng.standard_normal(n, dtype=np.float32)
    nfft = 1 << max(1, (n - 1).bit_length())
    spec = np.fft.rfft(rng.standard_normal(nfft))
    k = np.arange(spec.size, dtype=np.float64)
    k[0] = 1.0
    noise = np.fft.irfft(spec * k ** (-alpha / 2), nfft)[:n]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def tilt(x: np.ndarray, sr: int, db_per_octave: float) -> np.ndarray:
    """Spectral tilt above 500 Hz (whole-clip FFT: clips are a few seconds)."""
    if not db_per_octave:
        return x
    nfft = 1 << (x.size - 1).bit_length()
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = (np.maximum(f, 500.0) / 500.0) ** (db_per_octave / 6.02)
    return np.fft.irfft(np.fft.rfft(x, nfft) * gain, nfft)[: x.size].astype(np.float32)


def tremor(rng: np.random.Generator, x: np.ndarray, sr: int, depth_pct: float) -> np.ndarray:
    """A 4-7 Hz vibrato of ``depth_pct`` percent (peak frequency deviation) by a moving delay."""
    if depth_pct <= 0.01:
        return x
    rate = rng.uniform(4.0, 7.0)
    amp = depth_pct / 100.0 / (2 * np.pi * rate) * sr  # delay amplitude in samples
    t = np.arange(x.size, dtype=np.float64)
    where = t - amp * (1.0 + np.sin(2 * np.pi * rate * t / sr + rng.uniform(0, 2 * np.pi)))
    return np.interp(where, t, x, left=0.0).astype(np.float32)
