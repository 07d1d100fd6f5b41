"""``ser stream --model PATH FILE``: a file replayed as if it came from a microphone.

The file is cut into 100 ms chunks fed to a :class:`~ser.inference.live.LiveSession` at the
pace of the audio (``speed`` times real time; 0 = no waiting). Each event is printed with its
lag: the wall time between the moment the audio at the segment's end had been fed and the
moment the event existed -- the delay a live user sees, silence wait included.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ser.audio import AudioError, TARGET_SR, audio_info
from ser.inference.live import LiveSession, StreamEvent
from ser.inference.loading import ModelLoadError
from ser.inference.timeline import file_blocks
from ser.inference.vad import VadConfig

CHUNK_SECONDS = 0.1


def event_line(event: StreamEvent, lag: float | None = None) -> str:
    line = (f"[{event.start:8.2f} - {event.end:8.2f} s] {event.kind:<7} {event.label:<8} "
            f"({event.confidence:.2f})")
    if lag is not None:
        line += f"  lag {lag * 1000:.0f} ms"
    return line


def run_replay(model: str, file: str | Path, *, speed: float = 1.0,
               vad: VadConfig | None = None, threads: int | None = None,
               backbone: str | None = None, device: str | None = None,
               partials: bool = True) -> int:
    """Replay ``file``; print one line per event and a summary. Exit status 0, 1 for an
    unreadable file, 2 when the model cannot be loaded."""
    from ser.inference.recognizer import EmotionRecognizer

    if speed < 0:
        print(f"error: --speed must be 0 or more, got {speed}", file=sys.stderr)
        return 2
    try:
        duration = audio_info(file).duration
    except AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        recognizer = EmotionRecognizer.from_pretrained(model, device=device, backbone=backbone,
                                                       threads=threads, vad=vad)
    except (ModelLoadError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    session = LiveSession(recognizer, partial_hop=1.0 if partials else None)
    size = int(CHUNK_SECONDS * TARGET_SR)
    finals = 0
    lags: list[float] = []
    began = time.perf_counter()
    try:
        for block in file_blocks(file, duration, 30.0):
            for first in range(0, block.size, size):
                chunk = block[first:first + size]
                fed_until = session.seconds + chunk.size / TARGET_SR
                if speed > 0:  # wait until this chunk would have been recorded
                    delay = began + fed_until / speed - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                for event in session.feed(chunk):
                    lag = _lag(began, event, speed)
                    print(event_line(event, lag), flush=True)
                    if event.kind == "segment":
                        finals += 1
                        if lag is not None:
                            lags.append(lag)
    except AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for event in session.finish():
        finals += 1
        print(event_line(event), flush=True)
    lag_text = (f"; lag after a segment's end (wall clock): median {sorted(lags)[len(lags) // 2] * 1000:.0f} ms, "
                f"max {max(lags) * 1000:.0f} ms" if lags else "")
    print(f"{file}: {duration:.1f} s replayed at {speed:g}x in "
          f"{time.perf_counter() - began:.1f} s, {finals} speech segments{lag_text}")
    return 0


def _lag(began: float, event: StreamEvent, speed: float) -> float | None:
    if speed <= 0:
        return None
    return time.perf_counter() - (began + event.end / speed)
