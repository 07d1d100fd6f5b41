"""Frame-level prosody targets by simple DSP: what the tiny backbone regresses when it is
pretrained without emotion labels (:mod:`ser.pretraining.warm_start`).

Why these four: pitch, voicing, loudness and spectral balance are the acoustic cues emotions
change in speech (pitch level/range, vocal effort, breathy or tense voice), and all four are
measurable on any audio, so a backbone can learn to see them from unlabelled clips
(bench/h15b_screening.md).
"""

from __future__ import annotations

import numpy as np

from ser.audio import TARGET_SR

TARGETS = ("log2_f0_over_100hz", "voicing", "log_energy_centred_over_5", "spectral_tilt_over_2")

# Frame j of the tiny encoder (total stride 320 samples, receptive field 2,320) sees samples
# [320 j, 320 j + 2320): its centre 40 ms are analysed.
FRAME, HOP, START = 640, 320, 840
LAGS = (40, 268)  # autocorrelation lags searched at 16 kHz: 400 Hz down to ~60 Hz (as screened)
VOICED_PEAK = 0.5       # normalised autocorrelation peak above which a frame is periodic
VOICED_RANGE_DB = 35.0  # ... and within this of the clip's loudest frame (no voiced hiss)
TILT_SPLIT_HZ = 1000.0


def prosody_targets(wave: np.ndarray, frames: int, sample_rate: int = TARGET_SR) -> np.ndarray:
    """(frames, 4) float32 per 20 ms model frame, columns as :data:`TARGETS`:

    * log2(F0 / 100 Hz), NaN when unvoiced: pitch on an octave scale, the main emotion cue
      (arousal raises it, sadness lowers and flattens it). The shortest lag within 90 % of the
      bias-corrected normalised autocorrelation's peak at 60-400 Hz, climbed to its local top:
      the first near-maximal lag avoids octave-low (subharmonic) errors.
    * voicing (0/1): whether the frame is periodic and not near silence; tells the model where
      pitch exists at all, and voiced/unvoiced timing follows speaking rate.
    * log-energy minus the clip's mean, / 5: loudness contour independent of recording level
      (the waveform is normalised anyway), vocal effort and stress.
    * spectral tilt, log10 of energy below / above 1 kHz, / 2: voice quality (tense or loud
      voices have flatter spectra, breathy or soft voices steeper).

    The scalings bring each target to about unit range so the summed loss weighs them alike.
    """
    if sample_rate != TARGET_SR:
        raise ValueError(f"prosody_targets expects {TARGET_SR} Hz audio, got {sample_rate} Hz")
    n = FRAME
    x = np.pad(np.asarray(wave, np.float64), (0, START + n + HOP * frames))
    idx = START + HOP * np.arange(frames)[:, None] + np.arange(n)[None, :]
    f = x[idx]
    f = f - f.mean(1, keepdims=True)
    energy = (f ** 2).mean(1) + 1e-10
    spec = np.abs(np.fft.rfft(f * np.hanning(n), 2048)) ** 2
    ac = np.fft.irfft(np.abs(np.fft.rfft(f, 2048)) ** 2)[:, :n]
    lags = np.arange(*LAGS)
    r = ac[:, lags] / (ac[:, :1] + 1e-12) * n / (n - lags)
    peak = r.max(1)
    best = (r >= 0.9 * peak[:, None]).argmax(1)  # the first lag near the maximum: no subharmonics
    rows = np.arange(frames)
    for _ in range(40):  # then climb to that peak's top
        best = best + (r[rows, np.minimum(best + 1, r.shape[1] - 1)] > r[rows, best])
    loud = 10 * np.log10(energy) > 10 * np.log10(energy.max()) - VOICED_RANGE_DB
    voiced = (peak > VOICED_PEAK) & loud
    f0 = np.where(voiced, np.log2(sample_rate / lags[best] / 100.0), np.nan)
    log_energy = np.log(energy)
    log_energy = log_energy - log_energy.mean()
    k = int(TILT_SPLIT_HZ / (sample_rate / 2048))
    tilt = np.log10((spec[:, :k].sum(1) + 1e-10) / (spec[:, k:].sum(1) + 1e-10))
    return np.stack([f0, voiced.astype(np.float64), log_energy / 5.0, tilt / 2.0],
                    1).astype(np.float32)


__all__ = ["TARGETS", "prosody_targets"]
