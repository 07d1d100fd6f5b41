"""Datasets and data modules on small corpora written here: crops, splits, loaders, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from ser.audio import TARGET_SR
from ser.data.batching import LengthGroupedBatchSampler
from ser.data.datamodule import IndonesianDataModule, RavdessDataModule
from ser.data.dataset import AudioClipDataset
from ser.labels import LABEL2ID, LABELS

N_BLOCKS = 10  # source-1 ids in blocks of 82: ten CREMA-D speakers, one file per class each
SECONDS = [0.6, 0.9, 1.2, 1.5, 1.8, 2.1]


def _write(path: Path, seconds: float, rng: np.random.Generator, sr: int = TARGET_SR,
           channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    sf.write(path, data, sr)


@pytest.fixture(scope="module")
def kaggle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 training files (10 per class, 10 speaker groups), 5 test files of which one is broken."""
    root = tmp_path_factory.mktemp("indonesian")
    rng = np.random.default_rng(0)
    rows = []
    for block in range(N_BLOCKS):
        for k in range(6):
            label = LABELS[(block + k) % 6]
            name = f"1_{block * 82 + k:05d}_{label}_sedang.wav"
            sr, channels = (48_000, 2) if k == 0 else (TARGET_SR, 1)
            _write(root / "train" / name, SECONDS[(block + 2 * k) % 6], rng, sr, channels)
            rows.append((name, label))
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(root / "train.csv", index=False)
    test_ids = [f"test{i}.wav" for i in range(1, 6)]
    for i, name in enumerate(test_ids[:-1]):
        _write(root / "test" / name, 0.5 + 0.3 * i, rng)
    (root / "test" / test_ids[-1]).write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")  # truncated
    pd.DataFrame({"id": test_ids}).to_csv(root / "test.csv", index=False)
    return root


def _ramp_file(tmp_path: Path, seconds: float = 2.0) -> Path:
    """A strictly increasing signal: any crop of it tells where it was cut from."""
    path = tmp_path / "ramp.wav"
    sf.write(path, np.linspace(-0.9, 0.9, int(seconds * TARGET_SR)).astype(np.float32), TARGET_SR,
             subtype="FLOAT")
    return path


def _epoch(loader) -> tuple[list[int], list[tuple[int, str]], list[dict]]:
    indices, failed, batches = [], [], []
    for batch in loader:
        indices += batch["index"].tolist()
        failed += batch["failed"]
        batches.append(batch)
    return indices, failed, batches


# -- dataset ---------------------------------------------------------------------------------


def test_random_crop_reads_a_true_slice_within_max_seconds_and_differs_between_draws(
        tmp_path: Path) -> None:
    path = _ramp_file(tmp_path)
    full = sf.read(path, dtype="float32")[0]
    frame = pd.DataFrame({"path": [str(path)], "label": ["sedih"]})
    train = AudioClipDataset(frame, max_seconds=0.5, random_crop=True)
    crops = [train[0]["input_values"] for _ in range(4)]
    starts = set()
    for crop in crops:
        assert len(crop) == int(0.5 * TARGET_SR)
        start = int(np.searchsorted(full, crop[0]))
        np.testing.assert_array_equal(crop, full[start:start + len(crop)])
        starts.add(start)
    assert len(starts) == 4  # every epoch sees another window
    item = AudioClipDataset(frame)[0]  # evaluation: whole clip
    assert len(item["input_values"]) == len(full)
    assert item["label"] == LABEL2ID["sedih"] and item["index"] == 0 and item["error"] is None


def test_random_crops_repeat_under_the_same_torch_seed(tmp_path: Path) -> None:
    frame = pd.DataFrame({"path": [str(_ramp_file(tmp_path))]})
    runs = []
    for _ in range(2):
        torch.manual_seed(7)  # what seed_everything does
        dataset = AudioClipDataset(frame, max_seconds=0.5, random_crop=True, seed=1)
        runs.append([dataset[0]["input_values"][0] for _ in range(3)])
    assert runs[0] == runs[1]
    torch.manual_seed(8)
    other = AudioClipDataset(frame, max_seconds=0.5, random_crop=True, seed=1)
    assert [other[0]["input_values"][0] for _ in range(3)] != runs[0]


def test_epoch_keyed_items_crop_and_augment_from_seed_epoch_and_index(tmp_path: Path) -> None:
    frame = pd.DataFrame({"path": [str(_ramp_file(tmp_path))] * 2})

    def shift(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return wave + np.float32(rng.uniform(10, 20))

    def make(seed: int = 0) -> AudioClipDataset:
        return AudioClipDataset(frame, max_seconds=0.5, random_crop=True, augment=shift,
                                seed=seed)

    first = make()[(1, 4)]["input_values"]
    torch.manual_seed(123)  # the process seed plays no part for (index, epoch) keys
    assert np.array_equal(make()[(1, 4)]["input_values"], first)
    assert first.min() > 9  # augmented
    assert make()[(1, 4)]["index"] == 1
    for other in (make()[(1, 5)], make()[(0, 4)], make(seed=1)[(1, 4)]):
        assert not np.array_equal(other["input_values"], first)
    one_arg = AudioClipDataset(frame, augment=lambda wave: -wave)[(0, 0)]["input_values"]
    assert one_arg[0] > 0.89  # the ramp starts at -0.9


def test_broken_files_become_item_errors_and_the_others_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    good = tmp_path / "good.wav"
    _write(good, 1.0, rng)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    frame = pd.DataFrame({"path": [str(good), str(empty), str(tmp_path / "gone.wav"), str(text)],
                          "label": ["marah", "marah", None, "calm"]})
    dataset = AudioClipDataset(frame, max_seconds=0.5, random_crop=True)
    durations = dataset.durations
    assert durations[0] == pytest.approx(1.0) and np.isnan(durations[1:]).all()
    items = [dataset[i] for i in range(4)]
    assert items[0]["error"] is None and len(items[0]["input_values"]) == TARGET_SR // 2
    for item, word in zip(items[1:], ["empty", "not found", "not an audio file"]):
        assert item["input_values"] is None
        assert word in item["error"] and Path(frame["path"][item["index"]]).name in item["error"]
    assert [it["label"] for it in items] == [LABEL2ID["marah"], LABEL2ID["marah"], -1, -1]


# -- Indonesian data module ---------------------------------------------------------------------


def _val_ids(dm: IndonesianDataModule) -> set[str]:
    return set(dm.val_frame["id"])


def test_stratified_split_is_per_class_seeded_and_written(kaggle_root: Path,
                                                          tmp_path: Path) -> None:
    split_csv = tmp_path / "run" / "split.csv"
    dm = IndonesianDataModule(kaggle_root, split="stratified", val_fraction=0.2,
                              test_fraction=0.2, seed=3, split_file=split_csv)
    dm.setup("fit")
    for part in (dm.val_frame, dm.test_frame):
        per_class = part["label"].value_counts()
        for label in LABELS:
            assert per_class.get(label, 0) == 2  # round(10 * 0.2) of each class
    assert len(dm.train_frame) + len(dm.val_frame) + len(dm.test_frame) == 60
    assert not _val_ids(dm) & set(dm.train_frame["id"])
    assert not set(dm.test_frame["id"]) & (set(dm.train_frame["id"]) | _val_ids(dm))
    assert dm.split_info["shared_speakers"] > 0 and not dm.split_info["speaker_disjoint"]
    assert dm.class_counts() == [int((dm.train_frame["label"] == c).sum()) for c in LABELS]
    assert sum(dm.class_counts()) == len(dm.train_frame)

    again = IndonesianDataModule(kaggle_root, split="stratified", val_fraction=0.2,
                                 test_fraction=0.2, seed=3)
    again.setup("fit")
    assert _val_ids(again) == _val_ids(dm)
    other = IndonesianDataModule(kaggle_root, split="stratified", val_fraction=0.2,
                                 test_fraction=0.2, seed=4)
    other.setup("fit")
    assert _val_ids(other) != _val_ids(dm)

    table = pd.read_csv(split_csv)
    assert list(table.columns) == ["file", "split", "label", "speaker", "gender", "corpus"]
    assert len(table) == 60 and set(table.loc[table["split"] == "val", "file"]) == _val_ids(dm)
    assert set(table.loc[table["split"] == "test", "file"]) == set(dm.test_frame["id"])
    reused = IndonesianDataModule(kaggle_root, seed=99, split_from=split_csv)
    reused.setup("fit")
    assert _val_ids(reused) == _val_ids(dm)


def test_a_split_file_that_misses_training_files_is_refused(kaggle_root: Path,
                                                            tmp_path: Path) -> None:
    partial = tmp_path / "split.csv"
    pd.DataFrame({"file": ["1_00000_marah_sedang.wav"], "split": ["val"]}).to_csv(partial,
                                                                                 index=False)
    with pytest.raises(ValueError, match="does not list 59 of the 60"):
        IndonesianDataModule(kaggle_root, split_from=partial).setup("fit")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_split_is_speaker_disjoint_and_written(kaggle_root: Path, tmp_path: Path,
                                                           seed: int) -> None:
    split_csv = tmp_path / "split.csv"
    dm = IndonesianDataModule(kaggle_root, val_fraction=0.2, test_fraction=0.2, seed=seed,
                              split_file=split_csv)
    dm.setup("fit")
    speakers = [set(f["speaker"]) for f in (dm.train_frame, dm.val_frame, dm.test_frame)]
    assert all(speakers) and not (speakers[0] & speakers[1] or speakers[0] & speakers[2]
                                  or speakers[1] & speakers[2])
    assert len(dm.val_frame) == len(dm.test_frame) == 12  # two of the ten speakers each
    assert set(dm.val_frame["label"]) == set(LABELS)
    assert dm.split_info["speaker_disjoint"] and dm.split_info["kind"] == "speaker"
    table = pd.read_csv(split_csv)
    assert (table.groupby("speaker")["split"].nunique() == 1).all()  # split.csv proves it
    assert set(table["split"]) == {"train", "val", "test"}


def test_train_loader_crops_groups_and_covers_the_split(kaggle_root: Path) -> None:
    dm = IndonesianDataModule(kaggle_root, batch_size=4, max_train_seconds=1.0, seed=0)
    dm.setup("fit")
    loader = dm.train_dataloader()
    first, failed, batches = _epoch(loader)
    assert sorted(first) == list(range(len(dm.train_frame))) and failed == []
    assert max(b["input_values"].shape[1] for b in batches) == TARGET_SR  # cropped to 1 s
    for batch in batches:
        labels = [LABEL2ID[dm.train_frame["label"][i]] for i in batch["index"].tolist()]
        assert batch["labels"].tolist() == labels
    second, _, _ = _epoch(loader)
    assert second != first  # new batch order each epoch

    val_indices, _, val_batches = _epoch(dm.val_dataloader())
    assert sorted(val_indices) == list(range(len(dm.val_frame)))
    lengths = [int(n) for b in val_batches for n in b["attention_mask"].sum(dim=1)]
    assert lengths == sorted(lengths, reverse=True)  # longest first
    assert max(lengths) > TARGET_SR  # evaluation keeps whole clips (up to 2.1 s here)

    plain = IndonesianDataModule(kaggle_root, batch_size=4, group_by_length=False)
    plain.setup("fit")
    assert sorted(_epoch(plain.train_dataloader())[0]) == list(range(len(plain.train_frame)))


def test_predict_loader_reports_the_broken_test_file_and_loads_the_rest(
        kaggle_root: Path) -> None:
    dm = IndonesianDataModule(kaggle_root, eval_batch_size=2)
    dm.setup("predict")
    indices, failed, batches = _epoch(dm.predict_dataloader())
    frame = dm.frame_for("predict")
    assert list(frame["id"]) == [f"test{i}.wav" for i in range(1, 6)]
    assert sorted(indices) == [0, 1, 2, 3]
    assert [i for i, _ in failed] == [4]
    assert "test5.wav" in failed[0][1] and "truncated" in failed[0][1]
    assert all((b["labels"] == -1).all() for b in batches)


def test_two_workers_give_the_same_batches_as_none_with_fresh_crops_each_epoch(
        kaggle_root: Path) -> None:
    def crops_per_epoch(num_workers: int) -> list[dict[int, torch.Tensor]]:
        dm = IndonesianDataModule(kaggle_root, batch_size=8, num_workers=num_workers,
                                  max_train_seconds=0.5)
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.persistent_workers == (num_workers > 0)
        epochs = []
        for _ in range(2):
            indices, failed, batches = _epoch(loader)
            assert sorted(indices) == list(range(len(dm.train_frame))) and failed == []
            epochs.append({int(i): b["input_values"][row].clone()
                           for b in batches for row, i in enumerate(b["index"])})
        return epochs

    with_workers = crops_per_epoch(2)
    without = crops_per_epoch(0)
    for epoch in range(2):
        assert with_workers[epoch].keys() == without[epoch].keys()
        assert all(torch.equal(with_workers[epoch][i], without[epoch][i]) for i in without[epoch])
    assert any(not torch.equal(with_workers[0][i], with_workers[1][i]) for i in with_workers[0])


def test_lightning_fit_and_predict_run_on_the_module(kaggle_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning sets the sampler's epoch each epoch (so a resumed run continues the order)."""
    import lightning as L

    epochs_set: list[int] = []
    original = LengthGroupedBatchSampler.set_epoch

    def record(self: LengthGroupedBatchSampler, epoch: int) -> None:
        epochs_set.append(epoch)
        original(self, epoch)

    monkeypatch.setattr(LengthGroupedBatchSampler, "set_epoch", record)
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # restored after the test
        monkeypatch.setenv(name, "0")
    L.seed_everything(5, workers=True)  # as train.py does

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 6)
            self.seen: list[list[list[int]]] = []

        def on_train_epoch_start(self) -> None:
            self.seen.append([])

        def training_step(self, batch, _):
            self.seen[-1].append(batch["index"].tolist())
            x = batch["input_values"].mean(dim=1, keepdim=True)
            return torch.nn.functional.cross_entropy(self.layer(x), batch["labels"])

        def predict_step(self, batch, _):
            return batch["index"].tolist(), batch["failed"]

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = IndonesianDataModule(kaggle_root, batch_size=8, max_train_seconds=0.5, seed=5)
    probe = Probe()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(probe, datamodule=dm)
    sampler = trainer.train_dataloader.batch_sampler
    assert epochs_set == [0, 1]
    assert probe.seen == [sampler.batches(0), sampler.batches(1)]
    out = trainer.predict(probe, datamodule=dm)
    assert sorted(i for idx, _ in out for i in idx) == [0, 1, 2, 3]
    assert [f[0] for _, failed in out for f in failed] == [4]


# -- RAVDESS data module --------------------------------------------------------------------------


def test_ravdess_module_gives_calm_and_surprised_label_minus_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for actor in (1, 2):
        for emotion in range(1, 9):
            intensity = 1 if emotion == 1 else 2
            name = f"03-01-{emotion:02d}-{intensity:02d}-01-01-{actor:02d}.wav"
            _write(tmp_path / f"Actor_{actor:02d}" / name, 0.5 + 0.1 * emotion, rng, sr=48_000)
    dm = RavdessDataModule(tmp_path, actors=[1, 2], batch_size=4)
    dm.setup("test")
    indices, failed, batches = _epoch(dm.test_dataloader())
    assert sorted(indices) == list(range(16)) and failed == []
    labels = {i: int(l) for b in batches for i, l in zip(b["index"].tolist(), b["labels"])}
    for row, emotion in enumerate(dm.frame["emotion"]):
        if emotion in ("calm", "surprised"):
            assert labels[row] == -1
        else:
            assert labels[row] == LABEL2ID[dm.frame["label"][row]]
    assert sorted(_epoch(dm.predict_dataloader())[0]) == list(range(16))
