"""Who gets the decoder and the model next, in ``ser serve``: cheapest upload first, with ageing.

An upload's cost is its length in seconds, read from the header before anything is decoded.
Two gates, both ordered by cost (first come, first served among equal ranks):

* :class:`PrioritySlots` (async): at most ``capacity`` uploads are decoded and held in memory
  at once; a long upload (over ``long_cost`` seconds) may take at most ``capacity - 1`` of them,
  so a short one always finds a slot however many long ones wait.
* :class:`PriorityGate` (threads): the model runs ``capacity`` forward passes at a time; a long
  recording takes it once per window, so a short upload waits for at most one window of a long
  one, not for the whole recording.

Cheapest first alone lets a long upload starve behind a steady stream of short ones. So a
waiter's rank is the static key ``cost + ageing * arrival`` (``arrival`` on a monotonic clock):
the same order as ``cost - ageing * seconds waited``, without re-sorting as time passes. A later
arrival of cost ``c`` overtakes a waiter of cost ``C`` only if it comes within ``(C - c) /
ageing`` seconds of it, so the waiter is overtaken for at most ``C / ageing`` seconds.
``ageing`` (``ser serve --ageing``; :data:`DEFAULT_AGEING` = 10 audio-seconds per second
waited) bounds a 10-minute upload's wait behind later short ones to about 60 s, while a 2 s
upload still overtakes a 60 s one that arrived up to 5.8 s before it. 0 is pure cheapest-first
(no bound). A request passes its arrival time to both gates (``arrived=``), so the windows of a
long recording keep the rank it earned while waiting instead of queueing afresh each time.

Together they keep a good request's latency near its idle figure while long uploads queue
(bench/serve_hostile.py measures it).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio

# Audio seconds of priority a waiter gains per second it waits (see the module docstring).
DEFAULT_AGEING = 10.0
# A refused upload (not audio, too long, a rate out of bounds ...) is answered after this many
# seconds. Its bytes were already received and parsed: a client that sends the same bad file
# again at once (a retry loop, a hostile script) would otherwise keep both cores parsing
# refusals -- measured: 32 such clients made a good request 11-17x slower (bench/serve_hostile.py).
# Waiting costs the server nothing and bounds such a client to one refusal per delay; a flood
# that does not wait for answers needs a rate limit in front of the server.
DEFAULT_REFUSAL_DELAY = 0.5

Clock = Callable[[], float]


class _Ranked:
    """The ranking both gates share: ``(cost + ageing * arrival, sequence)``, smallest first."""

    def __init__(self, ageing: float, clock: Clock) -> None:
        if not (0 <= ageing < math.inf):
            raise ValueError(f"ageing must be a finite number >= 0, got {ageing}")
        self.ageing = float(ageing)
        self.clock = clock
        # Arrivals are counted from here, so that the key stays small next to the costs.
        self._epoch = clock()
        self._seq = itertools.count()

    def _rank(self, cost: float, arrived: float | None) -> tuple[float, int]:
        """The waiter's key; ``arrived`` is a reading of :attr:`clock` (default: now). Ties (the
        same key) keep the order of arrival through the sequence number."""
        when = self.clock() if arrived is None else arrived
        return cost + self.ageing * (when - self._epoch), next(self._seq)


class PrioritySlots(_Ranked):
    """At most ``capacity`` holders; waiters served by rank; see the module docstring."""

    def __init__(self, capacity: int, *, long_cost: float, ageing: float = DEFAULT_AGEING,
                 clock: Clock = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        super().__init__(ageing, clock)
        self.capacity = capacity
        self.long_cost = long_cost
        # Long uploads may not take the last slot (unless there is only one).
        self.max_long = max(capacity - 1, 1)
        self.held = 0
        self.held_long = 0
        self._waiting: list[tuple[tuple[float, int], anyio.Event, bool]] = []

    @property
    def waiting(self) -> int:
        """How many are waiting for a slot."""
        return len(self._waiting)

    @asynccontextmanager
    async def hold(self, cost: float, *, arrived: float | None = None) -> AsyncIterator[None]:
        long = cost > self.long_cost
        entry = (self._rank(cost, arrived), anyio.Event(), long)
        self._waiting.append(entry)
        self._grant()
        try:
            await entry[1].wait()
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
        for entry in sorted(self._waiting, key=lambda e: e[0]):
            if self.held >= self.capacity:
                return
            if entry[2] and self.held_long >= self.max_long:
                continue  # a shorter upload behind it may still take the free slot
            self._waiting.remove(entry)
            self.held += 1
            self.held_long += int(entry[2])
            entry[1].set()


class PriorityGate(_Ranked):
    """A capacity limiter for threads that lets the best-ranked waiter in first."""

    def __init__(self, capacity: int = 1, *, ageing: float = DEFAULT_AGEING,
                 clock: Clock = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        super().__init__(ageing, clock)
        self.capacity = capacity
        self._busy = 0
        self._waiting: list[tuple[float, int]] = []
        self._cond = threading.Condition()

    @property
    def waiting(self) -> int:
        """How many threads are waiting for the gate."""
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def hold(self, cost: float, *, arrived: float | None = None) -> Iterator[None]:
        ticket = self._rank(cost, arrived)
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


__all__ = ["DEFAULT_AGEING", "DEFAULT_REFUSAL_DELAY", "PriorityGate", "PrioritySlots"]
