"""The default checkpoint's exact architecture (XLSR-large, 316 M parameters) end to end, offline.

The folder is built here with random weights and the published config of
``ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition``: ``Wav2Vec2ForEmotionRecognition``,
RAVDESS's eight labels, its head stored as ``classifier.dense.*`` / ``classifier.output.*`` (no
``projector``). Then: one full fine-tuning step through ``train()``, export, ``pipeline()``,
``ser predict`` on two files, the original project's ``emotion_model.pth`` layout, and one step
with the backbone frozen that must not back-propagate into the backbone. Batch 1, 1 s clips.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from helpers import compose_config
from ser.labels import LABELS

pytestmark = pytest.mark.slow

RAVDESS8 = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
HEAD = ["classifier.bias", "classifier.weight", "projector.bias", "projector.weight"]
UNUSED = ["classifier.dense.bias", "classifier.dense.weight", "classifier.output.bias",
          "classifier.output.weight"]


def published_config() -> Wav2Vec2Config:
    """The default checkpoint's config.json (XLSR-53 large, fine-tuned for English ASR, then for
    RAVDESS's eight emotions by a custom head class)."""
    return Wav2Vec2Config(
        architectures=["Wav2Vec2ForEmotionRecognition"], finetuning_task="wav2vec2_clf",
        pooling_mode="mean", problem_type="single_label_classification",
        id2label=dict(enumerate(RAVDESS8)), label2id={n: i for i, n in enumerate(RAVDESS8)},
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        feat_extract_norm="layer", do_stable_layer_norm=True, feat_extract_activation="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, vocab_size=33,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.05, feat_proj_dropout=0.05,
        layerdrop=0.1, mask_time_prob=0.05, final_dropout=0.1, pad_token_id=0,
    )


@pytest.fixture(scope="module")
def xlsr_folder(tmp_path_factory) -> Path:
    """A local copy of the default checkpoint's layout, random weights (seeded)."""
    folder = tmp_path_factory.mktemp("ehcalabres-local-copy")
    config = published_config()
    torch.manual_seed(0)
    backbone = Wav2Vec2Model(config)
    state = {f"wav2vec2.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
    del backbone
    state.update({
        "classifier.dense.weight": torch.randn(1024, 1024) * 0.02,
        "classifier.dense.bias": torch.zeros(1024),
        "classifier.output.weight": torch.randn(8, 1024) * 0.02,
        "classifier.output.bias": torch.zeros(8),
    })
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                             do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    assert saved["architectures"] == ["Wav2Vec2ForEmotionRecognition"]
    return folder


def one_second_corpus(root: Path) -> Path:
    """Six 1 s speech-like clips in the Kaggle layout (one per class), two speakers."""
    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    rows = []
    for i, label in enumerate(LABELS):
        t = np.arange(16000) / 16000
        x = 0.2 * np.sin(2 * np.pi * (120 + 20 * i) * t) * (1 + np.sin(2 * np.pi * 4 * t))
        name = f"1_{i * 100:05d}_{label}_no_data.wav"
        sf.write(root / "train" / name, x + 0.01 * rng.standard_normal(t.size), 16000)
        rows.append(f"{name},{label}")
    (root / "train.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    return root


def test_default_architecture_trains_exports_predicts_and_loads_the_original_weights(
        xlsr_folder, tmp_path, caplog):
    from ser.training import train

    corpus = one_second_corpus(tmp_path / "corpus")
    started = time.perf_counter()
    cfg = compose_config("train", tmp_path, [
        f"model.backbone={xlsr_folder}", f"data.root={corpus}", "data.num_workers=0",
        "data.batch_size=1", "data.eval_batch_size=1", "data.max_train_seconds=1.0",
        "trainer.accelerator=cpu", "trainer.max_epochs=1", "+trainer.max_steps=1",
        "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1", "+trainer.num_sanity_val_steps=0",
        "~callbacks", "+trainer.enable_checkpointing=false",  # no 1.3-3.8 GB checkpoints here
        "logger=none"])
    with caplog.at_level(logging.INFO, logger="ser"):
        _, metrics = train(cfg)
    log = caplog.text
    # the log names the head that starts random and the checkpoint's head that is not used
    assert "8-output head" in log
    assert f"start random (not in the checkpoint or replaced): {', '.join(HEAD)}" in log
    assert f"not used by Wav2Vec2ForSequenceClassification: {', '.join(UNUSED)}" in log
    model_dir = Path(metrics["model"])
    exported = json.loads((model_dir / "config.json").read_text())
    assert [exported["id2label"][str(i)] for i in range(6)] == list(LABELS)
    # the identity of the backbone travels with the model: trained on RAVDESS (its 8 labels)
    assert exported["ser_backbone"]["trained_on_ravdess"] is True
    print(f"\nXLSR-large: train() one step + test + export {time.perf_counter() - started:.0f} s")

    from transformers import pipeline

    clip = np.sin(2 * np.pi * 150 * np.arange(16000) / 16000).astype(np.float32) * 0.2
    top = pipeline("audio-classification", model=str(model_dir), device="cpu")(
        {"raw": clip, "sampling_rate": 16000}, top_k=6)
    assert sorted(r["label"] for r in top) == sorted(LABELS)

    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    sf.write(files[0], clip, 16000)
    sf.write(files[1], np.stack([clip, clip * 0.5], axis=1), 44100)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(Path(__file__).parents[1]))
    out = tmp_path / "pred.csv"
    done = subprocess.run([sys.executable, "-m", "ser.cli", "predict", "--model", str(model_dir),
                           "--out", str(out), *map(str, files)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = out.read_text().strip().splitlines()
    assert len(lines) == 3 and all(line.split(",")[1] in LABELS for line in lines[1:]), lines

    # the original project's emotion_model.pth: a bare Wav2Vec2ForSequenceClassification state
    # dict with six outputs, whose architecture is named by the (local) base checkpoint
    from ser.inference import EmotionRecognizer

    folder_model = EmotionRecognizer.from_pretrained(str(model_dir), device="cpu")
    pth = tmp_path / "emotion_model.pth"
    torch.save(folder_model.model.state_dict(), pth)
    original = EmotionRecognizer.from_pretrained(str(pth), backbone=str(xlsr_folder),
                                                 device="cpu")
    np.testing.assert_allclose(original.probabilities([clip]), folder_model.probabilities([clip]),
                               atol=1e-6)


def test_frozen_backbone_step_computes_no_backbone_gradients(xlsr_folder, caplog):
    from ser.model import EmotionClassifier

    module = EmotionClassifier(str(xlsr_folder), freeze_backbone=True,
                               optimizer=partial(torch.optim.AdamW, lr=1e-3))
    assert not module.model.wav2vec2.feature_extractor._requires_grad
    seen = []
    module.model.wav2vec2.register_forward_hook(
        lambda _m, _i, out: seen.append(out.last_hidden_state.requires_grad))
    batch = {"input_values": torch.randn(1, 16000) * 0.1,
             "attention_mask": torch.ones(1, 16000, dtype=torch.long),
             "labels": torch.tensor([2])}
    started = time.perf_counter()
    loss, _, _ = module._step(batch)
    loss.backward()
    seconds = time.perf_counter() - started
    assert seen == [False]  # nothing upstream of the head is in the graph
    backbone = [(n, p) for n, p in module.model.named_parameters()
                if not n.startswith(("projector.", "classifier."))]
    assert all(p.grad is None and not p.requires_grad for _, p in backbone)
    assert all(p.grad is not None for n, p in module.model.named_parameters()
               if n.startswith(("projector.", "classifier.")))
    # what a checkpoint of this module keeps: the head only, a few MB instead of 1.3 GB
    checkpoint = {"state_dict": {f"model.{k}": v for k, v in module.model.state_dict().items()}}
    module.on_save_checkpoint(checkpoint)
    kept = sum(v.numel() * v.element_size() for v in checkpoint["state_dict"].values())
    assert kept < 10 * 2**20, kept
    print(f"\nXLSR-large frozen backbone: forward + backward of 1 s in {seconds:.1f} s; "
          f"checkpoint state {kept / 2**20:.1f} MiB")
