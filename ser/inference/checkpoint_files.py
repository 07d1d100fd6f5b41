"""Model files that are not a Hugging Face folder: a Lightning ``.ckpt`` written by
:class:`~ser.model.EmotionClassifier` (the architecture rebuilt from ``checkpoint["hf_config"]``
without any download) and bare state dicts such as the original project's ``emotion_model.pth``
(the architecture from the ``backbone`` they name).

Weights are read safely: safetensors, or ``torch.load(weights_only=True)`` (Hydra's omegaconf
containers, which Lightning keeps in ``hyper_parameters``, are allow-listed as plain data). A
checkpoint that needs any other Python object is refused unless the caller trusts the file.
"""

from __future__ import annotations

import collections
import logging
import pickle
import re
import typing
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForAudioClassification, PretrainedConfig
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.backbones import (
    IDENTITY_KEY,
    backbone_identity,
    default_feature_extractor,
    resolve_backbone,
)
from ser.inference.loaded_model import (
    KINDS_HELP,
    LoadedModel,
    ModelLoadError,
    check_labels,
    failure_reason,
    feature_extractor_of,
)
from ser.inference.state_dicts import load_weights
from ser.labels import ID2LABEL, LABEL2ID, LABELS

log = logging.getLogger(__name__)

# The original project's base checkpoint: the architecture of its emotion_model.pth.
ORIGINAL_BACKBONE = "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def load_model_file(path: Path, *, backbone: str | None, trust: bool) -> LoadedModel:
    """A ``.ckpt``, ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file as a six-class model
    (``backbone`` names a bare state dict's architecture; ``trust``: full unpickling)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError: the file is unusable
            raise ModelLoadError(
                f"{path}: cannot be read as safetensors ({failure_reason(exc)})") from exc
        return _from_state_dict(state, path, backbone)
    payload = _torch_load(path, trust)
    if isinstance(payload, dict) and "state_dict" in payload and (
        "hf_config" in payload or "pytorch-lightning_version" in payload
    ):
        return _from_lightning(payload, path, backbone)
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]  # {"state_dict": ...} wrappers of plain training loops
    if isinstance(payload, dict) and isinstance(payload.get("model_state_dict"), dict):
        payload = payload["model_state_dict"]
    if not isinstance(payload, dict) or not payload or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise ModelLoadError(
            f"{path}: holds a {type(payload).__name__}, not a state dict of tensors or a "
            f"Lightning checkpoint; expected {KINDS_HELP}")
    return _from_state_dict(payload, path, backbone)


def _safe_globals() -> list[Any]:
    """Plain-data classes a Lightning checkpoint of a Hydra run holds (its hyper-parameters)."""
    allowed: list[Any] = [typing.Any, dict, list, int, collections.defaultdict]
    try:
        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode

        allowed += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
    except ImportError:  # omegaconf absent: such a checkpoint cannot contain its classes either
        pass
    return allowed


def _torch_load(path: Path, trust: bool) -> Any:
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several kinds for a refused pickle
        if "Weights only load failed" not in str(exc) and not isinstance(
            exc, pickle.UnpicklingError
        ):
            raise ModelLoadError(f"{path}: cannot be read as a PyTorch file ({exc})") from exc
        if not trust:
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
            what = found.group(1) if found else "Python objects other than tensors"
            raise ModelLoadError(
                f"{path}: holds {what}, which safe (weights-only) loading refuses. If you trust "
                "the file's source, load it with trust_checkpoint=True (ser predict "
                "--trust-checkpoint)") from exc
    log.warning("%s: loading with full unpickling (trust_checkpoint=True)", path)
    return torch.load(path, map_location="cpu", weights_only=False)


def _from_lightning(ckpt: dict[str, Any], path: Path, backbone: str | None) -> LoadedModel:
    hf_config = ckpt.get("hf_config")
    if hf_config is not None:
        config = config_from_dict(dict(hf_config))
    else:
        # Checkpoints written before hf_config was stored: the hyper-parameters name the backbone.
        name = backbone or (ckpt.get("hyper_parameters") or {}).get("backbone")
        if not name:
            raise ModelLoadError(
                f"{path}: a Lightning checkpoint without hf_config or a backbone hyper-parameter;"
                " pass backbone= naming its architecture")
        log.info("%s has no hf_config; taking the architecture from backbone %s", path, name)
        config = _backbone_config(str(name), path)
    check_labels(config, str(path))
    model = AutoModelForAudioClassification.from_config(config)
    state = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    frozen_from = ckpt.get("ser_frozen_backbone_from")  # ser.checkpoint_contents.FROZEN_FROM_KEY
    if frozen_from:
        state = {**_frozen_backbone_state(str(frozen_from), config, path), **state}
    load_weights(model, state, path)
    fe_dict = ckpt.get("hf_feature_extractor")
    if fe_dict:
        feature_extractor = feature_extractor_from_dict(dict(fe_dict))
    else:
        log.warning("%s has no hf_feature_extractor; using the Wav2Vec2 defaults", path)
        feature_extractor = default_feature_extractor(config)
    return LoadedModel(model, feature_extractor, "lightning", str(path))


def _frozen_backbone_state(name: str, config: PretrainedConfig,
                           path: Path) -> dict[str, torch.Tensor]:
    """The weights a frozen-backbone checkpoint left out: those of the backbone it names."""
    from ser.backbones import load_backbone

    log.info("%s was trained with the backbone frozen and holds the trainable parameters only; "
             "taking the backbone's weights from %s", path, name)
    try:
        model = load_backbone(name, use_weighted_layer_sum=bool(config.use_weighted_layer_sum))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path} holds the trainable parameters only (trained with the backbone frozen); its "
            f"backbone {name!r} cannot be loaded ({exc})") from exc
    return {f"model.{k}": v for k, v in model.state_dict().items()}


def _from_state_dict(state: dict[str, torch.Tensor], path: Path,
                     backbone: str | None) -> LoadedModel:
    name = backbone or ORIGINAL_BACKBONE
    if backbone is None:
        log.info("%s is a bare state dict; taking its architecture from %s (the original "
                 "project's base checkpoint; pass backbone= to name another)", path, name)
    config = _backbone_config(name, path)
    model = AutoModelForAudioClassification.from_config(config)
    load_weights(model, state, path)
    return LoadedModel(model, feature_extractor_of(resolve_backbone(name), config),
                       "state_dict", str(path))


def _backbone_config(name: str, path: Path) -> PretrainedConfig:
    try:
        config = AutoConfig.from_pretrained(resolve_backbone(name), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path}: cannot load the config of backbone {name!r}, which names the "
            f"architecture of these weights ({exc}). Offline, pass a local Hugging Face folder "
            "of the same architecture (backbone=DIR, ser predict --backbone DIR)") from exc
    # what the backbone is (e.g. trained on RAVDESS) from its config, before the labels change
    setattr(config, IDENTITY_KEY, backbone_identity(name, config))
    return with_six_labels(config)


def with_six_labels(config: PretrainedConfig) -> PretrainedConfig:
    config.num_labels = len(LABELS)
    config.id2label = dict(ID2LABEL)
    config.label2id = dict(LABEL2ID)
    return config


def config_from_dict(data: dict[str, Any]) -> PretrainedConfig:
    """A config from its ``to_dict()`` form, with no download (the class comes from model_type)."""
    model_type = data.get("model_type")
    if not model_type:
        raise ModelLoadError("hf_config has no model_type; cannot rebuild the architecture")
    config_class = type(AutoConfig.for_model(model_type))
    return config_class.from_dict(data)


def feature_extractor_from_dict(data: dict[str, Any]) -> FeatureExtractionMixin:
    from transformers.models.auto.feature_extraction_auto import (
        feature_extractor_class_from_name,
    )

    name = data.get("feature_extractor_type") or "Wav2Vec2FeatureExtractor"
    cls = feature_extractor_class_from_name(name)
    if cls is None:
        raise ModelLoadError(f"unknown feature extractor type {name!r} in the checkpoint")
    return cls.from_dict(data)
