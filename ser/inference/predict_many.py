"""Many inputs, one :class:`~ser.inference.results.Result` each, in input order, with memory
bounded however many there are (:meth:`EmotionRecognizer.predict_many`).

Inputs are read chunk by chunk, sorted by header length within a chunk and cut into batches
(:mod:`ser.inference.stream`, :class:`~ser.inference.stream.ChunkedBatchSampler`), decoded in worker
processes while the model computes. A recording over the long threshold is scored window by
window in this process (:mod:`ser.inference.windows`) when its turn in the input order comes;
an input that cannot be used is a Result with its reason, and the others go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from ser.audio import AudioError
from ser.data.batching import collate_clips
from ser.inference.results import Prediction, Result
from ser.inference.stream import (ChunkedBatchSampler, DurationPlanner, InputDataset, InputItem,
                                  decode_item, item_name)

if TYPE_CHECKING:
    from ser.inference.recognizer import EmotionRecognizer

log = logging.getLogger(__name__)


def predict_many(
    recognizer: EmotionRecognizer,
    items: Iterable[InputItem],
    *,
    batch_size: int = 8,
    num_workers: int | None = None,
    sampling_rate: int | None = None,
    max_batch_seconds: float | None = 96.0,
    max_padding: float | None = None,
    chunk_size: int | None = None,
) -> Iterator[Result]:
    """See :meth:`ser.inference.recognizer.EmotionRecognizer.predict_many`."""
    items = list(items)
    if num_workers is None:
        num_workers = default_workers()
    chunk = chunk_size or batch_size * 16
    planner = DurationPlanner(items, chunk_size=chunk, sampling_rate=sampling_rate)
    if max_padding is None:
        max_padding = default_max_padding(recognizer)
    plan = recognizer.plan
    sampler = ChunkedBatchSampler(planner, batch_size, plan.is_long, max_batch_seconds,
                                  max_padding)
    dataset = InputDataset(items, sampling_rate=sampling_rate, target_sr=recognizer.sampling_rate)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_clips,
        pin_memory=recognizer.device.type == "cuda",
        prefetch_factor=2 if num_workers > 0 else None,
        multiprocessing_context=_worker_context() if num_workers > 0 else None,
    )
    done: dict[int, Result] = {}
    position = 0

    def drain() -> Iterator[Result]:
        nonlocal position
        while position < len(items):
            if position in done:
                yield done.pop(position)
                position += 1
            elif plan.is_long(planner.duration(position)):
                done[position] = long_result(recognizer, items[position], position,
                                             planner.duration(position), sampling_rate,
                                             batch_size, planner.warning(position))
            else:
                return

    for batch in loader:
        for index, error in batch["failed"]:
            done[index] = Result(index, item_name(items[index], index), error=error)
        if batch["index"].numel():
            probs = recognizer.probabilities_of_batch(batch["input_values"],
                                                      batch["attention_mask"])
            seconds = (batch["attention_mask"].sum(dim=1) / recognizer.sampling_rate).tolist()
            for row, index in enumerate(batch["index"].tolist()):
                prediction = Prediction.from_probabilities(probs[row], duration=seconds[row],
                                                           warning=planner.warning(index))
                done[index] = Result(index, item_name(items[index], index), prediction)
        yield from drain()
    yield from drain()
    if position != len(items):  # a bug, not a data problem: say which item went missing
        raise RuntimeError(f"predict_many lost item {position} ({items[position]!r})")


def default_max_padding(recognizer: EmotionRecognizer) -> float | None:
    """The padding a batch may hold: none to speak of on the CPU, more on a GPU, and no cap for
    a runtime that cuts each row to its own clip (the ONNX one): there padding costs nothing,
    and a batch of one would leave cores idle (:mod:`ser.inference.onnx_runtime`)."""
    if recognizer.forward.cuts_rows:
        return None
    return 0.05 if recognizer.device.type == "cpu" else 0.3


def long_result(recognizer: EmotionRecognizer, item: InputItem, index: int, duration: float,
                sampling_rate: int | None, batch_size: int,
                warning: str | None = None) -> Result:
    """The Result of one long input, scored window by window; its error if it cannot be used."""
    name = item_name(item, index)
    try:
        if isinstance(item, (str, os.PathLike)):
            prediction = recognizer.predict_windows(str(item), duration, batch_size=batch_size)
        else:
            clip = decode_item(item, index, sampling_rate=sampling_rate,
                               target_sr=recognizer.sampling_rate)
            prediction = recognizer.predict_windows(clip, batch_size=batch_size)
    except AudioError as exc:
        return Result(index, name, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the others
        log.warning("%s: cannot be used (%r)", name, exc)
        return Result(index, name, error=f"{name}: cannot be used ({exc!r})")
    return Result(index, name, replace(prediction, warning=warning))


def _worker_context() -> str | None:
    """fork where there is one: the workers only decode audio (no torch state, no CUDA), and a
    spawned worker would re-import torch and transformers (seconds) on every call. A process
    started by spawn inherits spawn as its default, hence the explicit choice."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def default_workers(threads: int | None = None) -> int:
    """One decoding process when a core is left over from the model's threads, else none:
    on a machine whose cores all compute, a decoding process slows the model more than it
    saves (measured: 25% slower on 2 cores with 2 threads)."""
    threads = threads or torch.get_num_threads()
    return 1 if (os.cpu_count() or 1) > threads else 0
