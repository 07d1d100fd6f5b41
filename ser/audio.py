"""Audio input: any readable file (or bytes) in, 16 kHz mono float32 out, or a named error.

Everything that decodes audio in the project goes through :func:`load_audio`, so that a broken
file fails the same way, with the same words, in training, evaluation, prediction and serving.
soundfile (libsndfile) decodes wav, flac, ogg and mp3 from the file's content, not its extension;
soxr resamples (torchaudio's CPU wheel is not available here, see DESIGN.md §3).
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

TARGET_SR = 16_000
# The Wav2Vec2 convolutional feature encoder needs 400 samples (25 ms at 16 kHz) for one frame.
MIN_SAMPLES = 400

AudioSource = Union[str, os.PathLike, bytes, BinaryIO]

# Leading bytes of the containers we expect, to tell "broken audio" from "not audio at all".
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"RIFF", "WAV"),
    (b"RIFX", "WAV"),
    (b"RF64", "WAV"),
    (b"fLaC", "FLAC"),
    (b"OggS", "OGG"),
    (b"ID3", "MP3"),
    (b"FORM", "AIFF"),
)


class AudioError(Exception):
    """A file that cannot be used, with the file's name, the reason and a short machine kind.

    ``kind`` is one of: missing, unreadable, empty, not_audio, truncated, too_short, non_finite,
    bad_slice.
    """

    def __init__(self, path: str, reason: str, kind: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class AudioInfo:
    """What the header says; cheap, no decoding."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    # Set when the file holds less than its header declares (see truncation_warning).
    warning: str | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _name_of(source: AudioSource, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", None) or "<bytes>"


def _sniff_format(head: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "MP3"  # bare MPEG audio frame sync, no ID3 tag
    return None


def _open(source: AudioSource, name: str) -> sf.SoundFile:
    """Open for reading, turning every failure into an :class:`AudioError` with its cause."""
    if isinstance(source, (str, os.PathLike)):
        # An open descriptor, not the name: libsndfile refuses long names, and the OS's own
        # refusal (permission, I/O) is then reported as what it is (see open_readable).
        fd, size, head = open_readable(source, name)
        target: int | BinaryIO = fd
    else:
        data = source if isinstance(source, bytes) else source.read()
        size = len(data)
        head = data[:16]
        target = io.BytesIO(data)
    if size == 0:
        raise AudioError(name, "empty file (0 bytes)", "empty")
    try:
        return sf.SoundFile(target)  # with a descriptor: libsndfile closes it on failure too
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        fmt = _sniff_format(head)
        if fmt is None:
            raise AudioError(
                name,
                f"not an audio file (header {head[:8]!r} is not wav, flac, ogg or mp3)",
                "not_audio",
            ) from exc
        raise AudioError(
            name, f"truncated or corrupt {fmt} file ({_libsndfile_reason(exc)})", "truncated"
        ) from exc


def open_readable(source: str | os.PathLike, name: str) -> tuple[int, int, bytes]:
    """``(descriptor, size, first 16 bytes)`` of a regular file, or an AudioError that says why
    the operating system refused it (missing, dangling link, permission, path too long, I/O).

    O_NONBLOCK: opening a FIFO named like a clip must fail at once, not wait for a writer.
    """
    path = os.fspath(source)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise _os_refusal(path, name, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AudioError(name, "not a regular file", "not_audio")
        if info.st_size == 0:
            raise AudioError(name, "empty file (0 bytes)", "empty")
        try:
            head = os.pread(fd, 16, 0)
        except OSError as exc:
            raise AudioError(name, f"cannot be read: {_strerror(exc)}", "unreadable") from exc
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size, head


def _strerror(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _os_refusal(path: str, name: str, exc: OSError) -> AudioError:
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return AudioError(name, f"broken symbolic link (its target {os.readlink(path)} does "
                                    "not exist)", "missing")
        return AudioError(name, "file not found", "missing")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return AudioError(name, "permission denied: this user may not read the file or one of "
                                "its folders", "unreadable")
    if exc.errno == errno.ENAMETOOLONG:
        return AudioError(name, f"path too long for the operating system ({len(os.fsencode(path))}"
                                " bytes, or a part of it over 255)", "unreadable")
    if exc.errno == errno.ENOTDIR:
        return AudioError(name, "a part of the path is a file, not a folder", "missing")
    if exc.errno == errno.ELOOP:
        return AudioError(name, "symbolic link loop", "unreadable")
    return AudioError(name, f"cannot be opened: {_strerror(exc)}", "unreadable")


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc)
    # LibsndfileError reads "Error opening '<path>': <reason>"; the path is already in the message.
    return text.split(": ", 1)[1].strip() if ": " in text else text


def audio_info(source: AudioSource, *, name: str | None = None) -> AudioInfo:
    """Format, rate, channels and length from the header, with the same errors as load_audio."""
    label = _name_of(source, name)
    with _open(source, label) as snd:
        return AudioInfo(label, snd.format, snd.subtype, snd.samplerate, snd.channels, snd.frames,
                         truncation_warning(snd))


# libsndfile's header log: "data : 68800 (should be 34400)" when a WAV (or AIFF SSND) chunk
# declares more bytes than the file holds; libsndfile then reads what is there, in silence.
_CUT_CHUNK = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Sizes that writers put in a header they could not finish (streaming): not a sign of a cut.
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF, 0xFFFFFFFF - 8)


def truncation_warning(snd: sf.SoundFile) -> str | None:
    """Why a readable file is not whole: its data chunk is cut short of what the header declares
    (a copy or download stopped early). The part that is there decodes; the caller must say the
    result covers only that part. None for a whole file."""
    found = _CUT_CHUNK.search(snd.extra_info or "")
    if found is None or not snd.samplerate:
        return None
    declared, present = int(found.group(2)), int(found.group(3))
    if declared in _PLACEHOLDER_SIZES or declared <= present or present <= 0:
        return None
    held = snd.frames / snd.samplerate
    return (f"truncated: the header declares {held * declared / present:.2f} s of audio, the "
            f"file holds {held:.2f} s ({present} of {declared} data bytes); only that part was "
            "used")


def load_audio(
    source: AudioSource,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    target_sr: int = TARGET_SR,
    min_samples: int = MIN_SAMPLES,
    name: str | None = None,
) -> np.ndarray:
    """Decode ``source`` to mono float32 at ``target_sr``.

    ``offset`` and ``duration`` (seconds) select a slice; where the format can seek (wav, flac,
    ogg, mp3 through libsndfile) only that slice is decoded. Silence is valid audio; NaN or
    infinite samples and clips shorter than ``min_samples`` after resampling are not.
    """
    label = _name_of(source, name)
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(label, f"bad slice: offset={offset}, duration={duration}", "bad_slice")
    with _open(source, label) as snd:
        rate = snd.samplerate
        start = int(round(offset * rate))
        if start and snd.frames and start >= snd.frames:
            raise AudioError(
                label,
                f"slice starts at {offset:.3f} s, after the end ({snd.frames / rate:.3f} s)",
                "bad_slice",
            )
        count = -1 if duration is None else max(1, int(round(duration * rate)))
        try:
            if start:
                snd.seek(start)
            data = snd.read(frames=count, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(label, f"truncated or corrupt audio data ({exc})", "truncated") from exc
    return _finish(data, rate, target_sr, min_samples, label)


def to_mono(array: np.ndarray, sampling_rate: int, *, target_sr: int = TARGET_SR,
            min_samples: int = MIN_SAMPLES, name: str = "<array>") -> np.ndarray:
    """The same checks and conversion as :func:`load_audio`, for audio already in memory.

    Accepts (samples,), or (samples, channels) as soundfile returns it.
    """
    data = np.asarray(array, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise AudioError(name, f"expected 1-D or (samples, channels) audio, got shape {data.shape}",
                         "not_audio")
    return _finish(data, int(sampling_rate), target_sr, min_samples, name)


def _finish(data: np.ndarray, rate: int, target_sr: int, min_samples: int, label: str) -> np.ndarray:
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(label, f"{bad} NaN or infinite samples", "non_finite")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != target_sr and mono.size:
        mono = soxr.resample(mono, rate, target_sr, quality="HQ").astype(np.float32, copy=False)
    if mono.size < min_samples:
        raise AudioError(
            label,
            f"too short: {mono.size} samples at {target_sr} Hz ({mono.size / target_sr * 1000:.0f} ms);"
            f" the backbone needs at least {min_samples} ({min_samples / target_sr * 1000:.0f} ms)",
            "too_short",
        )
    return np.ascontiguousarray(mono, dtype=np.float32)
