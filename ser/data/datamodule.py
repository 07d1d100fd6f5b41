"""LightningDataModules for the Indonesian Kaggle corpus (train/val/predict) and RAVDESS (test).

Plain constructor arguments, so Hydra builds them from ``conf/data/*.yaml`` with ``_target_``.
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

from ser.data.batching import LengthGroupedBatchSampler, SortedSampler, collate_clips
from ser.data.dataset import AudioClipDataset
from ser.labels import LABELS

log = logging.getLogger(__name__)

SPLIT_COLUMNS: tuple[str, ...] = ("file", "split", "label")
SPLITS: tuple[str, ...] = ("train", "val")


# --------------------------------------------------------------------------------------------
# Splits


def _n_val(n: int, fraction: float) -> int:
    return int(np.floor(n * fraction + 0.5))  # round half up, unlike Python's round()


def stratified_split(labels: Sequence[Any], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: ``round(n_c * val_fraction)`` random rows of each class.

    Deterministic for a seed: classes are visited in sorted order with one seeded generator.
    """
    keys = pd.Series(list(labels), dtype=object).fillna("<none>").astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(keys), dtype=bool)
    for key in sorted(set(keys)):
        rows = np.flatnonzero(keys == key)
        is_val[rng.permutation(rows)[: _n_val(len(rows), val_fraction)]] = True
    return is_val


def group_split(groups: Sequence[Any], labels: Sequence[Any], val_fraction: float,
                seed: int) -> np.ndarray:
    """Boolean mask of validation rows where whole groups (speakers) go to validation.

    Groups are visited in a seeded random order and one is taken when it brings the validation
    class counts closer to ``round(n_c * val_fraction)`` for every class c, so the total and the
    class balance are both approximately kept.
    """
    group_keys = pd.Series(list(groups), dtype=object)
    if group_keys.isna().any():
        raise ValueError(f"{int(group_keys.isna().sum())} rows have no group; a group split needs "
                         "a group for every row")
    group_keys = group_keys.astype(str).to_numpy()
    label_keys = pd.Series(list(labels), dtype=object).fillna("<none>").astype(str)
    classes = sorted(set(label_keys))
    label_codes = pd.Categorical(label_keys, categories=classes).codes
    unique_groups = sorted(set(group_keys))
    if len(unique_groups) < 2:
        raise ValueError(f"a group split needs at least 2 groups, found {len(unique_groups)}")
    group_codes = pd.Categorical(group_keys, categories=unique_groups).codes
    # counts[g, c]: rows of class c in group g
    counts = np.zeros((len(unique_groups), len(classes)), dtype=np.int64)
    np.add.at(counts, (group_codes, label_codes), 1)
    target = np.array([_n_val(int(n), val_fraction) for n in counts.sum(axis=0)])
    chosen = np.zeros(len(unique_groups), dtype=bool)
    current = np.zeros(len(classes), dtype=np.int64)
    for g in np.random.default_rng(seed).permutation(len(unique_groups)):
        after = current + counts[g]
        if np.abs(after - target).sum() < np.abs(current - target).sum():
            chosen[g] = True
            current = after
    if chosen.all():
        raise ValueError("the group split put every group in validation; lower val_fraction")
    if val_fraction > 0 and not chosen.any():
        raise ValueError(f"no group is small enough for a validation share of {val_fraction} "
                         f"({len(unique_groups)} groups); raise val_fraction or use "
                         "split='stratified'")
    return chosen[group_codes]


# --------------------------------------------------------------------------------------------
# Indonesian Kaggle corpus


class IndonesianDataModule(L.LightningDataModule):
    """Kaggle train set split into train/val (seeded, stratified or group-disjoint), plus the
    Kaggle test set for prediction.

    ``test_dataloader`` iterates the validation split (the Kaggle test set has no labels);
    ``predict_dataloader`` iterates the Kaggle test set (:attr:`test_frame`), in length order —
    ``batch["index"]`` is its row in :attr:`test_frame`, so a submission is re-ordered by index.

    ``split_file``: where to write the split (``file,split,label``). ``split_from``: an existing
    split file to reuse instead of drawing one; every training file must be listed in it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        split: str = "stratified",
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
        if split not in ("stratified", "group"):
            raise ValueError(f"split must be 'stratified' or 'group', got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters(ignore=["augment"], logger=False)
        self.root = Path(root).expanduser()
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.val_fraction = float(val_fraction)
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
        self._test_frame: pd.DataFrame | None = None
        self.train_dataset: AudioClipDataset | None = None
        self.val_dataset: AudioClipDataset | None = None
        self._test_dataset: AudioClipDataset | None = None

    # -- setup --------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            self._load_test()
            return
        if self.train_frame is not None:
            return
        from ser.data.kaggle import load_kaggle

        frame = load_kaggle(self.root, "train").reset_index(drop=True)
        is_val = self._read_split(frame) if self.split_from else self._draw_split(frame)
        self.train_frame = frame[~is_val].reset_index(drop=True)
        self.val_frame = frame[is_val].reset_index(drop=True)
        log.info("split (%s, seed %d): %d train, %d val; val per class: %s",
                 "from " + str(self.split_from) if self.split_from else self.split, self.seed,
                 len(self.train_frame), len(self.val_frame),
                 self.val_frame["label"].value_counts().reindex(LABELS, fill_value=0).to_dict())
        if self.split_file is not None and self._is_rank_zero():
            self.write_split(self.split_file)
        self.train_dataset = AudioClipDataset(
            self.train_frame, max_seconds=self.max_train_seconds, random_crop=True,
            augment=self.augment, seed=self.seed)
        self.val_dataset = AudioClipDataset(self.val_frame)

    def _draw_split(self, frame: pd.DataFrame) -> np.ndarray:
        if self.val_fraction == 0:
            return np.zeros(len(frame), dtype=bool)
        if self.split == "group":
            if "group" not in frame.columns:
                raise KeyError("split='group' needs a 'group' column in the training frame")
            return group_split(frame["group"], frame["label"], self.val_fraction, self.seed)
        return stratified_split(frame["label"], self.val_fraction, self.seed)

    def _read_split(self, frame: pd.DataFrame) -> np.ndarray:
        path = self.split_from
        assert path is not None
        if not path.is_file():
            raise FileNotFoundError(f"split file {path} not found (split_from); give the "
                                    "split.csv of an earlier run, or leave split_from unset")
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in ("file", "split") if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: columns {list(table.columns)} lack {missing}; "
                             "expected file,split[,label]")
        bad = sorted(set(table["split"]) - set(SPLITS))
        if bad:
            raise ValueError(f"{path}: split values {bad} are not one of {list(SPLITS)}")
        dups = table["file"][table["file"].duplicated()].unique().tolist()
        if dups:
            raise ValueError(f"{path}: files listed more than once: {dups[:5]}")
        where = dict(zip(table["file"], table["split"]))
        unlisted = [f for f in frame["id"] if f not in where]
        if unlisted:
            raise ValueError(
                f"{path} does not list {len(unlisted)} of the {len(frame)} training files "
                f"(first: {unlisted[:3]}); it belongs to another version of the data. "
                "Leave split_from unset to draw a new split.")
        gone = len(set(where) - set(frame["id"]))
        if gone:
            log.warning("%s lists %d files that are not in the training data now (missing or "
                        "left out by load_kaggle); they are ignored", path, gone)
        return frame["id"].map(where).eq("val").to_numpy()

    def write_split(self, path: str | os.PathLike) -> Path:
        """Write ``file,split,label`` for every training file (train rows first, CSV order)."""
        if self.train_frame is None or self.val_frame is None:
            raise RuntimeError("call setup() before write_split()")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pd.concat([
            pd.DataFrame({"file": f["id"], "split": name, "label": f["label"]})
            for name, f in (("train", self.train_frame), ("val", self.val_frame))
        ], ignore_index=True)
        table.to_csv(path, index=False, columns=list(SPLIT_COLUMNS))
        log.info("split written to %s", path)
        return path

    def _load_test(self) -> None:
        if self._test_frame is None:
            from ser.data.kaggle import load_kaggle

            self._test_frame = load_kaggle(self.root, "test").reset_index(drop=True)
            self._test_dataset = AudioClipDataset(self._test_frame)

    def _is_rank_zero(self) -> bool:
        return replica_of(self)[1] == 0

    # -- frames and counts --------------------------------------------------------------------

    @property
    def test_frame(self) -> pd.DataFrame:
        """The Kaggle test set (``load_kaggle(root, "test")``), read on first use."""
        self._load_test()
        assert self._test_frame is not None
        return self._test_frame

    def frame_for(self, stage: str) -> pd.DataFrame:
        """The frame whose rows ``batch["index"]`` refers to in that stage's loader."""
        if stage == "predict":
            return self.test_frame
        self._require_setup()
        frames = {"fit": self.train_frame, "train": self.train_frame,
                  "validate": self.val_frame, "val": self.val_frame, "test": self.val_frame}
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
        self._require_setup()
        return self._eval_loader(self.val_dataset)

    def predict_dataloader(self) -> DataLoader:
        self._load_test()
        return self._eval_loader(self._test_dataset)


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
