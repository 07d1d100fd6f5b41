"""Augmentation: each transform does what it says, reproducibly from the generator."""

from __future__ import annotations

import numpy as np
import pytest

from ser.augment import Augment, add_noise

ONLY = dict(p_noise=0.0, p_gain=0.0, p_speed=0.0, p_shift=0.0)


def tone(n: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 200 * np.arange(n) / 16000)).astype(np.float32)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noise_has_the_requested_snr(snr):
    clean = tone()
    noisy = add_noise(clean, snr, np.random.default_rng(0))
    measured = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
    assert measured == pytest.approx(snr, abs=0.3)


def test_silence_gets_no_noise():
    assert not add_noise(np.zeros(1000, np.float32), 10, np.random.default_rng(0)).any()


def test_gain_within_range():
    aug = Augment(**{**ONLY, "p_gain": 1.0, "gain_db": (6.0, 6.0)})
    out = aug(tone(), np.random.default_rng(0))
    assert np.abs(out).max() / np.abs(tone()).max() == pytest.approx(10 ** (6 / 20), rel=1e-4)


def test_speed_changes_length_by_the_factor():
    aug = Augment(**{**ONLY, "p_speed": 1.0, "speed": (1.1, 1.1)})
    assert aug(tone(), np.random.default_rng(0)).size == pytest.approx(16000 / 1.1, abs=2)


def test_shift_is_circular():
    aug = Augment(**{**ONLY, "p_shift": 1.0})
    out = aug(tone(), np.random.default_rng(0))
    assert out.size == 16000 and not np.array_equal(out, tone())
    assert sorted(out.tolist()) == pytest.approx(sorted(tone().tolist()))


def test_same_generator_state_same_result_and_float32():
    aug = Augment(p_noise=1, p_gain=1, p_speed=1, p_shift=1)
    a = aug(tone(), np.random.default_rng(7))
    b = aug(tone(), np.random.default_rng(7))
    c = aug(tone(), np.random.default_rng(8))
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)
