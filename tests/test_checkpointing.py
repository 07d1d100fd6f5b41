"""Checkpoint content: the best checkpoint holds weights only, last.ckpt can resume; with the
backbone frozen both hold the head only and still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import compose_config
from ser.calibration import temperature_of
from ser.inference.loading import load_for_inference
from ser.training import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def run(tiny_corpora, tmp_path: Path, *extra: str) -> Path:
    cfg = compose_config("train", tmp_path, [
        f"data.root={tiny_corpora['indonesian']}", "data.num_workers=0", "model=tiny",
        "trainer=cpu", "trainer.max_epochs=1", "logger=none", *extra])
    train(cfg)
    return tmp_path / "run" / "checkpoints"


def test_best_is_weights_only_and_last_can_resume(tiny_corpora, tmp_path):
    folder = run(tiny_corpora, tmp_path)
    last = torch.load(folder / "last.ckpt", weights_only=False)
    best_path = next(p for p in folder.iterdir() if p.name != "last.ckpt")
    best = torch.load(best_path, weights_only=False)
    assert "optimizer_states" in last and last["optimizer_states"]
    assert "optimizer_states" not in best and "state_dict" in best
    assert best_path.stat().st_size < (folder / "last.ckpt").stat().st_size


def test_frozen_backbone_checkpoints_hold_the_head_and_load_for_inference(tiny_corpora, tmp_path):
    folder = run(tiny_corpora, tmp_path, "model.freeze_backbone=true")
    last = torch.load(folder / "last.ckpt", weights_only=False)
    keys = set(last["state_dict"])
    assert keys and all(k.startswith(("model.projector.", "model.classifier.",
                                      "model.layer_weights")) for k in keys), sorted(keys)[:5]
    loaded = load_for_inference(folder / "last.ckpt")
    exported = load_for_inference(tmp_path / "run" / "model")
    # The export has the calibration temperature baked into its classifier (ser.calibration).
    t, baked = temperature_of(exported.model.config)
    assert baked
    x = torch.randn(1, 16000)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(x).logits / t, exported.model(x).logits)
