"""What a file's header says (format, rate, channels, length, whether it is whole), without
decoding a sample; the same errors as :func:`ser.audio.load_audio` for a file that cannot be used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ser.audio.opening import AudioSource, is_seekable, name_of, open_target, source_target
from ser.truncation import FileBytes, find_cut


@dataclass(frozen=True)
class AudioInfo:
    """What the header says (and whether the file is whole); cheap, no decoding."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    # Set when the file holds less than a whole recording (ser.truncation); ``frames`` is then
    # what it holds (an estimate for MP3, whose header still declares the whole length).
    warning: str | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(source: AudioSource, *, name: str | None = None) -> AudioInfo:
    """Format, rate, channels and length from the header, with the same errors as load_audio.

    A file cut short of a whole recording (:mod:`ser.truncation`: WAV/AIFF, Ogg, MP3 with a
    Xing/VBRI header) gets ``warning`` and the length it holds, from a few bytes of its head and
    tail; a file object's position is left where it was."""
    label = name_of(source, name)
    in_place = (not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview))
                and is_seekable(source))
    position = source.tell() if in_place else None  # type: ignore[union-attr]
    try:
        target, size, head = source_target(source, label)
        with open_target(target, size, head, label) as snd:
            cut = find_cut(snd, FileBytes(target, size))
            frames = min(snd.frames, cut.frames) if cut is not None else snd.frames
            return AudioInfo(label, snd.format, snd.subtype, snd.samplerate, snd.channels,
                             frames, cut.reason if cut is not None else None)
    finally:
        if position is not None:
            source.seek(position)  # type: ignore[union-attr]
