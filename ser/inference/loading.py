"""Loading a six-class model for inference from any of the three kinds of model path.

* a Hugging Face folder (what :meth:`ser.model.EmotionClassifier.export` and ``train.py`` write),
  or a hub id, loaded with ``from_pretrained``;
* a Lightning ``.ckpt`` written by :class:`~ser.model.EmotionClassifier`: the architecture is
  rebuilt from ``checkpoint["hf_config"]`` without any download, then the ``model.`` weights of its
  ``state_dict`` are loaded;
* the original project's ``emotion_model.pth``: a bare ``Wav2Vec2ForSequenceClassification``
  state dict with six outputs, whose architecture ``backbone`` (hub id or local folder) names.

Folders and hub ids are loaded here; ``.ckpt`` and state-dict files by
:mod:`ser.inference.checkpoint_files` (weights read safely: safetensors, or
``torch.load(weights_only=True)``; any other Python object refused unless the caller says it
trusts the file), fitted to the architecture by :mod:`ser.inference.state_dicts`.
``trust_remote_code`` is never used.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from transformers import AutoConfig, AutoModelForAudioClassification

from ser.checksums import ChecksumError, verify_checksums, weight_files
from ser.inference.checkpoint_files import (
    ORIGINAL_BACKBONE,
    STATE_DICT_SUFFIXES,
    config_from_dict,
    feature_extractor_from_dict,
    load_model_file,
    with_six_labels,
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

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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
        loaded = load_model_file(p, backbone=backbone, trust=trust_checkpoint)
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
    return LoadedModel(model, feature_extractor_of(name_or_path, config), kind, name_or_path)


def _weights_failure(name_or_path: str, kind: str, exc: Exception) -> str:
    """One line: which weight file, and why it cannot be loaded."""
    where = name_or_path
    if kind == "folder":
        files = weight_files(name_or_path)
        where = str(files[0]) if len(files) == 1 else (
            f"{name_or_path} ({', '.join(p.name for p in files) or 'no weight file'})")
    return f"{where}: cannot be loaded as model weights ({failure_reason(exc)})"


# Moved out with their jobs (loaded_model, checkpoint_files, state_dicts), importable from here.
__all__ = [
    "KINDS_HELP", "ORIGINAL_BACKBONE", "STATE_DICT_SUFFIXES", "LoadedModel", "ModelLoadError",
    "check_labels", "config_from_dict", "feature_extractor_from_dict", "load_for_inference",
    "load_weights", "with_six_labels",
]
