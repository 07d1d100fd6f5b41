"""LightningDataModules for the Indonesian Kaggle corpus (train/val/predict) and RAVDESS (test).

Plain constructor arguments, so Hydra builds the training data from ``conf/data/*.yaml`` with
``_target_``; a training run's extra test sets come from the ``conf/dataset/*.yaml`` descriptions
that evaluate.py uses too (:mod:`ser.data.extra_test`).
Every loader yields the batches of :func:`ser.data.batching.collate_clips`; ``batch["index"]``
is the row of the loader's frame (:meth:`IndonesianDataModule.frame_for`), which is how
evaluation code joins predictions back to paths and metadata.

Multi-GPU: every sampler shards itself by the trainer's world size and rank, so a DDP Trainer
needs ``use_distributed_sampler=False`` (``conf/trainer/ddp.yaml``). Training ranks take equal
numbers of batches; evaluation ranks each take a disjoint share of the clips, every clip once,
and the model gathers their outputs (metrics are exact, not padded with repeated clips).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from ser.data.batching import LengthGroupedBatchSampler, collate_clips
from ser.data.dataset import AudioClipDataset
from ser.data.sharding import eval_sampler, replica_of
from ser.data.splits import (
    SPLIT_KINDS,
    check_fractions,
    describe_split,
    split_frame,
    split_from_file,
    write_split_file,
)
from ser.labels import LABELS

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Indonesian Kaggle corpus


class IndonesianDataModule(L.LightningDataModule):
    """Kaggle training data split into train / validation / test (seeded; by default no speaker
    in two splits, see :mod:`ser.data.splits`), plus the unlabelled Kaggle test set.

    Validation selects the checkpoint, stops early and drives sweeps; ``test_dataloader`` is the
    held-out test split, for the best checkpoint once at the end. ``predict_dataloader``
    iterates the Kaggle test set (:attr:`kaggle_test_frame`) in length order; ``batch["index"]``
    is its row there, so a submission is re-ordered by index.

    ``split_file``: where to write ``split.csv``. ``split_from``: an existing split file to reuse
    instead of drawing one (a resumed run, a comparison on the same split); every training file
    must be listed in it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split: str = "speaker",
        seed: int = 42,
        max_train_seconds: float | None = 6.0,
        group_by_length: bool = True,
        split_file: str | os.PathLike | None = None,
        split_from: str | os.PathLike | None = None,
        augment: Callable[[np.ndarray], np.ndarray] | None = None,
        pin_memory: bool = False,
        bucket_size_multiplier: int = 50,
    ) -> None:
        super().__init__()
        if split not in SPLIT_KINDS:
            raise ValueError(f"split must be one of {list(SPLIT_KINDS)}, got {split!r}")
        check_fractions(val_fraction, test_fraction)
        self.save_hyperparameters(ignore=["augment"], logger=False)
        self.root = Path(root).expanduser()
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.split = split
        self.seed = int(seed)
        self.max_train_seconds = max_train_seconds
        self.group_by_length = group_by_length
        self.split_file = Path(split_file) if split_file else None
        self.split_from = Path(split_from) if split_from else None
        self.augment = augment
        self.pin_memory = pin_memory
        self.bucket_size_multiplier = int(bucket_size_multiplier)
        self.train_frame: pd.DataFrame | None = None
        self.val_frame: pd.DataFrame | None = None
        self.test_frame: pd.DataFrame | None = None
        self.split_info: dict[str, Any] = {}
        self._kaggle_test_frame: pd.DataFrame | None = None
        self.train_dataset: AudioClipDataset | None = None
        self.val_dataset: AudioClipDataset | None = None
        self.test_dataset: AudioClipDataset | None = None
        self._kaggle_test_dataset: AudioClipDataset | None = None

    # -- setup --------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            self._load_kaggle_test()
            return
        if self.train_frame is not None:
            return
        from ser.data.kaggle import load_kaggle

        frame = load_kaggle(self.root, "train").reset_index(drop=True)
        if self.split_from:
            split = split_from_file(frame, self.split_from)
        else:
            split = split_frame(frame, self.split, self.val_fraction, self.test_fraction,
                                self.seed)
        self.train_frame, self.val_frame, self.test_frame = (
            frame[split == name].reset_index(drop=True) for name in ("train", "val", "test"))
        self.split_info = describe_split(
            frame, split, f"from {self.split_from}" if self.split_from else self.split, self.seed)
        log.info("split (%s, seed %d): %s", self.split_info["kind"], self.seed, ", ".join(
            f"{name} {block['clips']} clips / {block['speakers']} speakers"
            for name, block in self.split_info["splits"].items()))
        if self.split_info["shared_speakers"]:
            log.warning("split=%s: %d speakers are in more than one split, so validation and "
                        "test scores are optimistic (they measure known voices); "
                        "data.split=speaker keeps them apart", self.split_info["kind"],
                        self.split_info["shared_speakers"])
        if self.split_file is not None and self._is_rank_zero():
            write_split_file(frame, split, self.split_file)
            log.info("split written to %s", self.split_file)
        self.train_dataset = AudioClipDataset(
            self.train_frame, max_seconds=self.max_train_seconds, random_crop=True,
            augment=self.augment, seed=self.seed)
        self.val_dataset = AudioClipDataset(self.val_frame)
        self.test_dataset = AudioClipDataset(self.test_frame)

    def write_split(self, path: str | os.PathLike) -> Path:
        """Write ``split.csv`` (see :func:`ser.data.splits.write_split_file`) again to ``path``."""
        self._require_setup()
        frames = {"train": self.train_frame, "val": self.val_frame, "test": self.test_frame}
        frame = pd.concat(frames.values(), ignore_index=True)
        split = np.concatenate([np.full(len(f), name, dtype=object) for name, f in frames.items()])
        return write_split_file(frame, split, path)

    def _load_kaggle_test(self) -> None:
        if self._kaggle_test_frame is None:
            from ser.data.kaggle import load_kaggle

            self._kaggle_test_frame = load_kaggle(self.root, "test").reset_index(drop=True)
            self._kaggle_test_dataset = AudioClipDataset(self._kaggle_test_frame)

    def _is_rank_zero(self) -> bool:
        return replica_of(self)[1] == 0

    # -- frames and counts --------------------------------------------------------------------

    @property
    def kaggle_test_frame(self) -> pd.DataFrame:
        """The unlabelled Kaggle test set (``load_kaggle(root, "test")``), read on first use."""
        self._load_kaggle_test()
        assert self._kaggle_test_frame is not None
        return self._kaggle_test_frame

    def frame_for(self, stage: str) -> pd.DataFrame:
        """The frame whose rows ``batch["index"]`` refers to in that stage's loader."""
        if stage == "predict":
            return self.kaggle_test_frame
        self._require_setup()
        frames = {"fit": self.train_frame, "train": self.train_frame,
                  "validate": self.val_frame, "val": self.val_frame, "test": self.test_frame}
        if stage not in frames:
            raise ValueError(f"unknown stage {stage!r}; one of {sorted(frames) + ['predict']}")
        return frames[stage]

    def class_counts(self) -> list[int]:
        """Training-split files per class, in label order (for class weights)."""
        self._require_setup()
        counts = self.train_frame["label"].value_counts()
        return [int(counts.get(label, 0)) for label in LABELS]

    def _require_setup(self) -> None:
        if self.train_frame is None:
            raise RuntimeError("call setup() first")

    # -- loaders ------------------------------------------------------------------------------

    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "collate_fn": collate_clips,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": self.pin_memory,
        }

    def train_dataloader(self) -> DataLoader:
        """Length-grouped (or, with ``group_by_length=False``, plain shuffled) batches of cropped
        clips; batches carry ``(index, epoch)`` keys so crops and augmentation depend on seed,
        epoch and clip only. Under DDP each rank takes its share of the batches."""
        self._require_setup()
        dataset = self.train_dataset
        replicas, rank = replica_of(self)
        sampler = LengthGroupedBatchSampler(
            dataset.cropped_durations() if self.group_by_length else np.zeros(len(dataset)),
            self.batch_size, shuffle=True, seed=self.seed, group=self.group_by_length,
            bucket_size_multiplier=self.bucket_size_multiplier, tag_epoch=True,
            num_replicas=replicas, rank=rank)
        return DataLoader(dataset, batch_sampler=sampler, **self._loader_kwargs())

    def _eval_loader(self, dataset: AudioClipDataset) -> DataLoader:
        return DataLoader(dataset, sampler=eval_sampler(self, dataset),
                          batch_size=self.eval_batch_size, **self._loader_kwargs())

    def val_dataloader(self) -> DataLoader:
        self._require_setup()
        return self._eval_loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader:
        """The held-out test split (speakers never seen in training or validation)."""
        self._require_setup()
        return self._eval_loader(self.test_dataset)

    def predict_dataloader(self) -> DataLoader:
        self._load_kaggle_test()
        return self._eval_loader(self._kaggle_test_dataset)


# --------------------------------------------------------------------------------------------
# RAVDESS


class RavdessDataModule(L.LightningDataModule):
    """RAVDESS speech for evaluation: every clip whole, batches in length order.

    Calm and surprised have no class among the six: their items carry label -1, and evaluation
    reports where their predictions go. ``batch["index"]`` is the row of :attr:`frame`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        actors: str | Sequence[int] = "default",
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.root = Path(root).expanduser()
        # Hydra hands lists over as ListConfig: make it a plain list (load_ravdess checks it).
        self.actors: str | list[int] = actors if isinstance(actors, str) else list(actors)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.index: Any = None
        self._frame: pd.DataFrame | None = None
        self.dataset: AudioClipDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._frame is not None:
            return
        from ser.data.ravdess import load_ravdess

        self.index = load_ravdess(self.root, actors=self.actors)
        self._frame = self.index.frame.reset_index(drop=True)
        self.dataset = AudioClipDataset(self._frame)
        log.info("RAVDESS: %d clips (%d without a class: calm, surprised)",
                 len(self._frame), int(self._frame["label"].isna().sum()))

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self.setup()
        assert self._frame is not None
        return self._frame

    def _loader(self) -> DataLoader:
        self.setup()
        assert self.dataset is not None
        return DataLoader(self.dataset, sampler=eval_sampler(self, self.dataset),
                          batch_size=self.batch_size, collate_fn=collate_clips,
                          num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=self.pin_memory)

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()
