"""Which share of a corpus this process takes: the trainer's world size and rank, and the
evaluation sampler that gives each rank a disjoint share of the clips.

Why here and not Lightning's distributed sampler: every sampler of :mod:`ser.data.datamodule`
shards itself, so each clip is evaluated exactly once across ranks (no repeated clips padding
the last batch) and training ranks take equal numbers of length-grouped batches; a DDP Trainer
therefore runs with ``use_distributed_sampler=False`` (``conf/trainer/ddp.yaml``).
"""

from __future__ import annotations

import lightning as L

from ser.data.batching import SortedSampler
from ser.data.dataset import AudioClipDataset


def replica_of(datamodule: L.LightningDataModule) -> tuple[int, int]:
    """(world size, global rank) of the trainer the module is attached to; (1, 0) without one."""
    trainer = getattr(datamodule, "trainer", None)
    if trainer is None:
        return 1, 0
    return int(trainer.world_size), int(trainer.global_rank)


def eval_sampler(datamodule: L.LightningDataModule, dataset: AudioClipDataset) -> SortedSampler:
    """Length-sorted evaluation order, this rank's share under DDP. A sampler used with a plain
    ``batch_size`` (not a batch sampler), so Lightning can still wrap it for prediction."""
    replicas, rank = replica_of(datamodule)
    return SortedSampler(dataset.durations, num_replicas=replicas, rank=rank)
