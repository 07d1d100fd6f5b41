"""What a reader agrees to decode, checked from the header before any sample is decoded.

Defaults suit speech (8-192 kHz, at most 8 channels, at most 10 minutes decoded at once), so a
small upload that claims hours of 8-channel audio, or a 100 Hz file that resampling would blow up
160-fold, is refused with a named error instead of costing gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ser.audio.errors import AudioError

if TYPE_CHECKING:
    from ser.audio.header import AudioInfo


@dataclass(frozen=True)
class AudioLimits:
    """What :func:`~ser.audio.load_audio` agrees to decode, checked from the header first.

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
        """All bounds against a header (:func:`~ser.audio.audio_info`), the whole file as the
        span."""
        self.check_format(info.path, rate=info.sample_rate, channels=info.channels)
        self.check_length(info.path, info.duration)


DEFAULT_LIMITS = AudioLimits()
NO_LIMITS = AudioLimits(max_seconds=None, max_channels=None, min_rate=None, max_rate=None)


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(round(seconds % 60))} s"
