"""Loading a six-class model for inference from any of the three kinds of model path.

* a Hugging Face folder (what :meth:`ser.model.EmotionClassifier.export` and ``train.py`` write),
  or a hub id, loaded with ``from_pretrained``;
* a Lightning ``.ckpt`` written by :class:`~ser.model.EmotionClassifier`: the architecture is
  rebuilt from ``checkpoint["hf_config"]`` without any download, then the ``model.`` weights of its
  ``state_dict`` are loaded;
* the original project's ``emotion_model.pth``: a bare ``Wav2Vec2ForSequenceClassification``
  state dict with six outputs, whose architecture ``backbone`` (hub id or local folder) names.

Weights are read safely: safetensors, or ``torch.load(weights_only=True)`` (Hydra's omegaconf
containers, which Lightning keeps in ``hyper_parameters``, are allow-listed as plain data).
A checkpoint that needs any other Python object is refused unless the caller says it trusts the
file. ``trust_remote_code`` is never used.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.backbones import (
    IDENTITY_KEY,
    backbone_identity,
    default_feature_extractor,
    resolve_backbone,
)
from ser.checksums import ChecksumError, verify_checksums, weight_files
from ser.labels import ID2LABEL, LABEL2ID, LABELS

log = logging.getLogger(__name__)

# The original project's base checkpoint: the architecture of its emotion_model.pth.
ORIGINAL_BACKBONE = "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
# Wrappers that put a prefix in front of the Hugging Face model's own keys.
_PREFIXES = ("", "model.", "module.", "module.model.", "model.module.")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

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


def load_for_inference(
    path: str | os.PathLike,
    *,
    backbone: str | None = None,
    trust_checkpoint: bool = False,
) -> LoadedModel:
    """Load ``path`` (any of the three kinds, see the module docstring) on the CPU, in eval mode.

    ``backbone`` is needed for a bare state dict only (default: the original project's base
    checkpoint, which must then be in the local Hugging Face cache). ``trust_checkpoint`` allows
    a full unpickling of a ``.ckpt``/``.pth`` that holds more than tensors and plain data; only
    for files from a trusted source.
    """
    source = str(path)
    p = Path(path).expanduser()
    if p.is_dir():
        loaded = _load_folder(str(p), kind="folder")
    elif p.is_file():
        loaded = _load_file(p, backbone=backbone, trust=trust_checkpoint)
    elif _HUB_ID.match(source) and not source.startswith((".", "/")):
        loaded = _load_folder(source, kind="hub")
    else:
        raise FileNotFoundError(f"model path {source} does not exist; expected {KINDS_HELP}")
    loaded.model.eval()
    log.info("loaded %s model from %s", loaded.kind, source)
    return loaded


# --------------------------------------------------------------------------------------------
# Hugging Face folders and hub ids


def _load_folder(name_or_path: str, *, kind: str) -> LoadedModel:
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        if kind == "hub":
            raise ModelLoadError(
                f"{name_or_path} is not a local path, and not a hub model that can be loaded "
                f"({exc}); expected {KINDS_HELP}") from exc
        raise ModelLoadError(
            f"{name_or_path}: no usable config.json ({exc}); expected {KINDS_HELP}") from exc
    check_labels(config, name_or_path)
    if kind == "folder":
        try:
            # The PyTorch weights only: an ONNX export beside them is not loaded here.
            verify_checksums(name_or_path, only=[p.name for p in weight_files(name_or_path)])
        except ChecksumError as exc:
            raise ModelLoadError(str(exc)) from exc
    try:
        model = AutoModelForAudioClassification.from_pretrained(
            name_or_path, config=config, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - safetensors, pickle and OS errors all mean "unusable"
        raise ModelLoadError(_weights_failure(name_or_path, kind, exc)) from exc
    return LoadedModel(model, _feature_extractor_of(name_or_path, config), kind, name_or_path)


def _weights_failure(name_or_path: str, kind: str, exc: Exception) -> str:
    """One line: which weight file, and why it cannot be loaded."""
    where = name_or_path
    if kind == "folder":
        files = weight_files(name_or_path)
        where = str(files[0]) if len(files) == 1 else (
            f"{name_or_path} ({', '.join(p.name for p in files) or 'no weight file'})")
    return f"{where}: cannot be loaded as model weights ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    """The cause in a few words: the refused global of a pickle, else the first line."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found or "Weights only load failed" in text:
        what = found.group(1) if found else "Python objects other than tensors"
        return (f"a pickle holding {what}, which safe (weights-only) loading refuses; export the "
                "weights as model.safetensors")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


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


def _feature_extractor_of(name_or_path: str, config: PretrainedConfig) -> FeatureExtractionMixin:
    try:
        return AutoFeatureExtractor.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError):
        log.warning("%s has no preprocessor_config.json; using the Wav2Vec2 defaults "
                    "(16 kHz, per-clip normalisation)", name_or_path)
        return default_feature_extractor(config)


# --------------------------------------------------------------------------------------------
# Files: Lightning checkpoints and bare state dicts


def _load_file(path: Path, *, backbone: str | None, trust: bool) -> LoadedModel:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError: the file is unusable
            raise ModelLoadError(f"{path}: cannot be read as safetensors ({_reason(exc)})") from exc
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
    frozen_from = ckpt.get("ser_frozen_backbone_from")  # ser.model.FROZEN_FROM_KEY
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
    return LoadedModel(model, _feature_extractor_of(resolve_backbone(name), config),
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


# --------------------------------------------------------------------------------------------
# State dicts


def load_weights(model: PreTrainedModel, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load ``state`` into ``model`` exactly: every key matched, every shape equal.

    Keys may carry a ``model.`` / ``module.`` prefix (Lightning, DataParallel); old weight-norm
    names (``weight_g``/``weight_v``) are mapped to the parametrization names.
    """
    expected = model.state_dict()
    state = _renamed(_strip_prefix(state, set(expected)), set(expected))
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if state[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong:
        raise ModelLoadError(
            f"{path}: the weights do not fit the {type(model).__name__} architecture of "
            f"{model.config.name_or_path or model.config.model_type}."
            + _listing("missing keys", missing) + _listing("unexpected keys", unexpected)
            + _listing("shape mismatches", wrong)
            + " Check that backbone= names the architecture these weights were trained from"
            " and that the head has six outputs.")
    model.load_state_dict(state, strict=True)


def _listing(title: str, keys: list[str], limit: int = 8) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit
                                       else "")
    return f" {len(keys)} {title}: {shown}."


def _strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    def matches(prefix: str) -> int:
        return sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in expected)

    best = max(_PREFIXES, key=matches)
    if not best:
        return dict(state)
    return {(k[len(best):] if k.startswith(best) else k): v for k, v in state.items()}


def _renamed(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """``conv.weight_g``/``weight_v`` (torch.nn.utils.weight_norm) <-> parametrization names."""
    pairs = (("weight_g", "parametrizations.weight.original0"),
             ("weight_v", "parametrizations.weight.original1"))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in expected:
            for old, new in pairs:
                for a, b in ((old, new), (new, old)):
                    if key.endswith("." + a) and key[: -len(a)] + b in expected:
                        key = key[: -len(a)] + b
                        break
        out[key] = value
    return out
