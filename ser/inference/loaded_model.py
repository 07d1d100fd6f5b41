"""What loading a model for inference gives (:class:`LoadedModel`) and how it fails
(:class:`ModelLoadError`), with what every loader checks: the six labels in the contract order,
and the feature extractor that goes with the weights."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from transformers import AutoFeatureExtractor, PretrainedConfig, PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.backbones import default_feature_extractor
from ser.labels import LABELS

log = logging.getLogger(__name__)

KINDS_HELP = (
    "a Hugging Face model folder (config.json, model.safetensors, preprocessor_config.json), "
    "a Lightning .ckpt written by training, or a state dict such as the original project's "
    "emotion_model.pth (with backbone= naming its architecture)"
)


class ModelLoadError(ValueError):
    """A model path that cannot be used, with what was found and what to do."""


@dataclass
class LoadedModel:
    """A six-class audio-classification model (eval mode, CPU) and its feature extractor."""

    model: PreTrainedModel
    feature_extractor: FeatureExtractionMixin
    kind: str  # folder | hub | lightning | state_dict
    source: str


def check_labels(config: PretrainedConfig, source: str) -> None:
    """The model must predict the six classes in the contract order, or its outputs mean
    something else; say which labels it has instead."""
    own = getattr(config, "id2label", None) or {}
    labels = [own[k] for k in sorted(own, key=int)]
    if labels != list(LABELS):
        raise ModelLoadError(
            f"{source}: the model's labels are {labels or 'missing'}, not the six classes "
            f"{list(LABELS)} in this order; it is not a model trained by this project (a "
            "backbone is fine-tuned with `python train.py model.backbone=...` first)")


def feature_extractor_of(name_or_path: str, config: PretrainedConfig) -> FeatureExtractionMixin:
    try:
        return AutoFeatureExtractor.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError):
        log.warning("%s has no preprocessor_config.json; using the Wav2Vec2 defaults "
                    "(16 kHz, per-clip normalisation)", name_or_path)
        return default_feature_extractor(config)


def failure_reason(exc: Exception) -> str:
    """The cause in a few words: the refused global of a pickle, else the first line."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found or "Weights only load failed" in text:
        what = found.group(1) if found else "Python objects other than tensors"
        return (f"a pickle holding {what}, which safe (weights-only) loading refuses; export the "
                "weights as model.safetensors")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__

