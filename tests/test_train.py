"""train(cfg) end to end on synthetic corpora and the tiny backbone, composed from the real config."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from helpers import compose_config
from ser.audio import load_audio
from ser.labels import LABELS
from ser.model import EmotionClassifier
from ser.training import train

EXPERIMENTS = [None, "demo", "original", "clean"]


def overrides_for(corpora: dict[str, Path], *extra: str) -> list[str]:
    """Point a config at the tiny synthetic corpora and the tiny backbone."""
    return [
        f"data.root={corpora['indonesian']}",
        "data.num_workers=0",
        "model.backbone=tiny",
        "trainer.accelerator=cpu",
        # only the demo writes synthetic corpora first (and has the key)
        *(["synthetic_data=null"] if "experiment=demo" in extra else []),
        # The tiny corpora have 30 clips: larger held-out shares than the default 10 %, so
        # validation and test have a few speakers each.
        "data.val_fraction=0.25",
        "data.test_fraction=0.25",
        *extra,
    ]


def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_runs_fast_dev_run(experiment, tiny_corpora, tmp_path,
                                                         capsys):
    extra = ["debug=fast_dev_run"]
    if experiment:
        extra.append(f"experiment={experiment}")
    if experiment == "demo":
        extra.append(f"extra_test.ravdess.root={tiny_corpora['ravdess']}")
    cfg = compose_config("train", tmp_path, overrides_for(tiny_corpora, *extra))
    train(cfg)
    out = run_dir(tmp_path)
    for name in ("config.yaml", "environment.json", "split.csv", "metrics.json",
                 "model/config.json", "model/model.safetensors", "model/preprocessor_config.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "model/config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(6)] == list(LABELS)
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"model: {out / 'model'}"
    if experiment == "demo":
        assert "ravdess" in json.loads((out / "metrics.json").read_text())


def short_run(corpora, tmp_path: Path, *extra: str, logger: str = "none") -> tuple[Path, dict]:
    cfg = compose_config("train", tmp_path, overrides_for(
        corpora, "model=tiny", f"logger={logger}", "trainer.max_epochs=2", "data.batch_size=4",
        *extra))
    _, metrics = train(cfg)
    return run_dir(tmp_path), metrics


@pytest.mark.slow
def test_exported_folder_works_in_transformers_pipeline(tiny_corpora, tmp_path):
    from transformers import pipeline

    out, metrics = short_run(tiny_corpora, tmp_path)
    module = EmotionClassifier.load_from_checkpoint(metrics["best_checkpoint"]).eval()
    classify = pipeline("audio-classification", model=str(out / "model"), top_k=6)
    # The export has the calibration temperature baked in (ser.calibration): the pipeline's
    # probabilities are the checkpoint's logits divided by T, softmaxed.
    t = metrics["calibration"]["temperature"]
    files = sorted((tiny_corpora["indonesian"] / "train").glob("*.wav"))[:6]
    for path in files:
        audio = load_audio(path)
        with torch.inference_mode():
            x = torch.from_numpy(audio)[None]
            probs = (module(x, torch.ones_like(x, dtype=torch.long)) / t).softmax(-1)[0]
        ranked = classify({"raw": audio, "sampling_rate": 16000})
        assert ranked[0]["label"] == LABELS[int(probs.argmax())]
        by_label = {r["label"]: r["score"] for r in ranked}
        np.testing.assert_allclose([by_label[l] for l in LABELS], probs.numpy(), atol=1e-4)


@pytest.mark.slow
def test_resumed_run_ends_like_an_uninterrupted_one(tiny_corpora, tmp_path):
    straight_run, straight = short_run(tiny_corpora, tmp_path / "straight", logger="csv")
    first, _ = short_run(tiny_corpora, tmp_path / "interrupted",
                         "+callbacks.interrupt._target_=helpers.InterruptAfterEpochs",
                         "+callbacks.interrupt.epochs=1", logger="csv")
    last = first / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False, map_location="cpu")["epoch"] == 0
    _, resumed = short_run(tiny_corpora, tmp_path / "resumed", f"ckpt_path={last}",
                           logger="csv")
    # The resumed job continues the interrupted run's folder ...
    assert Path(resumed["model"]) == first / "model"
    # ... and its epochs, and then its final scores, are those of the uninterrupted run, exactly.
    import pandas as pd

    expected = _validation_per_epoch(straight_run)
    assert sorted(expected) == [0, 1]
    resumed_log = pd.read_csv(first / "csv" / "version_1" / "metrics.csv").dropna(subset=["val/ua"])
    assert dict(zip(resumed_log["epoch"].astype(int), resumed_log["val/ua"])) == {1: expected[1]}
    assert _validation_per_epoch(first) == expected
    for block in ("validation", "test"):
        assert resumed[block]["n"] == straight[block]["n"] > 0
        assert resumed[block]["confusion"] == straight[block]["confusion"]
        assert resumed[block]["ua"] == straight[block]["ua"]
    assert resumed["best_value"] == straight["best_value"]
    assert resumed["val_ua_best"] == straight["val_ua_best"]


def _validation_per_epoch(run: Path) -> dict[int, float]:
    """``val/ua`` per epoch from the run's CSV log (Lightning's CSVLogger)."""
    import pandas as pd

    logs = pd.concat([pd.read_csv(p) for p in sorted(run.glob("csv/version_*/metrics.csv"))])
    rows = logs.dropna(subset=["val/ua"])
    return {int(e): float(v) for e, v in zip(rows["epoch"], rows["val/ua"])}


@pytest.mark.slow
def test_train_returns_the_best_epoch_and_reports_validation_and_test_apart(
        tiny_corpora, tmp_path, capsys):
    cfg = compose_config("train", tmp_path, overrides_for(
        tiny_corpora, "model=tiny", "logger=csv", "trainer.max_epochs=4", "data.batch_size=4",
        "model.optimizer.lr=3e-3"))
    value, metrics = train(cfg)
    per_epoch = _validation_per_epoch(run_dir(tmp_path))
    assert sorted(per_epoch) == [0, 1, 2, 3]
    assert value == pytest.approx(max(per_epoch.values()))  # the best epoch, not the last
    assert metrics["best_value"] == metrics["val_ua_best"] == pytest.approx(value)
    best_epoch = max(per_epoch, key=per_epoch.get)
    assert Path(metrics["best_checkpoint"]).name.startswith(f"best-epoch{best_epoch:02d}-val_ua=")
    # validation re-scored with the best weights gives the value the checkpoint was chosen on
    assert metrics["validation"]["ua"] == pytest.approx(value, abs=1e-6)
    split = metrics["split"]
    assert split["speaker_disjoint"] and split["kind"] == "speaker"
    assert metrics["test"]["n"] == split["splits"]["test"]["clips"] > 0
    assert metrics["validation"]["n"] == split["splits"]["val"]["clips"] > 0
    out = capsys.readouterr().out
    assert "validation split (speaker split" in out and "test split, held out" in out
    assert set(metrics["skipped"]) >= {"train", "val", "test"}
    assert not any(metrics["skipped"].values())  # every clip of the tiny corpora reads


@pytest.mark.slow
def test_a_killed_run_resumes_at_the_epoch_it_was_killed_in(tiny_corpora, tmp_path):
    """kill -9 after epoch 2 of 4; the resume restarts at epoch 2 (not at the best epoch) and
    keeps the best value of the epochs before the kill."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(repo / "tests"), os.environ.get("PYTHONPATH", "")]))
    common = [sys.executable, "train.py", *overrides_for(tiny_corpora), "model=tiny",
              "logger=csv", "trainer.max_epochs=4", "data.batch_size=4", "model.optimizer.lr=3e-3",
              f"paths.log_dir={tmp_path / 'logs'}", "seed=1"]
    killed = subprocess.run(
        [*common, "+callbacks.kill._target_=helpers.KillAfterEpochs", "+callbacks.kill.epochs=2"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    last = run / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False, map_location="cpu")
    assert state["epoch"] == 1  # the second epoch's end: at most one epoch is lost
    before = _validation_per_epoch(run)
    resumed = subprocess.run([*common, f"ckpt_path={last}"], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert list((tmp_path / "logs" / "train" / "runs").iterdir()) == [run]  # no stray folder
    after = _validation_per_epoch(run)
    assert sorted(after) == [0, 1, 2, 3]
    import pandas as pd

    resumed_log = pd.read_csv(run / "csv" / "version_1" / "metrics.csv").dropna(subset=["val/ua"])
    assert sorted(resumed_log["epoch"].astype(int)) == [2, 3]  # restarted at epoch 2, not 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_value"] == pytest.approx(max(after.values()))
    assert max(after.values()) >= max(before.values())


@pytest.mark.slow
def test_wandb_offline_writes_a_run(tiny_corpora, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_config("train", tmp_path, overrides_for(
        tiny_corpora, "model=tiny", "logger=wandb", "debug=limit", "trainer.max_epochs=1"))
    train(cfg)
    runs = list((run_dir(tmp_path) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), "the offline run holds no data"


def test_logger_none_trains_without_a_logger(tiny_corpora, tmp_path):
    cfg = compose_config("train", tmp_path, overrides_for(
        tiny_corpora, "model=tiny", "logger=none", "debug=limit", "trainer.max_epochs=1"))
    with open_dict(cfg):
        assert not cfg.get("logger")
    train(cfg)
    out = run_dir(tmp_path)
    assert (out / "metrics.json").is_file() and not (out / "wandb").exists()


def test_no_wandb_key_means_offline_said_once(monkeypatch, tmp_path, caplog):
    from ser.tracking import wandb_mode

    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    with caplog.at_level(logging.WARNING, logger="ser.tracking"):
        assert wandb_mode() == "offline"
    assert [r.message for r in caplog.records] == [
        "W&B: no API key configured; logging offline (upload later with `wandb sync`)"]
    import os

    assert os.environ["WANDB_MODE"] == "offline"


@pytest.mark.slow
def test_demo_learns_far_above_chance(tmp_path, capsys):
    """The offline demo, as a user runs it, but with its corpora written under tmp_path."""
    cfg = compose_config("train", tmp_path, ["experiment=demo"])
    _, metrics = train(cfg)
    # Measured (issue 15: the recipe of 1,200 clips of 60 speakers, augmentation, 16 epochs, on
    # the tiny backbone's label-free warm start, assets/tiny-prosody; corpus seed 0, 2 threads,
    # bench/BENCHMARKS.md): validation / test / synthetic RAVDESS UA (264 clips, cross-lingual)
    # 0.837 / 0.841 / 0.733 with seed 42, 0.801 / 0.859 / 0.795 with seed 7, 0.804 / 0.834 /
    # 0.722 with seed 1234; chance is 0.17. Float noise alone (thread count) moved one seed's
    # RAVDESS UA by up to 0.09 before, so the bars sit ~0.05-0.10 under the lowest run; the
    # recipe without the warm start (validation 0.60-0.61, test 0.58-0.70) fails them.
    assert metrics["validation"]["ua"] >= 0.75, metrics["validation"]["ua"]
    assert metrics["test"]["ua"] >= 0.75, metrics["test"]["ua"]
    assert metrics["ravdess"]["ua"] >= 0.62, metrics["ravdess"]["ua"]
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("model: ")
