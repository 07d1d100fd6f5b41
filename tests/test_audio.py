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


# -- bounds read from the header before decoding (issue 14, item 1) --------------------------

from ser.audio import DEFAULT_LIMITS, NO_LIMITS, AudioLimits  # noqa: E402


def silence_file(path: Path, seconds: float, rate: int, channels: int, fmt: str = "FLAC") -> Path:
    """Long silence written block by block (a small file however long: FLAC packs silence)."""
    block = np.zeros((min(int(seconds * rate), 1 << 16), channels), np.int16)
    left = int(seconds * rate)
    with sf.SoundFile(path, "w", rate, channels, format=fmt, subtype="PCM_16") as out:
        while left > 0:
            out.write(block[:left])
            left -= len(block)
    return path


@pytest.mark.parametrize(
    ("seconds", "rate", "channels", "kind", "words"),
    [
        (11 * 60, 8000, 1, "too_long", "11 min 0 s of audio; at most 10 min 0 s"),
        (1.0, 8000, 9, "too_many_channels", "9 channels: at most 8"),
        (20.0, 100, 1, "bad_rate", "sample rate 100 Hz"),
    ],
    ids=["11-minute", "9-channel", "100-Hz"],
)
def test_header_bounds_refuse_before_decoding(tmp_path: Path, monkeypatch, seconds, rate,
                                              channels, kind, words):
    fmt = "WAV" if rate < 1000 or channels > 8 else "FLAC"  # FLAC: no 100 Hz, at most 8 channels
    path = silence_file(tmp_path / f"hostile.{fmt.lower()}", seconds, rate, channels, fmt)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoding started although the header is out of bounds")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert err.value.kind == kind
    assert words in err.value.reason and str(path) in str(err.value)


def test_bounds_are_options(tmp_path: Path):
    path = silence_file(tmp_path / "long.flac", 90.0, 8000, 2)
    with pytest.raises(AudioError, match="too long"):
        load_audio(path, limits=AudioLimits(max_seconds=60))
    assert load_audio(path, limits=NO_LIMITS).size == 90 * TARGET_SR
    # A slice within the bound is fine: windowed readers of long files decode a few seconds.
    assert load_audio(path, offset=10, duration=4, limits=AudioLimits(max_seconds=60)).size == 4 * TARGET_SR
    slow = silence_file(tmp_path / "slow.wav", 1.0, 100, 1, "WAV")
    assert load_audio(slow, limits=AudioLimits(min_rate=50)).size == TARGET_SR
    with pytest.raises(ValueError, match="min_rate"):
        AudioLimits(min_rate=48000, max_rate=8000)


def test_a_long_many_channel_file_decodes_in_bounded_memory(tmp_path: Path):
    """2 min of 8-channel 48 kHz silence (a few KB of FLAC): decoding it whole at once would
    allocate 2 min x 48000 x 8 x 4 B = 184 MB; streamed, the peak is about the 16 kHz mono
    result (7.7 MB) plus blocks."""
    import tracemalloc

    path = silence_file(tmp_path / "wide.flac", 120.0, 48000, 8)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        audio = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio.shape == (120 * TARGET_SR,) and not audio.any()
    assert peak < 3 * audio.nbytes, f"peak {peak / 1e6:.0f} MB for a {audio.nbytes / 1e6:.1f} MB result"


def test_streamed_decoding_equals_decoding_whole(tmp_path: Path):
    """Block-wise mix-down and resampling give the same samples as doing it in one go."""
    import soxr

    rng = np.random.default_rng(3)
    wave = (0.3 * rng.standard_normal((200_000, 3))).astype(np.float32)  # > 3 blocks
    sf.write(tmp_path / "n.wav", wave, 44100, subtype="FLOAT")
    whole = soxr.resample(wave.mean(axis=1, dtype=np.float32), 44100, TARGET_SR, quality="HQ")
    np.testing.assert_allclose(load_audio(tmp_path / "n.wav"), whole, atol=1e-6)


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "it looks like a PNG image"),
        (b"%PDF-1.7\n" + b"x" * 200, "it looks like a PDF document"),
        (b"<!doctype html><html>" + b" " * 200, "it looks like HTML or XML text"),
        (bytes(range(7, 250)), "its first bytes match no audio format"),
    ],
    ids=["png", "pdf", "html", "binary"],
)
def test_not_audio_is_said_in_plain_words(head, words):
    with pytest.raises(AudioError) as err:
        load_audio(head, name="upload")
    assert err.value.kind == "not_audio"
    assert words in err.value.reason
    assert "b'" not in str(err.value) and "\\x" not in str(err.value)


def test_a_file_object_is_read_in_place(tmp_path: Path):
    """A seekable file (an upload spooled to disk) is decoded without copying it whole."""
    path = silence_file(tmp_path / "s.flac", 2.0, 16000, 1)

    class NoWholeRead(io.BufferedReader):
        def read(self, size=-1):
            assert size is not None and size >= 0, "the whole file was read into memory"
            return super().read(size)

    with NoWholeRead(io.FileIO(path)) as fh:
        fh.seek(5)  # read from its start, wherever the caller left it
        assert load_audio(fh).size == 2 * TARGET_SR
    assert DEFAULT_LIMITS.max_seconds == 600 and DEFAULT_LIMITS.max_channels == 8
