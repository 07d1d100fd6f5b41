"""Which files are audio: the extensions a folder scan tries, and what a file's first bytes say.

Decoding goes by the file's content, never its extension; the leading bytes only tell "broken
audio" (a known container that libsndfile refused) from "not audio at all", and name in plain
words what was sent instead.
"""

from __future__ import annotations

# What a folder scan (``ser predict DIR``, ``ser audit``) takes for audio. Decoding goes by the
# file's content; the extension only decides which files in a folder are tried.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

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


def sniff_format(head: bytes) -> str | None:
    """The audio container the first bytes announce (WAV, FLAC, OGG, MP3, AIFF), else None."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "MP3"  # bare MPEG audio frame sync, no ID3 tag
    return None


def what_it_is(head: bytes) -> str:
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
