"""A path, bytes or a file object to an open ``soundfile.SoundFile``, or an AudioError saying why
not: the operating system's refusal (missing, permission, path too long, a FIFO), an empty file,
something that is not audio, or audio libsndfile cannot open (truncated or corrupt).
"""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import BinaryIO, Union

import soundfile as sf

from ser.audio.errors import AudioError
from ser.audio.formats import sniff_format, what_it_is

AudioSource = Union[str, os.PathLike, bytes, BinaryIO]


def name_of(source: AudioSource, name: str | None) -> str:
    """The name errors use: ``name`` if given, else the path, the file object's name or <bytes>."""
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", None) or "<bytes>"


def source_target(source: AudioSource, name: str) -> tuple[int | BinaryIO, int, bytes]:
    """``(what libsndfile reads, size in bytes, first 16 bytes)`` of a source: a descriptor for
    a path, the file object itself when it can seek, else its bytes in memory."""
    if isinstance(source, (str, os.PathLike)):
        # An open descriptor, not the name: libsndfile refuses long names, and the OS's own
        # refusal (permission, I/O) is then reported as what it is (see open_readable).
        return open_readable(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)) or not is_seekable(source):
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


def open_audio(source: AudioSource, name: str) -> sf.SoundFile:
    """Open for reading, turning every failure into an :class:`AudioError` with its cause."""
    return open_target(*source_target(source, name), name)


def open_target(target: int | BinaryIO, size: int, head: bytes, name: str) -> sf.SoundFile:
    """libsndfile on what :func:`source_target` returned; its refusal becomes not_audio (the
    first bytes are no audio format) or truncated (they are, so the file is broken)."""
    if size == 0:
        raise AudioError(name, "empty file (0 bytes)", "empty")
    try:
        return sf.SoundFile(target)  # with a descriptor: libsndfile closes it on failure too
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        fmt = sniff_format(head)
        if fmt is None:
            raise AudioError(
                name, f"not an audio file: {what_it_is(head)}; expected wav, flac, ogg or mp3",
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


def is_seekable(source: object) -> bool:
    """Whether a file object can be read in place (else its bytes are read into memory)."""
    try:
        return bool(source.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


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
