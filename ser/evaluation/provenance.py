"""What the evaluated model is and what it was trained on: the kind of its path, its backbone's
name and where that name came from (for the caveat that a backbone was trained on RAVDESS), and
its training data for the leakage audit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ser.evaluation.data import run_dir_of
from ser.inference import EmotionRecognizer
from ser.inference.loading import ORIGINAL_BACKBONE, STATE_DICT_SUFFIXES

log = logging.getLogger(__name__)


def model_kind(path: str) -> str:
    p = Path(path).expanduser()
    if p.is_dir():
        return "Hugging Face folder"
    if p.suffix == ".ckpt":
        return "Lightning checkpoint"
    if p.suffix in STATE_DICT_SUFFIXES:
        return "state dict"
    return "hub id"


def identify_backbone(model_path: str, backbone: str | None,
                      recognizer: EmotionRecognizer) -> tuple[str, str, list[str]]:
    """(name, where the name came from, every name to match against the caveat lists)."""
    own = str(getattr(recognizer.config, "name_or_path", "") or "")
    own_is_self = not own or Path(own).expanduser().resolve() == \
        Path(model_path).expanduser().resolve()
    candidates = [n for n in (backbone, None if own_is_self else own) if n]
    run = run_dir_of(model_path)
    if run is not None and (run / "config.yaml").is_file():
        name = OmegaConf.select(OmegaConf.load(run / "config.yaml"), "model.backbone")
        if name:
            return str(name), f"model.backbone of {run / 'config.yaml'}", [str(name), *candidates]
    if backbone:
        return backbone, "backbone= given for the weights", candidates
    if not own_is_self:
        return own, "the checkpoint's model config", candidates
    if model_kind(model_path) == "state dict":
        return ORIGINAL_BACKBONE, "default architecture of a state dict", [ORIGINAL_BACKBONE]
    if model_kind(model_path) == "hub id":
        return model_path, "hub id", [model_path]
    return "unknown", "the model folder names no base checkpoint and no training run " \
        "config.yaml is next to it", candidates


def training_data_of(audit_cfg: Any, model_path: str):
    """What to audit against: ``audit.train_root`` (a folder, run folder or split.csv), else the
    train rows of the model's own run (``RUN/split.csv`` + data.root of ``RUN/config.yaml``)
    unless ``audit.auto`` is false; None when neither is known."""
    from ser.audit.training_set import training_set

    if audit_cfg.get("train_root"):
        return training_set(str(audit_cfg.train_root), audit_cfg.get("data_root"))
    run = run_dir_of(model_path)
    if not audit_cfg.get("auto", True) or run is None:
        return None
    if (run / "split.csv").is_file() and (run / "config.yaml").is_file():
        try:
            return training_set(run / "split.csv", audit_cfg.get("data_root"))
        except (FileNotFoundError, ValueError) as exc:  # asked for by default, not by the user
            log.warning("no leakage audit: the training data of %s cannot be listed (%s); give "
                        "audit.train_root= or audit.data_root=", run, exc)
    return None
