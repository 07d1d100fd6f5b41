"""Audio input: every format, rate, depth and channel count in; 16 kHz mono out; named errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import MIN_SAMPLES, TARGET_SR, AudioError, audio_info, load_audio, to_mono


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


FORMATS = [
    ("WAV", "PCM_16", "wav"),
    ("WAV", "PCM_24", "wav"),
    ("WAV", "FLOAT", "wav"),
    ("FLAC", "PCM_16", "flac"),
    ("OGG", "VORBIS", "ogg"),
    ("MP3", "MPEG_LAYER_III", "mp3"),
]


@pytest.mark.parametrize("fmt,subtype,ext", FORMATS)
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_formats_and_rates_give_16k_mono(tmp_path: Path, fmt, subtype, ext, rate):
    if fmt == "MP3" and rate == 8000:
        rate = 16000  # libsndfile's mp3 encoder has no 8 kHz mode with its defaults
    path = tmp_path / f"clip.{ext}"
    sf.write(path, tone(1.0, rate, channels=2), rate, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # mp3 and vorbis pad or trim a few ms at the edges; PCM must be exact to the sample.
    tolerance = 0.06 * TARGET_SR if fmt in ("MP3", "OGG") else 2
    assert abs(audio.size - TARGET_SR) <= tolerance
    assert 0.2 < np.abs(audio).max() <= 1.0


def test_channels_are_averaged(tmp_path: Path):
    left = tone(0.5, 16000)
    stereo = np.stack([left, -left * 0], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), left / 2, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 2, 4, 6])
def test_any_channel_count(tmp_path: Path, channels: int):
    sf.write(tmp_path / "c.wav", tone(0.3, 48000, channels), 48000, subtype="PCM_24")
    assert load_audio(tmp_path / "c.wav").shape == (int(0.3 * TARGET_SR),)


def test_extension_does_not_decide_format(tmp_path: Path):
    flac_named_wav = tmp_path / "really_flac.wav"
    sf.write(flac_named_wav, tone(0.5, 16000), 16000, format="FLAC")
    assert audio_info(flac_named_wav).format == "FLAC"
    assert load_audio(flac_named_wav).size == 8000


def test_bytes_and_file_objects(tmp_path: Path):
    buf = io.BytesIO()
    sf.write(buf, tone(0.5, 44100), 44100, format="WAV")
    data = buf.getvalue()
    assert load_audio(data).size == 8000
    assert load_audio(io.BytesIO(data)).size == 8000
    with pytest.raises(AudioError, match="upload.wav"):
        load_audio(b"hello", name="upload.wav")


def test_silence_is_valid(tmp_path: Path):
    sf.write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    assert not load_audio(tmp_path / "quiet.wav").any()


def test_slice_reads_only_the_window(tmp_path: Path):
    rate = 48000
    ramp = np.linspace(-1, 1, 3 * rate, dtype=np.float32)
    sf.write(tmp_path / "ramp.flac", ramp, rate, subtype="PCM_24")
    part = load_audio(tmp_path / "ramp.flac", offset=1.0, duration=0.5)
    assert part.size == 8000
    # The middle of the slice matches the ramp's value 1.25 s in (resampling blurs the edges).
    assert part[4000] == pytest.approx(ramp[int(1.25 * rate)], abs=1e-3)


def test_slice_past_the_end_is_an_error(tmp_path: Path):
    sf.write(tmp_path / "short.wav", tone(1.0, 16000), 16000)
    with pytest.raises(AudioError) as err:
        load_audio(tmp_path / "short.wav", offset=5.0)
    assert err.value.kind == "bad_slice"


def broken_files(tmp_path: Path) -> dict[str, Path]:
    """One file per failure kind, as a user might have them lying around."""
    files = {}
    files["missing"] = tmp_path / "nope.wav"
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].write_bytes(b"")
    files["not_audio"] = tmp_path / "notes.wav"
    files["not_audio"].write_text("this is a text file, not audio\n" * 20)
    good = io.BytesIO()
    sf.write(good, tone(1.0, 16000), 16000, format="WAV")
    files["truncated"] = tmp_path / "cut.wav"
    files["truncated"].write_bytes(good.getvalue()[:30])  # RIFF header cut before the fmt chunk
    files["too_short"] = tmp_path / "blip.wav"
    sf.write(files["too_short"], tone(0.01, 16000), 16000)  # 160 samples < 400
    files["non_finite"] = tmp_path / "nan.wav"
    bad = tone(0.5, 16000)
    bad[100] = np.nan
    sf.write(files["non_finite"], bad, 16000, subtype="FLOAT")
    return files


def test_each_broken_file_gets_its_named_error(tmp_path: Path):
    for kind, path in broken_files(tmp_path).items():
        with pytest.raises(AudioError) as err:
            load_audio(path)
        assert err.value.kind == kind, (kind, err.value)
        assert str(path) in str(err.value)
        assert err.value.reason


def test_too_short_is_judged_after_resampling(tmp_path: Path):
    # 600 samples at 48 kHz are 200 at 16 kHz: too short for the backbone.
    sf.write(tmp_path / "x.wav", tone(600 / 48000, 48000), 48000)
    with pytest.raises(AudioError, match="too short"):
        load_audio(tmp_path / "x.wav")
    sf.write(tmp_path / "y.wav", tone(MIN_SAMPLES / 16000, 16000), 16000)
    assert load_audio(tmp_path / "y.wav").size == MIN_SAMPLES


def test_to_mono_checks_arrays_the_same_way():
    assert to_mono(tone(0.5, 8000, channels=2), 8000).shape == (8000,)
    with pytest.raises(AudioError, match="NaN"):
        to_mono(np.full(8000, np.inf, np.float32), 16000)
