"""On-the-fly augmentation of training clips for robustness to recording conditions.

Off by default (``data.augment: null``); ``data/augment=default`` turns it on. Each transform
draws from the generator it is given, so a clip's augmentation is a function of the seed, the
epoch and the clip: a resumed run sees exactly what an uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from ser.audio import TARGET_SR


@dataclass
class Augment:
    """Each transform applies with its own probability, in a fixed order.

    noise: white noise at an SNR drawn from ``snr_db``; gain: a level change in dB; speed:
    resampling by a factor (tempo and pitch together, as Kaldi's speed perturbation); shift: a
    circular time shift of up to ``max_shift_s`` seconds either way.
    """

    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)
    p_speed: float = 0.3
    speed: tuple[float, float] = (0.9, 1.1)
    p_shift: float = 0.3
    max_shift_s: float = 0.25

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(wave, dtype=np.float32)
        if rng.random() < self.p_speed:
            factor = rng.uniform(*self.speed)
            # Playing `factor` times faster == resampling to rate/factor at the same nominal rate.
            out = soxr.resample(out, TARGET_SR, TARGET_SR / factor, quality="HQ")
        if rng.random() < self.p_shift and out.size:
            out = np.roll(out, int(rng.uniform(-self.max_shift_s, self.max_shift_s) * TARGET_SR))
        if rng.random() < self.p_gain:
            out = out * np.float32(10 ** (rng.uniform(*self.gain_db) / 20))
        if rng.random() < self.p_noise:
            out = add_noise(out, rng.uniform(*self.snr_db), rng)
        return out.astype(np.float32, copy=False)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise scaled so that signal power / noise power is ``snr_db``; silence stays silent."""
    power = float(np.mean(np.square(wave, dtype=np.float64))) if wave.size else 0.0
    if power == 0.0:
        return wave
    noise = rng.standard_normal(wave.size).astype(np.float32)
    noise *= np.float32(np.sqrt(power / 10 ** (snr_db / 10)))
    return wave + noise
