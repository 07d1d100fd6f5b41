"""Loading a Wav2Vec2-family backbone with the six-class head, from a hub id or a local folder.

One code path for every backbone, the tiny one included: the tiny backbone is written once to a
local folder in the Hugging Face layout and then loaded with ``from_pretrained`` like any other,
so save, load and export are exercised by the tests exactly as they run for the real models.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    PretrainedConfig,
    PreTrainedModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
)

from ser.audio import TARGET_SR
from ser.labels import ID2LABEL, LABEL2ID, LABELS

log = logging.getLogger(__name__)

TINY = "tiny"
# Backbones trained on RAVDESS are listed in conf/evaluate.yaml (caveats.trained_on_ravdess).


def tiny_config() -> Wav2Vec2Config:
    """A Wav2Vec2 small enough to train in seconds on a CPU; same feature encoder strides (320x)."""
    return Wav2Vec2Config(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32, 32, 32, 32, 32, 32, 32),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        classifier_proj_size=32,
        mask_time_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        vocab_size=8,
    )


def tiny_backbone_dir() -> Path:
    """Where the tiny backbone lives; ``SER_CACHE`` moves it (tests point it at a temp folder)."""
    root = Path(os.environ.get("SER_CACHE", Path.home() / ".cache" / "ser"))
    # The folder name carries a hash of the config: changing tiny_config() never reuses old weights.
    digest = hashlib.sha256(tiny_config().to_json_string().encode()).hexdigest()[:10]
    return root / f"tiny-wav2vec2-{digest}"


def ensure_tiny_backbone(directory: Path | None = None, seed: int = 0) -> Path:
    """Write the tiny backbone (random weights, fixed seed) as a Hugging Face folder, once."""
    directory = Path(directory) if directory is not None else tiny_backbone_dir()
    if (directory / "config.json").exists() and (directory / "model.safetensors").exists():
        return directory
    from transformers import Wav2Vec2Model

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Wav2Vec2Model(tiny_config())
    finally:
        torch.random.set_rng_state(generator_state)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    default_feature_extractor(model.config).save_pretrained(directory)
    log.info("wrote the tiny backbone to %s", directory)
    return directory


def resolve_backbone(name_or_path: str) -> str:
    """A hub id or folder as given; ``tiny`` becomes its local folder."""
    return str(ensure_tiny_backbone()) if name_or_path == TINY else str(name_or_path)


def default_feature_extractor(config: PretrainedConfig) -> Wav2Vec2FeatureExtractor:
    """What Wav2Vec2 checkpoints use: 16 kHz, per-clip normalisation; masks only for layer norm."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=TARGET_SR,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=uses_attention_mask(config),
    )


def uses_attention_mask(config: PretrainedConfig) -> bool:
    """Group-norm feature encoders (wav2vec2-base) were trained without masks; padding changes them."""
    return getattr(config, "feat_extract_norm", "layer") == "layer"


def load_feature_extractor(name_or_path: str, config: PretrainedConfig) -> Wav2Vec2FeatureExtractor:
    try:
        return AutoFeatureExtractor.from_pretrained(resolve_backbone(name_or_path))
    except OSError:
        log.info("%s has no preprocessor_config.json; using the Wav2Vec2 defaults", name_or_path)
        return default_feature_extractor(config)


def six_class_config(name_or_path: str, **overrides) -> PretrainedConfig:
    """The backbone's config with our labels; tells when the checkpoint's own head will not fit."""
    source = resolve_backbone(name_or_path)
    config = AutoConfig.from_pretrained(source)
    own = getattr(config, "id2label", None) or {}
    own_labels = [own[k] for k in sorted(own, key=int)] if own else []
    if own_labels and own_labels != list(LABELS) and config.architectures and any(
        "ForSequenceClassification" in a or "ForAudioClassification" in a
        for a in config.architectures
    ):
        log.warning(
            "%s has a %d-output head (%s); replacing it with a new 6-class head (%s)",
            name_or_path, len(own_labels), ", ".join(map(str, own_labels)), ", ".join(LABELS),
        )
    config.num_labels = len(LABELS)
    config.id2label = dict(ID2LABEL)
    config.label2id = dict(LABEL2ID)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def load_backbone(
    name_or_path: str,
    *,
    use_weighted_layer_sum: bool = False,
    pretrained: bool = True,
) -> PreTrainedModel:
    """The audio-classification model with six outputs in the contract order.

    ``pretrained=False`` builds the architecture only (weights come from a checkpoint next).
    """
    config = six_class_config(name_or_path, use_weighted_layer_sum=use_weighted_layer_sum)
    if not pretrained:
        return AutoModelForAudioClassification.from_config(config)
    return AutoModelForAudioClassification.from_pretrained(
        resolve_backbone(name_or_path), config=config, ignore_mismatched_sizes=True
    )
