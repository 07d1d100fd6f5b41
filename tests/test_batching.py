"""Collation and the length-aware samplers of training, evaluation and inference: shapes, masks,
coverage, determinism, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.data.batching import (
    LengthGroupedBatchSampler,
    SortedSampler,
    collate_clips,
    effective_lengths,
    length_sorted_batches,
    padded_fraction,
    random_batches,
)


def _item(index: int, length: int | None, label: int = 0, error: str | None = None) -> dict:
    values = None if length is None else np.arange(1, length + 1, dtype=np.float32)
    return {"input_values": values, "label": label, "index": index, "error": error}


def _durations(n: int = 1003, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(3.5), 0.3, n), 2.0, 6.0)


# -- collate ----------------------------------------------------------------------------------


def test_collate_pads_with_zeros_and_masks_real_samples() -> None:
    batch = collate_clips([_item(4, 3, label=2), _item(7, 5, label=5)])
    assert batch["input_values"].shape == (2, 5)
    assert batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].dtype == torch.long
    assert batch["input_values"][0].tolist() == [1, 2, 3, 0, 0]
    assert batch["input_values"][1].tolist() == [1, 2, 3, 4, 5]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [2, 5]
    assert batch["index"].tolist() == [4, 7]
    assert batch["failed"] == []


def test_collate_leaves_failed_items_out_and_lists_them() -> None:
    items = [_item(0, 4), _item(1, None, error="a.wav: truncated"), _item(2, 2, label=-1)]
    batch = collate_clips(items)
    assert batch["index"].tolist() == [0, 2]
    assert batch["labels"].tolist() == [0, -1]
    assert batch["input_values"].shape == (2, 4)
    assert batch["failed"] == [(1, "a.wav: truncated")]


def test_collate_of_only_failed_items_gives_an_empty_batch() -> None:
    batch = collate_clips([_item(3, None, error="x: empty file")])
    assert batch["input_values"].shape[0] == 0
    assert batch["attention_mask"].shape[0] == 0
    assert batch["labels"].numel() == 0 and batch["index"].numel() == 0
    assert batch["failed"] == [(3, "x: empty file")]


# -- length-grouped sampler -------------------------------------------------------------------


def test_grouped_sampler_covers_every_index_once_per_epoch_with_right_sizes() -> None:
    durations = _durations(1003)
    sampler = LengthGroupedBatchSampler(durations, 8, seed=1)
    for _ in range(3):
        batches = list(sampler)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(1003))
        sizes = sorted(len(b) for b in batches)
        assert sizes[0] == 1003 % 8 and set(sizes[1:]) == {8}
        assert len(batches) == len(sampler) == 126


def test_grouped_sampler_order_changes_between_epochs_but_repeats_for_same_seed_and_epoch() -> None:
    durations = _durations(400)
    a = LengthGroupedBatchSampler(durations, 8, seed=3)
    epoch0, epoch1 = list(a), list(a)  # each iter() advances the epoch
    assert epoch0 != epoch1
    b = LengthGroupedBatchSampler(durations, 8, seed=3)
    b.set_epoch(1)
    assert list(b) == epoch1
    b.set_epoch(0)
    assert list(b) == epoch0
    assert list(LengthGroupedBatchSampler(durations, 8, seed=4)) != epoch0


def test_grouped_sampler_epoch_can_be_set_through_its_sampler_attribute() -> None:
    """Lightning calls ``batch_sampler.sampler.set_epoch(epoch)`` at the start of every epoch."""
    durations = _durations(200)
    sampler = LengthGroupedBatchSampler(durations, 8, seed=0)
    sampler.sampler.set_epoch(5)
    assert list(sampler) == sampler.batches(5)


def test_epoch_tags_and_ungrouped_batches() -> None:
    durations = _durations(100)
    tagged = LengthGroupedBatchSampler(durations, 8, seed=0, tag_epoch=True)
    tagged.set_epoch(3)
    assert list(tagged) == [[(i, 3) for i in b] for b in tagged.batches(3)]
    plain = list(LengthGroupedBatchSampler(durations, 8, seed=0, group=False))
    assert sorted(np.concatenate(plain).tolist()) == list(range(100))
    # Without grouping the batches mix lengths as random batches do.
    grouped = LengthGroupedBatchSampler(durations, 8, seed=0).batches(0)
    assert padded_fraction(durations, plain) > 3 * padded_fraction(durations, grouped)


def test_grouping_pads_far_less_than_random_batches() -> None:
    durations = _durations(2000)
    grouped = padded_fraction(durations, LengthGroupedBatchSampler(durations, 8, seed=0))
    random = padded_fraction(durations, random_batches(len(durations), 8, seed=0))
    assert grouped < 0.03
    assert random > 0.15
    assert random / grouped > 5


def test_padded_fraction_counts_padding_over_padded_samples() -> None:
    # batch [2, 4]: 8 padded samples, 2 of them padding; batch [3]: none.
    assert padded_fraction([2.0, 4.0, 3.0], [[0, 1], [2]]) == pytest.approx(2 / 11)


def test_cropped_lengths_are_what_the_sampler_groups() -> None:
    lengths = effective_lengths([2.0, 9.0, np.nan], max_seconds=6.0)
    assert lengths.tolist() == [2.0, 6.0, 0.0]


def test_grouped_sampler_drop_last_keeps_only_full_batches() -> None:
    sampler = LengthGroupedBatchSampler(_durations(1003), 8, drop_last=True)
    batches = list(sampler)
    assert {len(b) for b in batches} == {8}
    assert len(batches) == len(sampler) == 125


def test_grouped_sampler_shards_for_distributed_training() -> None:
    durations = _durations(1003)
    shards = [list(LengthGroupedBatchSampler(durations, 8, seed=2, num_replicas=3, rank=r))
              for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
    assert len(shards[0]) == len(LengthGroupedBatchSampler(durations, 8, num_replicas=3, rank=0))
    covered = np.concatenate([np.concatenate(s) for s in shards])
    assert set(covered.tolist()) == set(range(1003))
    assert len(covered) - 1003 < 2 * 8  # at most the batches added to even up the ranks
    with pytest.raises(ValueError, match="rank"):
        LengthGroupedBatchSampler(durations, 8, num_replicas=2, rank=2)


# -- sorted (evaluation) sampler ---------------------------------------------------------------


def test_sorted_batches_are_length_sorted_and_cover_all() -> None:
    durations = _durations(101)
    batches = length_sorted_batches(range(101), durations, 8)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(101))
    assert np.all(np.diff(durations[flat]) <= 0)  # longest first, throughout
    assert len(batches) == 13 and len(batches[-1]) == 101 % 8
    # The same order from the index sampler the data modules hand to DataLoader.
    assert list(SortedSampler(durations)) == flat.tolist()
    random = padded_fraction(durations, random_batches(101, 8))
    assert padded_fraction(durations, batches) < random / 3


def test_sorted_evaluation_batches_shard_without_repeats() -> None:
    """Under DDP each rank cuts its share of the sorted order into batches of ``batch_size``."""
    durations = _durations(50)
    shards = [[order[i:i + 8] for i in range(0, len(order), 8)]
              for order in (list(SortedSampler(durations, num_replicas=2, rank=r))
                            for r in range(2))]
    covered = np.concatenate([np.concatenate(s) for s in shards])
    assert sorted(covered.tolist()) == list(range(50))


def test_sorted_sampler_shards_every_clip_once_and_each_shard_stays_sorted() -> None:
    """Under DDP each rank evaluates its own share; no clip repeated (metrics stay exact)."""
    durations = _durations(51)
    shards = [list(SortedSampler(durations, num_replicas=2, rank=r)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(51))
    assert [len(s) for s in shards] == [26, 25]
    assert all(np.all(np.diff(durations[s]) <= 0) for s in shards)
    with pytest.raises(ValueError, match="rank"):
        SortedSampler(durations, num_replicas=2, rank=2)


# -- inference batches: length-sorted within a chunk, capped ------------------------------------


def test_batches_keep_padding_under_the_cap():
    durations = np.array([4.0, 3.9, 2.8, 2.7, 2.6, 1.0])  # 4, 3.9, 2.8: 10.8% padding
    batches = length_sorted_batches(range(6), durations, batch_size=8, max_padding=0.1)
    assert batches == [[0, 1], [2, 3, 4], [5]]


def test_batches_are_sorted_and_capped():
    durations = np.array([1.0, 5.0, 2.0, np.nan, 3.0, 4.0, 6.0])
    batches = length_sorted_batches(range(7), durations, batch_size=3, max_batch_seconds=12.0)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert batches[0] == [6, 1]  # 3 x 6 s would pass 12 s
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) * np.nan_to_num(durations[batch[0]]) <= 12.0
    flat = [np.nan_to_num(durations[i]) for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
