"""Cut Ogg and MP3 files are flagged as truncated (issue 14, item 4): libsndfile decodes the part
that is there without a word, so the prediction must say it covers only that part.

The files are made here with soundfile (libsndfile's own Ogg Vorbis/Opus and MP3 writers; the
MP3 carries a Xing "Info" header recording its size), whole and cut.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import NO_LIMITS, audio_info, load_audio

RATE = 16000
FORMATS = {"vorbis": ("OGG", "VORBIS", ".ogg"), "opus": ("OGG", "OPUS", ".ogg"),
           "mp3": ("MP3", "MPEG_LAYER_III", ".mp3")}


def encode(kind: str, seconds: float = 6.0, seed: int = 0) -> bytes:
    fmt, subtype, _ = FORMATS[kind]
    noise = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    buf = io.BytesIO()
    # One second at a time: libsndfile's Vorbis writer crashes on very large single writes.
    with sf.SoundFile(buf, "w", RATE, 1, format=fmt, subtype=subtype) as out:
        for start in range(0, noise.size, RATE):
            out.write(noise[start:start + RATE].astype(np.float32))
    return buf.getvalue()


@pytest.fixture(scope="module")
def whole() -> dict[str, bytes]:
    return {kind: encode(kind) for kind in FORMATS}


def as_source(data: bytes, how: str, tmp_path: Path, kind: str):
    if how == "path":
        path = tmp_path / f"clip-{kind}{FORMATS[kind][2]}"
        path.write_bytes(data)
        return path
    if how == "file":
        return io.BytesIO(data)
    return data


def decoded_seconds(data: bytes) -> float:
    return load_audio(data, limits=NO_LIMITS, min_samples=0).size / RATE


@pytest.mark.parametrize("how", ["path", "bytes", "file"])
@pytest.mark.parametrize("kind", list(FORMATS))
def test_whole_files_have_no_warning(whole, kind, how, tmp_path):
    info = audio_info(as_source(whole[kind], how, tmp_path, kind))
    assert info.warning is None
    assert info.duration == pytest.approx(6.0)


@pytest.mark.parametrize("how", ["path", "bytes", "file"])
@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("kind", list(FORMATS))
def test_cut_files_are_flagged_with_the_length_they_hold(whole, kind, fraction, how, tmp_path):
    data = whole[kind][:int(len(whole[kind]) * fraction)]
    info = audio_info(as_source(data, how, tmp_path, kind))
    assert info.warning is not None and info.warning.startswith("truncated: ")
    assert "only" in info.warning and "used" in info.warning
    # The length is what decodes, not the whole recording's (MP3: estimated from the header).
    assert info.duration == pytest.approx(decoded_seconds(data), abs=0.15)
    assert info.duration < 6.0 * fraction + 0.5
    if kind == "mp3":
        assert "Xing header declares" in info.warning or "Info header declares" in info.warning
    else:
        assert "the Ogg stream ends without its end-of-stream page" in info.warning
        assert f"only the {info.duration:.2f} s that are there" in info.warning


def test_an_ogg_cut_at_a_page_boundary_is_flagged(whole):
    data = whole["vorbis"]
    last_page = data.rindex(b"OggS")
    info = audio_info(data[:last_page])  # every page whole, the end-of-stream one missing
    assert "its last page is not marked end-of-stream" in info.warning
    assert audio_info(data[:last_page + 30]).warning is not None  # stops inside the last page


def test_a_file_object_keeps_its_position(whole):
    for data in (whole["vorbis"], whole["mp3"][: len(whole["mp3"]) // 2]):
        upload = io.BytesIO(data)
        upload.seek(123)
        audio_info(upload)
        assert upload.tell() == 123


def id3v2(padding: int) -> bytes:
    """An ID3v2.4 tag of ``padding`` zero bytes (its size is "syncsafe": 7 bits a byte)."""
    size = bytes((padding >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + size + bytes(padding)


def test_mp3_tags_are_not_counted_as_audio(whole):
    """A whole MP3 between an ID3v2 tag and an ID3v1 tag is whole; cut, it is flagged."""
    tagged = id3v2(3000) + whole["mp3"] + b"TAG" + bytes(125)
    assert audio_info(tagged).warning is None
    cut = audio_info(tagged[: len(tagged) // 2])
    assert cut.warning is not None and cut.duration < 3.5
    # Within 1 % of the header's size is whole enough (mpg123 says the same).
    assert audio_info(whole["mp3"][:-100]).warning is None


def test_an_mp3_with_a_vbri_header_is_checked(whole):
    """A VBRI (Fraunhofer) header in place of the Xing one: its byte count is compared too.
    The header is written here into the first (silent) frame of a libsndfile MP3."""
    data = whole["mp3"]
    frame = bytearray(data[:288])  # MPEG-2 layer III, 16 kHz mono: 288-byte frames
    frame[13:160] = bytes(147)     # the Xing header out
    vbri = b"VBRI" + struct.pack(">HHHIIHHHH", 1, 0, 75, len(data), 0, 0, 1, 1, 0)
    frame[36:36 + len(vbri)] = vbri
    marked = bytes(frame) + data[288:]
    assert audio_info(marked).warning is None
    assert "VBRI header declares" in audio_info(marked[: len(marked) // 2]).warning


def test_an_mp3_without_a_size_header_is_not_judged(whole):
    """Without a Xing/VBRI byte count there is nothing to compare the file with: no warning,
    whole or cut (the module docstring says so)."""
    data = bytearray(whole["mp3"])
    data[13:17] = b"\x00\x00\x00\x00"  # the Xing tag gone: the frame is an ordinary one
    assert audio_info(bytes(data)).warning is None
    assert audio_info(bytes(data[: len(data) // 2])).warning is None
