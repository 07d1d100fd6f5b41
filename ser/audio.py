"""Audio input: any readable file (or bytes) in, 16 kHz mono float32 out, or a named error.

Everything that decodes audio in the project goes through :func:`load_audio`, so that a broken
file fails the same way, with the same words, in training, evaluation, prediction and serving.
soundfile (libsndfile) decodes wav, flac, ogg and mp3 from the file's content, not its extension;
soxr resamples (torchaudio's CPU wheel is not available here, see DESIGN.md §3).

Decoding is bounded before it starts: the header's sample rate, channel count and length are
checked against :class:`AudioLimits` (defaults suit speech: 8-192 kHz, at most 8 channels, at
most 10 minutes decoded at once), so a small upload that claims hours of 8-channel audio, or a
100 Hz file that resampling would blow up 160-fold, is refused with a named error instead of
costing gigabytes. The data is then read block by block, mixed down and resampled as it
streams, so memory holds the 16 kHz mono result plus one block, whatever the file's channels
and rate; a header that understates the length cannot push the read past the limit either.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from ser.truncation import FileBytes, find_cut, truncation_warning

TARGET_SR = 16_000
# The Wav2Vec2 convolutional feature encoder needs 400 samples (25 ms at 16 kHz) for one frame.
MIN_SAMPLES = 400
# What a folder scan (``ser predict DIR``, ``ser audit``) takes for audio. Decoding goes by the
# file's content; the extension only decides which files in a folder are tried.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

AudioSource = Union[str, os.PathLike, bytes, BinaryIO]

# Frames read (and mixed down, resampled) at a time: 2 MB for 8 channels of float32.
_BLOCK_FRAMES = 1 << 16

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

# Leading bytes of common files that are not audio, to say in plain words what was sent instead.
_NOT_AUDIO_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "a Linux program"),
    (b"MZ", "a Windows program"),
)


class AudioError(Exception):
    """A file that cannot be used, with the file's name, the reason and a short machine kind.

    ``kind`` is one of: missing, unreadable, empty, not_audio, truncated, too_short, non_finite,
    bad_slice, and for audio outside :class:`AudioLimits`: too_long, too_many_channels, bad_rate.
    """

    def __init__(self, path: str, reason: str, kind: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.kind = kind


LIMIT_KINDS = frozenset({"too_long", "too_many_channels", "bad_rate"})


@dataclass(frozen=True)
class AudioLimits:
    """What :func:`load_audio` agrees to decode, checked from the header before decoding.

    ``max_seconds`` bounds the span decoded at once (the whole file, or the ``offset`` /
    ``duration`` slice: windowed readers of long recordings decode a few seconds at a time and
    stay within it); ``max_channels`` and ``min_rate``/``max_rate`` (Hz) bound what a block and
    the resampler cost. ``None`` switches a bound off; :data:`NO_LIMITS` switches all off.
    """

    max_seconds: float | None = 600.0
    max_channels: int | None = 8
    min_rate: int | None = 8_000
    max_rate: int | None = 192_000

    def __post_init__(self) -> None:
        for field in ("max_seconds", "max_channels", "min_rate", "max_rate"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                raise ValueError(f"AudioLimits.{field} must be positive or None, got {value}")
        if self.min_rate and self.max_rate and self.min_rate > self.max_rate:
            raise ValueError(f"AudioLimits.min_rate ({self.min_rate}) exceeds max_rate "
                             f"({self.max_rate})")

    def check_format(self, name: str, *, rate: int, channels: int) -> None:
        """Raise :class:`AudioError` (bad_rate, too_many_channels) outside the bounds."""
        if (self.min_rate and rate < self.min_rate) or (self.max_rate and rate > self.max_rate):
            raise AudioError(
                name, f"unsupported sample rate {rate} Hz: accepted are "
                f"{self.min_rate or 1:,}-{self.max_rate or rate:,} Hz", "bad_rate")
        if self.max_channels and channels > self.max_channels:
            raise AudioError(
                name, f"{channels} channels: at most {self.max_channels} are accepted "
                "(speech needs one)", "too_many_channels")

    def check_length(self, name: str, seconds: float) -> None:
        """Raise :class:`AudioError` (too_long) when ``seconds`` exceed ``max_seconds``."""
        if self.max_seconds and seconds > self.max_seconds:
            raise AudioError(
                name, f"too long: {_minutes(seconds)} of audio; at most "
                f"{_minutes(self.max_seconds)} is accepted (cut the recording, or raise the "
                "limit)", "too_long")

    def check(self, info: AudioInfo) -> None:
        """All bounds against a header (:func:`audio_info`), the whole file as the span."""
        self.check_format(info.path, rate=info.sample_rate, channels=info.channels)
        self.check_length(info.path, info.duration)


DEFAULT_LIMITS = AudioLimits()
NO_LIMITS = AudioLimits(max_seconds=None, max_channels=None, min_rate=None, max_rate=None)


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(round(seconds % 60))} s"


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


def _target(source: AudioSource, name: str) -> tuple[int | BinaryIO, int, bytes]:
    """``(what libsndfile reads, size in bytes, first 16 bytes)`` of a source: a descriptor for
    a path, the file object itself when it can seek, else its bytes in memory."""
    if isinstance(source, (str, os.PathLike)):
        # An open descriptor, not the name: libsndfile refuses long names, and the OS's own
        # refusal (permission, I/O) is then reported as what it is (see open_readable).
        return open_readable(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)) or not _seekable(source):
        data = bytes(source) if not hasattr(source, "read") else source.read()
        return io.BytesIO(data), len(data), data[:16]
    # A seekable file object (an upload spooled to disk, say) is read in place from its
    # start, never copied whole into memory.
    source.seek(0, os.SEEK_END)
    size = source.tell()
    source.seek(0)
    head = source.read(16)
    source.seek(0)
    return source, size, head


def _open(source: AudioSource, name: str) -> sf.SoundFile:
    """Open for reading, turning every failure into an :class:`AudioError` with its cause."""
    return _open_target(*_target(source, name), name)


def _open_target(target: int | BinaryIO, size: int, head: bytes, name: str) -> sf.SoundFile:
    if size == 0:
        raise AudioError(name, "empty file (0 bytes)", "empty")
    try:
        return sf.SoundFile(target)  # with a descriptor: libsndfile closes it on failure too
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        fmt = _sniff_format(head)
        if fmt is None:
            raise AudioError(
                name, f"not an audio file: {_what_it_is(head)}; expected wav, flac, ogg or mp3",
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


def _seekable(source: object) -> bool:
    try:
        return bool(source.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _what_it_is(head: bytes) -> str:
    """Plain words for what a non-audio file looks like (never a Python byte literal)."""
    for magic, what in _NOT_AUDIO_MAGIC:
        if head.startswith(magic):
            return f"it looks like {what}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.strip() and all(ch.isprintable() or ch.isspace() for ch in text):
        if text.lstrip().startswith("<"):
            return "it looks like HTML or XML text"
        if text.lstrip()[:1] in "{[":
            return "it looks like JSON text"
        return "it looks like plain text"
    return "its first bytes match no audio format"


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc)
    # LibsndfileError reads "Error opening '<path>': <reason>"; the path is already in the message.
    return text.split(": ", 1)[1].strip() if ": " in text else text


def audio_info(source: AudioSource, *, name: str | None = None) -> AudioInfo:
    """Format, rate, channels and length from the header, with the same errors as load_audio.

    A file cut short of a whole recording (:mod:`ser.truncation`: WAV/AIFF, Ogg, MP3 with a
    Xing/VBRI header) gets ``warning`` and the length it holds, from a few bytes of its head and
    tail; a file object's position is left where it was."""
    label = _name_of(source, name)
    in_place = (not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview))
                and _seekable(source))
    position = source.tell() if in_place else None  # type: ignore[union-attr]
    try:
        target, size, head = _target(source, label)
        with _open_target(target, size, head, label) as snd:
            cut = find_cut(snd, FileBytes(target, size))
            frames = min(snd.frames, cut.frames) if cut is not None else snd.frames
            return AudioInfo(label, snd.format, snd.subtype, snd.samplerate, snd.channels,
                             frames, cut.reason if cut is not None else None)
    finally:
        if position is not None:
            source.seek(position)  # type: ignore[union-attr]


def load_audio(
    source: AudioSource,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    target_sr: int = TARGET_SR,
    min_samples: int = MIN_SAMPLES,
    name: str | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Decode ``source`` to mono float32 at ``target_sr``.

    ``offset`` and ``duration`` (seconds) select a slice; where the format can seek (wav, flac,
    ogg, mp3 through libsndfile) only that slice is decoded. Silence is valid audio; NaN or
    infinite samples and clips shorter than ``min_samples`` after resampling are not. ``limits``
    are checked from the header before anything is decoded (see :class:`AudioLimits`); a file
    object is read from its start, in place.
    """
    label = _name_of(source, name)
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(label, f"bad slice: offset={offset}, duration={duration}", "bad_slice")
    with _open(source, label) as snd:
        rate = snd.samplerate
        limits.check_format(label, rate=rate, channels=snd.channels)
        start = int(round(offset * rate))
        if start and snd.frames and start >= snd.frames:
            raise AudioError(
                label,
                f"slice starts at {offset:.3f} s, after the end ({snd.frames / rate:.3f} s)",
                "bad_slice",
            )
        count = -1 if duration is None else max(1, int(round(duration * rate)))
        span = (snd.frames - start) if count < 0 else min(count, max(snd.frames - start, 0))
        limits.check_length(label, span / rate)
        # The header may understate the length: never read more than the limit (plus one frame
        # to tell "exactly at the limit" from "past it").
        cap = None if not limits.max_seconds else int(limits.max_seconds * rate) + 1
        if cap is not None and (count < 0 or count > cap):
            count = cap
        try:
            if start:
                snd.seek(start)
            mono, read, bad = _read_mono(snd, count, rate, target_sr)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(label, f"truncated or corrupt audio data ({exc})", "truncated") from exc
    if cap is not None and read >= cap:
        limits.check_length(label, read / rate)
    if bad:
        raise AudioError(label, f"{bad} NaN or infinite samples", "non_finite")
    return _checked_length(mono, target_sr, min_samples, label)


def _read_mono(snd: sf.SoundFile, count: int, rate: int,
               target_sr: int) -> tuple[np.ndarray, int, int]:
    """Read ``count`` frames (-1: to the end) block by block, mixing down and resampling each
    block as it comes; returns (mono at ``target_sr``, frames read, non-finite samples)."""
    resampler = (soxr.ResampleStream(rate, target_sr, 1, dtype="float32", quality="HQ")
                 if rate != target_sr else None)
    parts: list[np.ndarray] = []
    read = bad = 0
    while count < 0 or read < count:
        want = _BLOCK_FRAMES if count < 0 else min(_BLOCK_FRAMES, count - read)
        block = snd.read(frames=want, dtype="float32", always_2d=True)
        if not len(block):
            break
        read += len(block)
        finite = np.isfinite(block)
        if not finite.all():
            bad += int((~finite).sum())
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        parts.append(resampler.resample_chunk(mono) if resampler is not None else mono)
        if len(block) < want:
            break
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    mono = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return mono, read, bad


def to_mono(array: np.ndarray, sampling_rate: int, *, target_sr: int = TARGET_SR,
            min_samples: int = MIN_SAMPLES, name: str = "<array>",
            limits: AudioLimits = DEFAULT_LIMITS) -> np.ndarray:
    """The same checks and conversion as :func:`load_audio`, for audio already in memory.

    Accepts (samples,), or (samples, channels) as soundfile returns it. Only the rate and
    channel bounds of ``limits`` apply: the array's length is already paid for, but a tiny rate
    would still multiply it in the resampler.
    """
    data = np.asarray(array, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise AudioError(name, f"expected 1-D or (samples, channels) audio, got shape {data.shape}",
                         "not_audio")
    limits.check_format(name, rate=int(sampling_rate), channels=data.shape[1])
    return _finish(data, int(sampling_rate), target_sr, min_samples, name)


def _finish(data: np.ndarray, rate: int, target_sr: int, min_samples: int, label: str) -> np.ndarray:
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(label, f"{bad} NaN or infinite samples", "non_finite")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != target_sr and mono.size:
        mono = soxr.resample(mono, rate, target_sr, quality="HQ").astype(np.float32, copy=False)
    return _checked_length(mono, target_sr, min_samples, label)


def _checked_length(mono: np.ndarray, target_sr: int, min_samples: int, label: str) -> np.ndarray:
    if mono.size < min_samples:
        raise AudioError(
            label,
            f"too short: {mono.size} samples at {target_sr} Hz ({mono.size / target_sr * 1000:.0f} ms);"
            f" the backbone needs at least {min_samples} ({min_samples / target_sr * 1000:.0f} ms)",
            "too_short",
        )
    return np.ascontiguousarray(mono, dtype=np.float32)


__all__ = ["DEFAULT_LIMITS", "LIMIT_KINDS", "MIN_SAMPLES", "NO_LIMITS", "TARGET_SR", "AudioError",
           "AudioInfo", "AudioLimits", "AudioSource", "audio_info", "load_audio", "open_readable",
           "to_mono", "truncation_warning"]
