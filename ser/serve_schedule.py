"""Who gets the decoder and the model next, in ``ser serve``: cheapest upload first.

An upload's cost is its length in seconds, read from the header before anything is decoded.
Two gates, both ordered by cost (first come, first served among equal costs):

* :class:`PrioritySlots` (async): at most ``capacity`` uploads are decoded and held in memory
  at once; a long upload (over ``long_cost`` seconds) may take at most ``capacity - 1`` of them,
  so a short one always finds a slot however many long ones wait.
* :class:`PriorityGate` (threads): the model runs ``capacity`` forward passes at a time; a long
  recording takes it once per window, so a short upload waits for at most one window of a long
  one, not for the whole recording.

Together they keep a good request's latency near its idle figure while long uploads queue
(bench/serve_hostile.py measures it).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio


class PrioritySlots:
    """At most ``capacity`` holders; waiters served cheapest first; see the module docstring."""

    def __init__(self, capacity: int, *, long_cost: float) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.long_cost = long_cost
        # Long uploads may not take the last slot (unless there is only one).
        self.max_long = max(capacity - 1, 1)
        self.held = 0
        self.held_long = 0
        self._waiting: list[tuple[float, int, anyio.Event, bool]] = []
        self._seq = itertools.count()

    @asynccontextmanager
    async def hold(self, cost: float) -> AsyncIterator[None]:
        long = cost > self.long_cost
        entry = (cost, next(self._seq), anyio.Event(), long)
        self._waiting.append(entry)
        self._grant()
        try:
            await entry[2].wait()
        except BaseException:
            if entry in self._waiting:
                self._waiting.remove(entry)
            else:  # granted at the moment it was cancelled
                self._release(long)
            raise
        try:
            yield
        finally:
            self._release(long)

    def _release(self, long: bool) -> None:
        self.held -= 1
        self.held_long -= int(long)
        self._grant()

    def _grant(self) -> None:
        for entry in sorted(self._waiting, key=lambda e: (e[0], e[1])):
            if self.held >= self.capacity:
                return
            if entry[3] and self.held_long >= self.max_long:
                continue  # a shorter upload behind it may still take the free slot
            self._waiting.remove(entry)
            self.held += 1
            self.held_long += int(entry[3])
            entry[2].set()


class PriorityGate:
    """A capacity limiter for threads that lets the cheapest waiter in first."""

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._busy = 0
        self._waiting: list[tuple[float, int]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, cost: float) -> Iterator[None]:
        ticket = (cost, next(self._seq))
        with self._cond:
            heapq.heappush(self._waiting, ticket)
            while self._busy >= self.capacity or self._waiting[0] != ticket:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._busy += 1
            self._cond.notify_all()  # with capacity > 1 the next in line may enter as well
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()


__all__ = ["PriorityGate", "PrioritySlots"]
