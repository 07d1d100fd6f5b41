"""Which clips go in a batch — in training, evaluation and inference — and their collation.

Wav2Vec2 runs its convolutions and attention over every padded sample, so a batch that mixes a
2 s clip with a 6 s one wastes two thirds of the short clip's compute. So every loader batches
clips of similar length, sorted by one rule (:func:`longest_first`, unknown lengths as 0):
training with :class:`LengthGroupedBatchSampler` (shuffling the *order of batches*, not their
content, between epochs; ``bench/padding.py`` measures it), evaluation with
:class:`SortedSampler`, inference with :func:`length_sorted_batches` over each chunk of its
input (:class:`ser.inference.stream.ChunkedBatchSampler`).

Distributed training: :class:`LengthGroupedBatchSampler` shards its batch list itself when given
``num_replicas``/``rank`` (every rank builds the same list from the same seed and epoch, then
takes every ``num_replicas``-th batch), so run the Trainer with ``use_distributed_sampler=False``;
:class:`~ser.data.datamodule.IndonesianDataModule` passes the trainer's world size and rank.
Evaluation loaders use :class:`SortedSampler` with a plain ``batch_size``, which Lightning can
shard and wrap for prediction on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


# --------------------------------------------------------------------------------------------
# Collation


def collate_clips(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Zero-pad the loaded clips to the longest one; leave failed items out and list them.

    Returns ``input_values`` FloatTensor[B, T], ``attention_mask`` LongTensor[B, T] (1 on real
    samples), ``labels`` LongTensor[B], ``index`` LongTensor[B] and ``failed``: a list of
    ``(index, error)`` for the items that could not be loaded. B may be 0.
    """
    ok: list[dict[str, Any]] = []
    failed: list[tuple[int, str]] = []
    for item in items:
        if item.get("error") is not None:
            failed.append((int(item["index"]), str(item["error"])))
        elif item.get("input_values") is None:
            # A dataset bug rather than a data problem, but still one item, not the whole batch.
            failed.append((int(item["index"]), "item has neither audio nor an error"))
        else:
            ok.append(item)
    lengths = [int(np.asarray(it["input_values"]).shape[-1]) for it in ok]
    longest = max(lengths, default=0)
    values = np.zeros((len(ok), longest), dtype=np.float32)
    mask = np.zeros((len(ok), longest), dtype=np.int64)
    for row, (item, length) in enumerate(zip(ok, lengths)):
        values[row, :length] = item["input_values"]
        mask[row, :length] = 1
    return {
        "input_values": torch.from_numpy(values),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.tensor([int(it["label"]) for it in ok], dtype=torch.long),
        "index": torch.tensor([int(it["index"]) for it in ok], dtype=torch.long),
        "failed": failed,
    }


# --------------------------------------------------------------------------------------------
# Lengths and padding


def effective_lengths(durations: Sequence[float] | np.ndarray,
                      max_seconds: float | None = None) -> np.ndarray:
    """Lengths as the batch will see them: cropped to ``max_seconds``; unknown (NaN) as 0.

    A file whose header cannot be read fails at load and is left out of its batch, so it adds no
    padding wherever it is placed.
    """
    lengths = np.nan_to_num(np.asarray(durations, dtype=np.float64), nan=0.0)
    if max_seconds is not None:
        lengths = np.minimum(lengths, float(max_seconds))
    return lengths


def padded_fraction(durations: Sequence[float] | np.ndarray,
                    batches: Iterable[Sequence[int]]) -> float:
    """Share of the padded tensors' samples that are padding, over the given batches."""
    lengths = effective_lengths(durations)
    total = 0.0
    real = 0.0
    for batch in batches:
        batch_lengths = lengths[np.asarray(list(batch), dtype=np.int64)]
        if batch_lengths.size == 0:
            continue
        total += batch_lengths.size * batch_lengths.max()
        real += batch_lengths.sum()
    return float((total - real) / total) if total > 0 else 0.0


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """Positions of ``lengths`` longest first; ties keep their order (a stable sort)."""
    return np.argsort(-lengths, kind="stable")


def _chunk(order: np.ndarray, batch_size: int, drop_last: bool) -> list[list[int]]:
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _check_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    replicas = 1 if num_replicas is None else int(num_replicas)
    rank = 0 if rank is None else int(rank)
    if replicas < 1 or not 0 <= rank < replicas:
        raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, "
                         f"got num_replicas={num_replicas}, rank={rank}")
    return replicas, rank


# --------------------------------------------------------------------------------------------
# Samplers


class _EpochHook:
    """Lets Lightning's per-epoch ``batch_sampler.sampler.set_epoch(epoch)`` reach the batch
    sampler (Lightning looks there, not on the batch sampler), so a resumed run continues with the
    batch order of its epoch instead of restarting at epoch 0."""

    def __init__(self, owner: LengthGroupedBatchSampler) -> None:
        self._owner = owner

    def set_epoch(self, epoch: int) -> None:
        self._owner.set_epoch(epoch)


class LengthGroupedBatchSampler(Sampler[list]):
    """Training batches of similar length, in a new random order every epoch.

    Each epoch: permute all indices (seeded by ``seed`` and the epoch), cut the permutation into
    mega-buckets of ``batch_size * bucket_size_multiplier`` clips, sort each bucket by length and
    cut it into batches, then shuffle the order of all batches. Large buckets give low padding,
    small ones more randomness in which clips meet; 50 x 8 = 400 clips keeps padding near 1 % on
    2-6 s clips. ``durations`` should be the lengths the batch will hold (see
    :func:`effective_lengths` for cropped training clips). ``group=False`` skips the sort: plain
    shuffled batches with the same epoch, seeding and sharding behaviour.

    The epoch advances by one on each ``iter()``; ``set_epoch`` sets it (Lightning calls it through
    ``self.sampler``). The same seed and epoch always give the same batches. With
    ``tag_epoch=True`` batches hold ``(index, epoch)`` pairs, so that
    :class:`~ser.data.dataset.AudioClipDataset` can draw each clip's crop and augmentation from
    seed, epoch and index alone.
    """

    def __init__(
        self,
        durations: Sequence[float] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size_multiplier: int = 50,
        group: bool = True,
        drop_last: bool = False,
        tag_epoch: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if isinstance(durations, Sampler):
            # Lightning re-creates batch samplers as cls(sampler, batch_size=..., drop_last=...)
            # when it injects a DistributedSampler; this one shards itself instead.
            raise TypeError(
                "LengthGroupedBatchSampler needs clip durations, got a sampler: under DDP run the "
                "Trainer with use_distributed_sampler=False (the sampler shards by "
                "num_replicas/rank itself)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if bucket_size_multiplier < 1:
            raise ValueError(f"bucket_size_multiplier must be >= 1, got {bucket_size_multiplier}")
        self.lengths = effective_lengths(durations)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.bucket_size_multiplier = int(bucket_size_multiplier)
        self.group = group
        self.drop_last = drop_last
        self.tag_epoch = tag_epoch
        self.num_replicas, self.rank = _check_replicas(num_replicas, rank)
        self.epoch = 0
        self.sampler = _EpochHook(self)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[list[int]]:
        """This replica's batches for ``epoch`` (pure: does not advance the epoch)."""
        n = len(self.lengths)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
        else:
            rng = None
            order = np.arange(n)
        if not self.group:
            return self._shard(_chunk(order, self.batch_size, self.drop_last))
        bucket = self.batch_size * self.bucket_size_multiplier
        batches: list[list[int]] = []
        for start in range(0, n, bucket):
            chunk = order[start:start + bucket]
            chunk = chunk[longest_first(self.lengths[chunk])]  # ties keep their random order
            batches.extend(_chunk(chunk, self.batch_size, drop_last=False))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            # Only the last bucket can end in a short batch (buckets are whole batches).
            batches = [b for b in batches if len(b) == self.batch_size]
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return self._shard(batches)

    def _shard(self, batches: list[list[int]]) -> list[list[int]]:
        if self.num_replicas == 1:
            return batches
        # Every rank needs the same number of steps: repeat batches from the start to even up.
        if batches:
            short = -len(batches) % self.num_replicas
            batches = batches + [batches[i % len(batches)] for i in range(short)]
        return batches[self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[list]:
        epoch = self.epoch
        self.epoch += 1
        for batch in self.batches(epoch):
            yield [(i, epoch) for i in batch] if self.tag_epoch else batch

    def __len__(self) -> int:
        n = len(self.lengths)
        full, rest = divmod(n, self.batch_size)
        count = full + (1 if rest and not self.drop_last else 0)
        return -(-count // self.num_replicas)


class SortedSampler(Sampler[int]):
    """Indices longest first (ties in index order): with a plain ``batch_size`` this makes
    length-sorted evaluation batches, and Lightning can still wrap it for prediction.

    With ``num_replicas``/``rank`` (DDP) each replica takes every ``num_replicas``-th index of
    the sorted order: its batches stay length-sorted, every clip is evaluated exactly once
    (no padding with repeats, unlike DistributedSampler, so metrics stay exact), and counts
    differ by at most one.
    """

    def __init__(self, durations: Sequence[float] | np.ndarray, *,
                 num_replicas: int | None = None, rank: int | None = None) -> None:
        replicas, rank = _check_replicas(num_replicas, rank)
        self.order = longest_first(effective_lengths(durations))[rank::replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def length_sorted_batches(indices: Iterable[int], durations: Sequence[float] | np.ndarray,
                          batch_size: int, max_batch_seconds: float | None = None,
                          max_padding: float | None = None) -> list[list[int]]:
    """``indices`` longest first, cut into batches: a batch closes at ``batch_size`` items, when
    its padded size (items x longest) would pass ``max_batch_seconds``, or when the next item
    would make more than ``max_padding`` of the batch padding. Without the caps these are the
    evaluation batches (:class:`SortedSampler` cut every ``batch_size``). Unknown lengths (NaN)
    count as 0."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chosen = np.asarray(list(indices), dtype=np.int64)
    lengths = effective_lengths(np.asarray(durations, dtype=np.float64)[chosen])
    order = longest_first(lengths)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = total = 0.0
    for index, length in zip(chosen[order].tolist(), lengths[order].tolist()):
        if current:
            padded = (len(current) + 1) * longest
            if (len(current) >= batch_size
                    or (max_batch_seconds is not None and padded > max_batch_seconds)
                    or (max_padding is not None and longest > 0
                        and 1 - (total + length) / padded > max_padding)):
                batches.append(current)
                current = []
        if not current:
            longest, total = length, 0.0
        current.append(index)
        total += length
    if current:
        batches.append(current)
    return batches


def random_batches(n: int, batch_size: int, *, seed: int = 0) -> list[list[int]]:
    """Plain shuffled batches, the baseline that length grouping is measured against."""
    order = np.random.default_rng(seed).permutation(n)
    return _chunk(order, batch_size, drop_last=False)
