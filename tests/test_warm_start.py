"""The demo's warm-started tiny backbone (assets/tiny-prosody) and its prosody targets; no training."""

from __future__ import annotations

import json

import numpy as np
import torch

from helpers import compose_config
from ser.audio import TARGET_SR
from ser.backbones import ensure_tiny_backbone, load_backbone, tiny_config
from ser.config import ASSETS_DIR
from ser.pretraining.prosody import prosody_targets
from ser.training import DEMO_CORPUS_SEED

WARM = ASSETS_DIR / "tiny-prosody"
ARCHITECTURE = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "conv_dim", "conv_stride", "conv_kernel", "feat_extract_norm")


def test_the_committed_warm_start_loads_with_tiny_architecture_and_trained_weights():
    model = load_backbone(str(WARM), use_weighted_layer_sum=True)
    expected = tiny_config()
    for key in ARCHITECTURE:
        assert tuple(np.atleast_1d(getattr(model.config, key))) == \
            tuple(np.atleast_1d(getattr(expected, key))), key
    assert (WARM / "preprocessor_config.json").is_file()
    # it is not the tiny backbone's initial state: the warm start moved the encoder's weights
    tiny = load_backbone(str(ensure_tiny_backbone()), use_weighted_layer_sum=True)
    name = "wav2vec2.encoder.layers.0.attention.q_proj.weight"
    assert not torch.equal(model.state_dict()[name], tiny.state_dict()[name])


def test_warm_start_never_saw_the_demos_corpus_or_labels():
    provenance = json.loads((WARM / "warm_start.json").read_text())
    assert provenance["corpus"]["seed"] != DEMO_CORPUS_SEED
    assert provenance["split"]["part"] == "train"
    assert provenance["labels_used"] is False
    assert all(np.isfinite(v) for v in provenance["final_loss"].values())


def test_the_demo_uses_the_warm_start_wherever_its_outputs_go(tmp_path):
    cfg = compose_config("train", tmp_path, ["experiment=demo"])
    assert cfg.model.backbone == str(WARM)
    assert (WARM / "model.safetensors").is_file()


def test_prosody_targets_find_the_pitch_of_a_tone_and_no_voicing_in_silence():
    t = np.arange(TARGET_SR) / TARGET_SR
    tone = 0.5 * np.sin(2 * np.pi * 180.0 * t)
    frames = 40
    voiced = prosody_targets(tone, frames)[5:35]  # away from the padded end
    assert voiced[:, 1].min() == 1.0
    f0 = 100.0 * 2.0 ** voiced[:, 0]
    assert np.all(np.abs(f0 - 180.0) / 180.0 < 0.05), f0
    silence = prosody_targets(np.zeros(TARGET_SR), frames)
    assert silence[:, 1].max() == 0.0
    assert np.isnan(silence[:, 0]).all()
