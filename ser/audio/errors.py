"""The one error every audio reader raises: the file's name, the reason in words, a machine kind."""

from __future__ import annotations


class AudioError(Exception):
    """A file that cannot be used, with the file's name, the reason and a short machine kind.

    ``kind`` is one of: missing, unreadable, empty, not_audio, truncated, too_short, non_finite,
    bad_slice, and for audio outside :class:`~ser.audio.AudioLimits`: too_long,
    too_many_channels, bad_rate.
    """

    def __init__(self, path: str, reason: str, kind: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.kind = kind


# The kinds raised by AudioLimits: audio that is fine but more than the caller agreed to decode.
LIMIT_KINDS = frozenset({"too_long", "too_many_channels", "bad_rate"})
