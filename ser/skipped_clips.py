"""Clips that could not be read during training, validation or test: kept per stage (and per
test set), each counted once however many epochs meet it.

Why: a broken file is left out of its batch (:func:`ser.data.batching.collate_clips`) instead
of stopping the run, so the count is what tells the user; ``metrics.json`` reports it as
``skipped`` and each epoch says it in one log line, not one per item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class SkippedClips:
    """``{stage or test set: {dataset row: reason}}`` of the clips a batch reported as failed."""

    def __init__(self) -> None:
        self.by_stage: dict[str, dict[int, str]] = {}

    def record(self, key: str, batch: dict[str, Any], stage: str) -> None:
        """Note the batch's failed items under ``key`` (the stage, or the test set's name)."""
        failed = self.by_stage.setdefault(key, {})
        for index, error in batch.get("failed", ()):
            if int(index) not in failed:
                log.debug("%s: skipped item %s: %s", stage, index, error)
            failed[int(index)] = str(error)

    def report(self, key: str) -> None:
        """One warning for ``key``'s skipped clips so far, if any."""
        failed = self.by_stage.get(key)
        if failed:
            first = next(iter(failed.values()))
            log.warning("%s: %d clips could not be read and were skipped (first: %s); counted "
                        "in metrics.json 'skipped'", key, len(failed), first)

    def counts(self, gather: Callable[[list[Any]], list[Any]]) -> dict[str, int]:
        """Skipped clips per key over every rank; ``gather`` collects each rank's list."""
        merged: dict[str, set[int]] = {}
        for part in gather([self.by_stage]):
            for key, items in part.items():
                merged.setdefault(key, set()).update(items)
        return {key: len(items) for key, items in merged.items()}
