"""What an :class:`~ser.model.EmotionClassifier` checkpoint holds beyond Lightning's own.

The architecture (the backbone's config and feature extractor), so that a ``.ckpt`` reloads
without the hub, offline (:mod:`ser.inference.checkpoint_files` reads these keys); the best
monitored value, so that a resumed run's ``<monitor>_best`` covers every epoch; and, with the
backbone frozen, only the trainable parameters plus the name the backbone is loaded from again:
a few MB instead of 1.3 GB for the XLSR-large architecture.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import FeatureExtractionMixin, PreTrainedModel

HF_CONFIG_KEY = "hf_config"
HF_FEATURE_EXTRACTOR_KEY = "hf_feature_extractor"
BEST_KEY = "ser_best_monitored"  # checkpoint entry: the best monitored value so far
# Set in checkpoints written with the backbone frozen: they hold the trainable parameters only,
# the backbone comes from this name (hub id or folder) when they are loaded.
FROZEN_FROM_KEY = "ser_frozen_backbone_from"


def add_to_checkpoint(checkpoint: dict[str, Any], model: PreTrainedModel,
                      feature_extractor: FeatureExtractionMixin, best_monitored: float | None,
                      frozen_from: str | None) -> None:
    """Add the architecture and the best value; ``frozen_from`` (the backbone's name when it is
    frozen): drop the frozen parameters (``model.*`` keys of the state dict) and record it."""
    checkpoint[HF_CONFIG_KEY] = model.config.to_dict()
    checkpoint[HF_FEATURE_EXTRACTOR_KEY] = feature_extractor.to_dict()
    checkpoint[BEST_KEY] = best_monitored
    if frozen_from is not None:
        frozen = {f"model.{n}" for n, p in model.named_parameters() if not p.requires_grad}
        state = checkpoint["state_dict"]
        for key in frozen & set(state):
            del state[key]
        checkpoint[FROZEN_FROM_KEY] = frozen_from


def complete_frozen_state(checkpoint: dict[str, Any], own_state: dict[str, torch.Tensor]) -> None:
    """A frozen-backbone checkpoint lacks the backbone: fill it in from ``own_state``, the state
    of a module built from the same backbone name."""
    if checkpoint.get(FROZEN_FROM_KEY) is not None:
        state = checkpoint["state_dict"]
        for key, value in own_state.items():
            state.setdefault(key, value)
