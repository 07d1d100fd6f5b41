"""Input items (paths or arrays) for batched inference: decoded in worker processes, their
lengths read chunk by chunk.

Sorting all inputs by length gives the least padding but holds every result until the end; not
sorting wastes compute on padding. The middle way: take the inputs in chunks (in input order),
sort each chunk by header length and cut it into batches (:class:`ChunkedBatchSampler`, with
:func:`ser.data.batching.length_sorted_batches`). Results can then be handed out in input order
as each chunk finishes, so memory holds one chunk of results and a few prefetched batches of
audio, never the whole input. :class:`DurationPlanner` reads header lengths chunk by chunk, when
the sampler reaches the chunk.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import numpy as np
from torch.utils.data import Dataset, Sampler

from ser.audio import AudioError, load_audio, to_mono
from ser.data.batching import length_sorted_batches
from ser.data.corpora import header_scan

log = logging.getLogger(__name__)

# A file path, or audio in memory: (array, sampling_rate), or a bare array with a shared rate.
InputItem = Union[str, os.PathLike, tuple[np.ndarray, int], np.ndarray]


def item_name(item: InputItem, index: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    return f"<array {index}>"


def _array_and_rate(item: InputItem, sampling_rate: int | None,
                    name: str) -> tuple[np.ndarray, int]:
    if isinstance(item, tuple) and len(item) == 2:
        array, rate = item
        return np.asarray(array), int(rate)
    if isinstance(item, np.ndarray):
        if sampling_rate is None:
            raise AudioError(name, "an array needs its sampling rate: pass (array, rate) or "
                                   "sampling_rate=", "not_audio")
        return item, int(sampling_rate)
    raise AudioError(name, f"unsupported input of type {type(item).__name__}; expected a path "
                           "or (array, sampling_rate)", "not_audio")


def decode_item(item: InputItem, index: int, *, sampling_rate: int | None,
                target_sr: int) -> np.ndarray:
    """Mono float32 at ``target_sr``, or AudioError naming the item and the reason."""
    name = item_name(item, index)
    if isinstance(item, (str, os.PathLike)):
        return load_audio(item, target_sr=target_sr)
    array, rate = _array_and_rate(item, sampling_rate, name)
    return to_mono(array, rate, target_sr=target_sr, name=name)


def item_duration(item: InputItem, sampling_rate: int | None) -> float:
    """Seconds, from the array's shape; NaN where it cannot be known (decoding will say why)."""
    try:
        array, rate = _array_and_rate(item, sampling_rate, "")
    except AudioError:
        return math.nan
    return array.shape[0] / rate if array.ndim >= 1 and rate > 0 else math.nan


class InputDataset(Dataset):
    """Items in the shape :func:`ser.data.batching.collate_clips` takes; errors kept per item."""

    def __init__(self, items: Sequence[InputItem], *, sampling_rate: int | None,
                 target_sr: int) -> None:
        self.items = items
        self.sampling_rate = sampling_rate
        self.target_sr = target_sr

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        audio: np.ndarray | None = None
        error: str | None = None
        try:
            audio = decode_item(self.items[index], index, sampling_rate=self.sampling_rate,
                                target_sr=self.target_sr)
        except AudioError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the others
            error = f"{item_name(self.items[index], index)}: cannot be decoded ({exc!r})"
            log.warning("%s", error)
        return {"input_values": audio, "label": -1, "index": index, "error": error}


class DurationPlanner:
    """Lengths of the items, read chunk by chunk on first need (headers for files)."""

    def __init__(self, items: Sequence[InputItem], *, chunk_size: int,
                 sampling_rate: int | None) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.items = items
        self.chunk_size = chunk_size
        self.sampling_rate = sampling_rate
        self.durations = np.full(len(items), np.nan)
        self.warnings: dict[int, str] = {}  # files cut short of their header (truncation_warning)
        self._planned = 0  # items [0, _planned) have their durations

    def chunk(self, number: int) -> range:
        start = number * self.chunk_size
        return range(start, min(len(self.items), start + self.chunk_size))

    def ensure(self, index: int) -> None:
        while self._planned <= index < len(self.items):
            span = self.chunk(self._planned // self.chunk_size)
            paths = [(i, str(self.items[i])) for i in span
                     if isinstance(self.items[i], (str, os.PathLike))]
            if paths:
                durations, warnings = header_scan([p for _, p in paths])
                self.durations[[i for i, _ in paths]] = durations
                self.warnings.update({paths[k][0]: w for k, w in warnings.items()})
            for i in span:
                if not isinstance(self.items[i], (str, os.PathLike)):
                    self.durations[i] = item_duration(self.items[i], self.sampling_rate)
            self._planned = span.stop

    def duration(self, index: int) -> float:
        self.ensure(index)
        return float(self.durations[index])

    def warning(self, index: int) -> str | None:
        self.ensure(index)
        return self.warnings.get(index)


class ChunkedBatchSampler(Sampler[list[int]]):
    """Inference batches: the input in chunks, in input order, each chunk's short items cut by
    :func:`~ser.data.batching.length_sorted_batches`; so results can be handed out chunk by
    chunk, in order.

    Long items (``is_long(duration)``) are left out: the caller runs them window by window.
    """

    def __init__(self, planner: DurationPlanner, batch_size: int,
                 is_long: Callable[[float], bool], max_batch_seconds: float | None = None,
                 max_padding: float | None = None) -> None:
        self.planner = planner
        self.batch_size = batch_size
        self.is_long = is_long
        self.max_batch_seconds = max_batch_seconds
        self.max_padding = max_padding

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.planner.durations)
        for number in range(-(-n // self.planner.chunk_size)):
            span = self.planner.chunk(number)
            self.planner.ensure(span.start)
            short = [i for i in span if not self.is_long(self.planner.durations[i])]
            yield from length_sorted_batches(short, self.planner.durations, self.batch_size,
                                             self.max_batch_seconds, self.max_padding)
