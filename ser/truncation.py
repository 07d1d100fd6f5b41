"""Is this audio file whole? Structure checks that tell a cut file (a copy or download stopped
early) from a whole one, without decoding it.

libsndfile opens a cut file and decodes the part that is there, in silence, so without these
checks a prediction made on half a recording looks like one made on all of it. Each check reads
only the few bytes it needs (a header, the last page) and says how much of the file is left:

* WAV / AIFF: the data chunk holds fewer bytes than its header declares (libsndfile's header
  log says so; placeholder sizes of unfinished streaming writers are not a cut).
* Ogg (Vorbis, Opus): a whole stream ends with a complete page (27-byte header,
  segment table, body, ending exactly at the end of the file) marked end-of-stream
  (``header_type & 0x04``). A cut one stops in the middle of a page, or at a page that is not
  the last. The length libsndfile reports is then already what decodes, from the last complete
  page.
* MP3: only a file whose first frame carries a Xing/Info (LAME, ffmpeg, libsndfile) or VBRI
  (Fraunhofer) header recording the stream's size in bytes can be checked: it is cut when the
  file (less ID3v2 tags at the start and an ID3v1 tag at the end) is more than 1 % short of it,
  as mpg123 warns ("Xing stream size off by more than 1%"). libsndfile then reports the
  header's full length, so the length held is estimated from the header's table of contents
  (byte position at each percent of the duration), else in proportion to the bytes. A plain
  MP3 without such a header (or with only a frame count) records nothing to compare with, so
  it cannot be told from a whole one without decoding it: no check, no guess.
* FLAC: a cut file fails to open ("lost sync"), an error already.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

import soundfile as sf

# libsndfile's header log: "data : 68800 (should be 34400)" when a WAV (or AIFF SSND) chunk
# declares more bytes than the file holds; libsndfile then reads what is there, in silence.
_CUT_CHUNK = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Sizes that writers put in a header they could not finish (streaming): not a sign of a cut.
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF, 0xFFFFFFFF - 8)

# The largest Ogg page: 27-byte header, 255 segment sizes, 255 segments of 255 bytes.
_OGG_MAX_PAGE = 27 + 255 + 255 * 255
# Tails searched for the last Ogg page: most pages are a few KB; two of the largest pages
# always hold the start of one page whole.
_OGG_TAILS = (16 * 1024, 2 * _OGG_MAX_PAGE)
_OGG_EOS = 0x04

# An MP3 file shorter than its Xing/VBRI byte count by more than this fraction is cut.
_MP3_SHORT = 0.01
# Bytes searched for the first MPEG frame after the ID3v2 tags (encoders may pad).
_MP3_SYNC_SEARCH = 4096
_ID3V1 = 128


class FileBytes:
    """Reads at given offsets of an open file without moving its position: a descriptor
    (``os.pread``) or a seekable file object (its position restored after each read)."""

    def __init__(self, target: int | BinaryIO, size: int) -> None:
        self.target = target
        self.size = size

    def read(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes from ``offset`` (fewer at the end of the file)."""
        offset = max(0, offset)
        count = max(0, min(count, self.size - offset))
        if not count:
            return b""
        if isinstance(self.target, int):
            parts: list[bytes] = []
            while count:
                part = os.pread(self.target, count, offset)
                if not part:
                    break
                parts.append(part)
                offset += len(part)
                count -= len(part)
            return b"".join(parts)
        position = self.target.tell()
        try:
            self.target.seek(offset)
            return self.target.read(count)
        finally:
            self.target.seek(position)


@dataclass(frozen=True)
class Cut:
    """A file that holds less than a whole recording: why (``reason``, for the ``warning``
    column) and the frames it holds (at the file's own rate; an estimate for MP3)."""

    reason: str
    frames: int


def find_cut(snd: sf.SoundFile, data: FileBytes | None = None) -> Cut | None:
    """The :class:`Cut` of an open file, or None for a whole file (or one that cannot be
    checked, see the module docstring). ``data`` gives the Ogg and MP3 checks the file's bytes;
    without it only the WAV/AIFF check runs."""
    if not snd.samplerate:
        return None
    cut = _chunk_cut(snd)
    if cut is None and data is not None and data.size:
        if snd.format == "OGG":
            cut = _ogg_cut(snd, data)
        elif snd.format == "MP3":
            cut = _mp3_cut(snd, data)
    return cut


def truncation_warning(snd: sf.SoundFile, data: FileBytes | None = None) -> str | None:
    """Why a readable file is not whole (a copy or download stopped early), or None. The part
    that is there decodes; the caller must say the result covers only that part."""
    cut = find_cut(snd, data)
    return cut.reason if cut is not None else None


# -- WAV / AIFF ----------------------------------------------------------------------------------


def _chunk_cut(snd: sf.SoundFile) -> Cut | None:
    found = _CUT_CHUNK.search(snd.extra_info or "")
    if found is None:
        return None
    declared, present = int(found.group(2)), int(found.group(3))
    if declared in _PLACEHOLDER_SIZES or declared <= present or present <= 0:
        return None
    held = snd.frames / snd.samplerate
    return Cut(f"truncated: the header declares {held * declared / present:.2f} s of audio, the "
               f"file holds {held:.2f} s ({present} of {declared} data bytes); only that part "
               "was used", snd.frames)


# -- Ogg -----------------------------------------------------------------------------------------


def _ogg_cut(snd: sf.SoundFile, data: FileBytes) -> Cut | None:
    problem = None
    for length in _OGG_TAILS:
        start = max(0, data.size - length)
        verdict = _ogg_tail(data.read(start, data.size - start))
        if verdict is not None:
            problem = verdict or None  # "" is a whole stream
            break
        if start == 0:
            break  # no page structure found at all: nothing to say
    if problem is None:
        return None
    held = snd.frames / snd.samplerate
    return Cut(f"truncated: the Ogg stream ends without its end-of-stream page ({problem}); "
               f"only the {held:.2f} s that are there were used", snd.frames)


def _ogg_tail(tail: bytes) -> str | None:
    """How the page sequence in ``tail`` (the end of the file) ends: "" whole, a problem in
    words, None when no start of a page in it leads to a consistent sequence of pages."""
    start = tail.find(b"OggS")
    while start >= 0:
        verdict = _ogg_walk(tail, start)
        if verdict is not None:
            return verdict
        start = tail.find(b"OggS", start + 1)
    return None


def _ogg_walk(tail: bytes, pos: int) -> str | None:
    """Follow pages from ``pos`` to the end of ``tail``; None when ``pos`` turns out not to
    start a page (a chance "OggS" in a packet, or a page followed by something else)."""
    flags = None
    while pos < len(tail):
        header = tail[pos:pos + 27]
        if not b"OggS".startswith(header[:4]) or (len(header) > 4 and header[4] != 0):
            return None  # not "OggS" with structure version 0
        if len(header) < 27:
            return "the file stops inside a page header"
        segments = header[26]
        table = tail[pos + 27:pos + 27 + segments]
        end = pos + 27 + segments + sum(table)
        if len(table) < segments or end > len(tail):
            return "the file stops in the middle of a page"
        flags = header[5]
        pos = end
    if flags is None:
        return None
    return "" if flags & _OGG_EOS else "its last page is not marked end-of-stream"


# -- MP3 -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StreamHeader:
    """What a Xing/Info or VBRI header records about the whole stream."""

    kind: str
    size: int
    toc: bytes | None  # 100 byte positions, in 256ths of the size, at each percent of the time


def _mp3_cut(snd: sf.SoundFile, data: FileBytes) -> Cut | None:
    first = _id3v2_end(data)
    head = data.read(first, _MP3_SYNC_SEARCH)
    frame = _first_frame(head)
    if frame is None:
        return None
    header = _stream_header(head[frame:])
    if header is None or header.size <= 0:
        return None
    end = data.size
    if end - _ID3V1 >= first and data.read(end - _ID3V1, 3) == b"TAG":
        end -= _ID3V1
    held_bytes = end - (first + frame)
    if held_bytes >= header.size * (1 - _MP3_SHORT):
        return None
    fraction = max(0.0, held_bytes / header.size)
    frames = int(snd.frames * _time_fraction(fraction, header.toc))
    declared = snd.frames / snd.samplerate
    return Cut(f"truncated: the MP3's {header.kind} header declares {header.size} bytes "
               f"({declared:.2f} s of audio), the file holds {held_bytes} "
               f"({fraction:.0%}, about {frames / snd.samplerate:.2f} s); only that part was used",
               frames)


def _id3v2_end(data: FileBytes) -> int:
    """Where the ID3v2 tags at the start of the file end (0 without any)."""
    position = 0
    for _ in range(8):  # a few tags in a row at most; more is not an MP3 we can check
        tag = data.read(position, 10)
        if len(tag) < 10 or not tag.startswith(b"ID3"):
            break
        size = 0
        for byte in tag[6:10]:
            size = (size << 7) | (byte & 0x7F)  # "syncsafe": 7 bits per byte
        position += 10 + size + (10 if tag[5] & 0x10 else 0)  # a footer repeats the header
    return position


def _first_frame(head: bytes) -> int | None:
    """Offset in ``head`` of the first valid MPEG layer III frame header."""
    position = head.find(b"\xff")
    while 0 <= position <= len(head) - 4:
        b1, b2 = head[position + 1], head[position + 2]
        if ((b1 & 0xE0) == 0xE0 and (b1 >> 3) & 3 != 1 and (b1 >> 1) & 3 == 1
                and b2 >> 4 != 0xF and (b2 >> 2) & 3 != 3):
            return position
        position = head.find(b"\xff", position + 1)
    return None


def _stream_header(frame: bytes) -> _StreamHeader | None:
    """The Xing/Info or VBRI header in the first frame, when it records the stream's size."""
    b1, b3 = frame[1], frame[3]
    mpeg1 = (b1 >> 3) & 3 == 3
    mono = (b3 >> 6) & 3 == 3
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    xing = 4 + (0 if b1 & 1 else 2) + side_info  # a CRC follows the header when bit 0 is 0
    try:
        if frame[xing:xing + 4] in (b"Xing", b"Info"):
            (flags,) = struct.unpack_from(">I", frame, xing + 4)
            position = xing + 8 + (4 if flags & 1 else 0)  # the frame count, if any
            if not flags & 2:
                return None  # no byte count: nothing to compare the file with
            (size,) = struct.unpack_from(">I", frame, position)
            toc = frame[position + 4:position + 104] if flags & 4 else None
            kind = frame[xing:xing + 4].decode()
            return _StreamHeader(kind, size, toc if toc and len(toc) == 100 else None)
        if frame[36:40] == b"VBRI":
            (size,) = struct.unpack_from(">I", frame, 36 + 10)
            return _StreamHeader("VBRI", size, None)
    except struct.error:  # a header cut short: libsndfile would not have opened the file
        return None
    return None


def _time_fraction(byte_fraction: float, toc: bytes | None) -> float:
    """The fraction of the duration that ``byte_fraction`` of the stream holds: read from the
    Xing table of contents (piecewise linear), else in proportion."""
    if not toc:
        return min(byte_fraction, 1.0)
    target = byte_fraction * 256
    points = [*toc, 256]
    for percent in range(100):
        low, high = points[percent], points[percent + 1]
        if target < high:
            step = (target - low) / (high - low) if high > low else 0.0
            return (percent + max(0.0, min(step, 1.0))) / 100
    return 1.0


__all__ = ["Cut", "FileBytes", "find_cut", "truncation_warning"]
