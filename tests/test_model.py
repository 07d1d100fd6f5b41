"""The LightningModule and backbone loading, on the tiny backbone (no downloads)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification, get_scheduler

from ser.backbones import load_backbone, tiny_config
from ser.labels import LABELS
from ser.metrics import classification_summary
from ser.metrics import EmotionScores
from ser.model import EmotionClassifier
from ser.preprocessing import normalize_waveforms


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SER_CACHE", str(tmp_path_factory.getbasetemp() / "ser-cache"))


def eight_label_checkpoint(directory: Path) -> Path:
    """A checkpoint shaped like the default one: a classification head with RAVDESS's 8 labels."""
    names = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    config = tiny_config()
    config.num_labels = 8
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}
    config.architectures = ["Wav2Vec2ForSequenceClassification"]
    torch.manual_seed(1)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(directory)
    return directory


def test_eight_output_head_is_replaced_and_the_log_says_so(tmp_path: Path, caplog):
    source = eight_label_checkpoint(tmp_path / "ravdess8")
    original = Wav2Vec2ForSequenceClassification.from_pretrained(source)
    with caplog.at_level(logging.WARNING, logger="ser.backbones"):
        model = load_backbone(str(source))
    assert "8-output head" in caplog.text and "6-class head" in caplog.text
    assert model.config.num_labels == 6
    assert [model.config.id2label[i] for i in range(6)] == list(LABELS)
    assert model.classifier.out_features == 6
    # The backbone's own weights are kept; only the head is new.
    torch.testing.assert_close(model.wav2vec2.encoder.layers[0].attention.q_proj.weight,
                               original.wav2vec2.encoder.layers[0].attention.q_proj.weight)


def test_normalisation_matches_the_feature_extractor():
    rng = np.random.default_rng(0)
    clips = [rng.normal(0.3, 2.0, n).astype(np.float32) for n in (16000, 9000, 12345)]
    fe = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    ref = fe(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    raw = torch.zeros_like(ref.input_values)
    for i, c in enumerate(clips):
        raw[i, : c.size] = torch.from_numpy(c)
    ours = normalize_waveforms(raw, ref.attention_mask)
    torch.testing.assert_close(ours, ref.input_values, atol=1e-4, rtol=1e-4)


def test_padding_does_not_change_a_clips_prediction():
    torch.manual_seed(0)
    module = EmotionClassifier("tiny").eval()
    clip = torch.randn(1, 12000)
    padded = torch.cat([clip, torch.zeros(1, 8000)], dim=1)
    mask = torch.cat([torch.ones(1, 12000), torch.zeros(1, 8000)], dim=1).long()
    with torch.inference_mode():
        alone = module(clip, torch.ones_like(clip, dtype=torch.long)).softmax(-1)
        in_batch = module(padded, mask).softmax(-1)
    torch.testing.assert_close(alone, in_batch, atol=1e-4, rtol=1e-4)


def test_batches_are_padded_to_a_multiple_of_0_1_s_without_changing_predictions():
    from ser.model import PAD_MULTIPLE

    torch.manual_seed(0)
    module = EmotionClassifier("tiny").eval()
    lengths: list[int] = []
    module.model.register_forward_pre_hook(
        lambda _m, _args, kwargs: lengths.append(kwargs["input_values"].shape[-1]),
        with_kwargs=True)
    values = torch.randn(2, 12345)
    mask = torch.ones(2, 12345, dtype=torch.long)
    mask[1, 10000:] = 0
    values[1, 10000:] = 0
    with torch.inference_mode():
        logits = module(values, mask)
        as_given = module.model(input_values=normalize_waveforms(values, mask),
                                attention_mask=mask).logits
    assert PAD_MULTIPLE == 1600 and lengths[0] == 12800
    torch.testing.assert_close(logits, as_given, atol=1e-4, rtol=1e-4)


def test_freezing_options():
    encoder_frozen = EmotionClassifier("tiny", freeze_feature_encoder=True)
    conv = encoder_frozen.model.wav2vec2.feature_extractor
    assert not any(p.requires_grad for p in conv.parameters())
    assert all(p.requires_grad for p in encoder_frozen.model.wav2vec2.encoder.parameters())

    head_only = EmotionClassifier("tiny", freeze_backbone=True)
    trainable = {n for n, p in head_only.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("projector", "classifier")) for n in trainable)
    # the feature encoder's own flag too, else its output requires grad and backward runs
    # through the whole frozen backbone
    assert not head_only.model.wav2vec2.feature_extractor._requires_grad
    seen = []
    head_only.model.wav2vec2.register_forward_hook(
        lambda _m, _i, out: seen.append(out.last_hidden_state.requires_grad))
    batch = {"input_values": torch.randn(2, 8000), "attention_mask": torch.ones(2, 8000).long(),
             "labels": torch.tensor([0, 1])}
    head_only._step(batch)[0].backward()
    assert seen == [False]
    assert all(p.grad is None for n, p in head_only.model.named_parameters()
               if not n.startswith(("projector", "classifier")))


def six_label_checkpoint(directory: Path, labels: list[str]) -> Wav2Vec2ForSequenceClassification:
    config = tiny_config()
    config.num_labels = 6
    config.id2label = dict(enumerate(labels))
    config.label2id = {n: i for i, n in enumerate(labels)}
    config.architectures = ["Wav2Vec2ForSequenceClassification"]
    torch.manual_seed(2)
    model = Wav2Vec2ForSequenceClassification(config)
    model.save_pretrained(directory)
    return model


def test_six_output_head_in_another_order_is_mapped_by_name(tmp_path: Path, caplog):
    order = ["sedih", "marah", "jijik", "takut", "bahagia", "netral"]
    original = six_label_checkpoint(tmp_path / "permuted", order)
    with caplog.at_level(logging.WARNING, logger="ser.backbones"):
        model = load_backbone(str(tmp_path / "permuted"))
    assert "mapped by name" in caplog.text
    x = torch.randn(1, 16000)
    with torch.inference_mode():
        ours = model.eval()(x).logits[0]
        theirs = original.eval()(x).logits[0]
    for i, label in enumerate(LABELS):  # the same score under the same name
        assert ours[i].item() == pytest.approx(theirs[order.index(label)].item(), abs=1e-5)


def test_six_output_head_with_other_labels_is_reinitialised_and_named(tmp_path: Path, caplog):
    original = six_label_checkpoint(tmp_path / "other", ["a", "b", "c", "d", "e", "f"])
    with caplog.at_level(logging.WARNING, logger="ser.backbones"):
        model = load_backbone(str(tmp_path / "other"))
    assert "other labels (a, b, c, d, e, f): re-initialising" in caplog.text
    assert ("start random (not in the checkpoint or replaced): classifier.bias, "
            "classifier.weight, projector.bias, projector.weight") in caplog.text
    assert not torch.equal(model.classifier.weight, original.classifier.weight)
    torch.testing.assert_close(model.wav2vec2.encoder.layers[0].attention.q_proj.weight,
                               original.wav2vec2.encoder.layers[0].attention.q_proj.weight)


def test_own_head_with_the_contract_labels_is_kept(tmp_path: Path):
    original = six_label_checkpoint(tmp_path / "ours", list(LABELS))
    model = load_backbone(str(tmp_path / "ours"))
    torch.testing.assert_close(model.classifier.weight, original.classifier.weight)


def test_frozen_backbone_checkpoint_keeps_the_head_and_restores_the_backbone():
    module = EmotionClassifier("tiny", freeze_backbone=True)
    full = {f"model.{k}": v.clone() for k, v in module.model.state_dict().items()}
    checkpoint = {"state_dict": dict(full)}
    module.on_save_checkpoint(checkpoint)
    kept = set(checkpoint["state_dict"])
    assert kept == {k for k in full if k.startswith(("model.projector.", "model.classifier."))}
    fresh = EmotionClassifier("tiny", freeze_backbone=True)
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"], strict=False)
    for key, value in full.items():
        torch.testing.assert_close(fresh.state_dict()[key], value)


def test_two_parameter_groups_with_their_learning_rates():
    module = EmotionClassifier(
        "tiny", head_lr=1e-3, optimizer=partial(torch.optim.AdamW, lr=2e-5, weight_decay=0.01)
    )
    optimizer = module.configure_optimizers()
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["backbone"]["lr"] == 2e-5 and groups["head"]["lr"] == 1e-3
    head_ids = {id(p) for p in groups["head"]["params"]}
    assert head_ids == {id(p) for p in module.model.classifier.parameters()} | {
        id(p) for p in module.model.projector.parameters()}


def test_weighted_layer_sum_adds_trainable_layer_weights():
    module = EmotionClassifier("tiny", use_weighted_layer_sum=True)
    assert module.model.config.use_weighted_layer_sum
    assert module.model.layer_weights.requires_grad
    out = module(torch.randn(2, 8000), torch.ones(2, 8000, dtype=torch.long))
    assert out.shape == (2, 6)


def test_the_same_seed_builds_the_same_model_weighted_layer_sum_included():
    """from_pretrained (transformers 5) left layer_weights as whatever memory held, so two runs
    with one seed trained from different weights and a resumed run could not end like an
    uninterrupted one (issue 12). Every parameter must come from the checkpoint or the seed."""
    built = []
    for _ in range(2):
        torch.manual_seed(0)
        built.append(EmotionClassifier("tiny", use_weighted_layer_sum=True).state_dict())
    first, second = built
    for key, value in first.items():
        assert torch.equal(value, second[key]), key
    layers = first["model.layer_weights"]
    assert torch.equal(layers, torch.full_like(layers, 1 / layers.numel()))  # the model's own start


def test_balanced_class_weights_and_label_smoothing_change_the_loss():
    batch = {"input_values": torch.randn(3, 8000), "attention_mask": torch.ones(3, 8000).long(),
             "labels": torch.tensor([0, 0, 5])}
    torch.manual_seed(0)
    plain = EmotionClassifier("tiny")
    torch.manual_seed(0)
    weighted = EmotionClassifier("tiny", class_weights="balanced", label_smoothing=0.1)
    weighted.set_class_weights([100, 10, 10, 10, 10, 1])
    assert weighted.class_weight[5] > weighted.class_weight[0]
    assert not torch.isclose(plain._step(batch)[0], weighted._step(batch)[0])


def test_unlabelled_clips_are_ignored_by_loss_and_metrics():
    module = EmotionClassifier("tiny")
    batch = {"input_values": torch.randn(2, 8000), "attention_mask": torch.ones(2, 8000).long(),
             "labels": torch.tensor([-1, -1])}
    loss, _, _ = module._step(batch)
    assert loss.item() == 0.0 and loss.requires_grad


def test_training_metric_and_metrics_json_agree():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 6, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 6, 200))
    ours = classification_summary(y.tolist(), p.tolist())
    metric = EmotionScores()
    metric.update(torch.nn.functional.one_hot(torch.from_numpy(p), 6).float(),
                  torch.from_numpy(y))
    tm = metric.scores()
    assert ours["accuracy"] == pytest.approx(float(tm["acc"]))
    assert ours["ua"] == pytest.approx(float(tm["ua"]))
    assert ours["macro_f1"] == pytest.approx(float(tm["f1"]), abs=1e-6)
    assert np.array(ours["confusion"]["matrix"]).sum() == 200


def test_a_class_absent_from_the_truth_is_left_out_of_ua_everywhere():
    """truth [0,0,1,1,2,2], pred [0,3,1,1,2,2]: recalls 0.5, 1, 1 over the present classes.
    (torchmetrics' macro recall would say 0.625, averaging in class 3 with recall 0.)"""
    y, p = [0, 0, 1, 1, 2, 2], [0, 3, 1, 1, 2, 2]
    ours = classification_summary(y, p)
    metric = EmotionScores()
    metric.update(torch.tensor(p), torch.tensor(y))
    logged = metric.scores()
    assert ours["ua"] == pytest.approx(2.5 / 3)
    assert float(logged["ua"]) == pytest.approx(2.5 / 3)
    # F1 per present class: 2/3 (0), 1 (1), 1 (2); class 3 (absent, predicted once) not averaged
    assert ours["macro_f1"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert float(logged["f1"]) == pytest.approx(ours["macro_f1"])
    assert ours["per_class"]["bahagia"]["support"] == 0


def test_warmup_then_decay_schedule():
    module = EmotionClassifier(
        "tiny", warmup_ratio=0.25, optimizer=partial(torch.optim.AdamW, lr=1e-3),
        scheduler=partial(get_scheduler, name="cosine"))

    class FakeTrainer:
        estimated_stepping_batches = 100

    module._trainer = FakeTrainer()  # only configure_optimizers reads it
    sched = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        sched.optimizer.step()
        sched.step()
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 25
    assert lrs[-1] < 1e-4
