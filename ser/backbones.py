"""Loading a Wav2Vec2-family backbone with the six-class head, from a hub id or a local folder.

One code path for every backbone, the tiny one included: the tiny backbone is written once to a
local folder in the Hugging Face layout and then loaded with ``from_pretrained`` like any other,
so save, load and export are exercised by the tests exactly as they run for the real models.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tempfile
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
from ser.cache import cache_dir
from ser.heads import fit_head, head_labels, init_layer_weights
from ser.labels import ID2LABEL, LABEL2ID, LABELS

log = logging.getLogger(__name__)

TINY = "tiny"
# Backbones trained on RAVDESS are listed in conf/evaluate.yaml (caveats.trained_on_ravdess).


def tiny_config() -> Wav2Vec2Config:
    """A Wav2Vec2 small enough to train in a minute on a CPU; same total stride (320x, 20 ms).

    Its feature encoder starts with a 25 ms, 10 ms-hop filterbank layer (see
    :func:`filterbank_weights`) instead of wav2vec2's 5-sample-stride convolution: four times
    cheaper, and from the first step it sees the spectrum, whose harmonics, energy and tilt carry
    pitch, loudness and voice quality, the cues of emotion in speech. Learning those from random
    weights on a few hundred clips is what the tiny model failed to do with the original shape.
    """
    return Wav2Vec2Config(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(64, 64, 64, 64),
        conv_stride=(160, 2, 1, 1),
        conv_kernel=(400, 5, 3, 3),
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


TINY_INIT = "gabor-filterbank-v1"  # part of the folder name: a new init never reuses old weights


def filterbank_weights(channels: int, kernel: int, sample_rate: int = TARGET_SR,
                       low_hz: float = 60.0, high_hz: float = 4000.0) -> torch.Tensor:
    """(channels, 1, kernel) Gabor filters: Hann-windowed cosine/sine pairs at log-spaced centre
    frequencies from ``low_hz`` (below any speaking pitch) to ``high_hz``, unit norm; a learnable
    start like SincNet's or LEAF's."""
    t = torch.arange(kernel, dtype=torch.float64) / sample_rate
    window = torch.hann_window(kernel, periodic=False, dtype=torch.float64)
    centres = torch.logspace(math.log10(low_hz), math.log10(high_hz), (channels + 1) // 2,
                             dtype=torch.float64)
    rows = []
    for f in centres:
        rows += [torch.cos(2 * math.pi * f * t) * window, torch.sin(2 * math.pi * f * t) * window]
    bank = torch.stack(rows[:channels])
    return (bank / bank.norm(dim=1, keepdim=True)).float().unsqueeze(1)


def tiny_backbone_dir() -> Path:
    """Where the tiny backbone lives; ``SER_CACHE`` moves it (tests point it at a temp folder)."""
    root = cache_dir()
    # The folder name carries a hash of the config and the init: changing either never reuses
    # old weights.
    key = tiny_config().to_json_string() + TINY_INIT
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return root / f"tiny-wav2vec2-{digest}"


def ensure_tiny_backbone(directory: Path | None = None, seed: int = 0) -> Path:
    """Write the tiny backbone (fixed seed; filterbank first layer) as a Hugging Face folder, once.

    Written to a temporary folder and renamed, so that concurrent first uses do not clash.
    """
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
    first = model.feature_extractor.conv_layers[0].conv
    with torch.no_grad():
        first.weight.copy_(filterbank_weights(first.out_channels, first.kernel_size[0]))
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        model.save_pretrained(tmp)
        default_feature_extractor(model.config).save_pretrained(tmp)
        try:
            os.rename(tmp, directory)
        except OSError:  # another process was first; its folder is the same
            if not (directory / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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


# The eight emotions of RAVDESS: a head with exactly these labels was trained on RAVDESS.
RAVDESS_HEAD_LABELS = frozenset(
    {"angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"})
# Recorded in the config of every model this toolkit builds (and so in exported folders and
# checkpoints): where the backbone came from, whatever path it is later loaded from.
IDENTITY_KEY = "ser_backbone"


def backbone_identity(name_or_path: str, config: PretrainedConfig) -> dict:
    """What the backbone is, from its contents rather than the path it was loaded from.

    ``trained_on_ravdess``: its head had RAVDESS's eight labels (the default checkpoint's do), or
    the identity recorded when it was built says so (a model fine-tuned from such a backbone).
    """
    recorded = getattr(config, IDENTITY_KEY, None)
    if isinstance(recorded, dict) and recorded.get("name"):
        return dict(recorded)
    labels = head_labels(config)
    ravdess = {label.lower() for label in labels} == RAVDESS_HEAD_LABELS
    return {"name": str(name_or_path), "head_labels": labels, "trained_on_ravdess": ravdess,
            "evidence": "its head has RAVDESS's eight emotion labels" if ravdess else None}


def six_class_config(name_or_path: str, **overrides) -> PretrainedConfig:
    """The backbone's config with our labels and its recorded identity."""
    source = resolve_backbone(name_or_path)
    config = AutoConfig.from_pretrained(source)
    setattr(config, IDENTITY_KEY, backbone_identity(name_or_path, config))
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
    A checkpoint's head is kept only when it has the six labels in contract order; the log says
    which parameters start random, whatever the checkpoint's architecture or key layout.
    """
    config = six_class_config(name_or_path, use_weighted_layer_sum=use_weighted_layer_sum)
    if not pretrained:
        return AutoModelForAudioClassification.from_config(config)
    source = resolve_backbone(name_or_path)
    own_config = AutoConfig.from_pretrained(source)
    model, info = AutoModelForAudioClassification.from_pretrained(
        source, config=config, ignore_mismatched_sizes=True, output_loading_info=True)
    replaced = {_key_name(k) for k in info.get("mismatched_keys") or ()}
    fresh = sorted(set(info.get("missing_keys") or ()) | replaced)
    unused = sorted(info.get("unexpected_keys") or ())
    init_layer_weights(model, fresh)
    fresh += fit_head(model, head_labels(own_config), name_or_path, loaded_keys=fresh,
                      had_head=bool(replaced or unused))
    fresh = sorted(set(fresh))
    if fresh:
        log.warning("%s: %d parameter tensor(s) start random (not in the checkpoint or replaced): "
                    "%s", name_or_path, len(fresh), ", ".join(fresh))
    if unused:
        log.warning("%s: %d tensor(s) of the checkpoint are not used by %s: %s", name_or_path,
                    len(unused), type(model).__name__, ", ".join(unused))
    return model


def _key_name(key) -> str:
    """mismatched_keys entries are names or (name, checkpoint shape, model shape)."""
    return key[0] if isinstance(key, (tuple, list)) else str(key)
