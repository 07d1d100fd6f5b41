"""Test audio for voice activity: synthetic speech clips trimmed to their sound, laid out with
known silences, so the true speech boundaries are known to the sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ser.audio import TARGET_SR, load_audio


def trimmed(path: Path, floor: float = 0.05) -> np.ndarray:
    """The clip from its first to its last 10 ms block louder than ``floor`` x its peak."""
    audio = load_audio(path)
    blocks = np.abs(audio[: audio.size // 160 * 160]).reshape(-1, 160).max(axis=1)
    loud = np.nonzero(blocks > floor * blocks.max())[0]
    return audio[loud[0] * 160:(loud[-1] + 1) * 160]


def layout(clips: list[np.ndarray], gaps: list[float], out: Path,
           rate: int = TARGET_SR) -> tuple[Path, list[tuple[float, float]]]:
    """Write gap, clip, gap, clip, ..., gap (len(gaps) == len(clips) + 1) to ``out``; return the
    file and each clip's (start, end) in seconds."""
    parts, truth, t = [], [], 0.0
    for k, clip in enumerate(clips):
        parts.append(np.zeros(int(gaps[k] * TARGET_SR), np.float32))
        t += gaps[k]
        parts.append(clip)
        truth.append((t, t + clip.size / TARGET_SR))
        t += clip.size / TARGET_SR
    parts.append(np.zeros(int(gaps[-1] * TARGET_SR), np.float32))
    audio = np.concatenate(parts)
    if rate != TARGET_SR:
        import soxr
        audio = soxr.resample(audio, TARGET_SR, rate).astype(np.float32)
    sf.write(out, audio, rate)
    return out, truth
