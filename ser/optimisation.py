"""What the optimiser trains and how fast: the frozen parts of the backbone, the head's
parameters, and one learning-rate group each for the backbone and the head.

Why apart from :class:`ser.model.EmotionClassifier`: which parameters count as the head decides
freezing, the ``head_lr`` group and the learning rates logged per group, so it is defined once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from transformers import PreTrainedModel

log = logging.getLogger(__name__)

HEAD_PREFIXES = ("projector.", "classifier.", "layer_weights")


def is_head(name: str) -> bool:
    """Whether the parameter ``name`` (as ``model.named_parameters`` gives it) is the head's."""
    return name.startswith(HEAD_PREFIXES)


def apply_freezing(model: PreTrainedModel, *, freeze_backbone: bool,
                   freeze_feature_encoder: bool) -> None:
    """Freeze the whole backbone (the head trains alone) or its convolutional feature encoder."""
    if freeze_backbone:
        # The feature encoder too: while its _requires_grad flag is on it makes its output
        # require gradients, and backward then runs through the whole frozen backbone.
        model.freeze_feature_encoder()
        for name, param in model.named_parameters():
            param.requires_grad = is_head(name)
    elif freeze_feature_encoder:
        model.freeze_feature_encoder()


def build_optimizer(model: PreTrainedModel, factory: Callable[..., torch.optim.Optimizer],
                    head_lr: float | None) -> torch.optim.Optimizer:
    """The optimiser over the trainable parameters: groups ``backbone`` (the factory's learning
    rate) and ``head`` (``head_lr``, default the same); the backbone group is left out when the
    backbone is frozen."""
    head, body = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if is_head(name) else body).append(param)
    optimizer = factory(params=[{"params": body, "name": "backbone"}])
    base_lr = optimizer.param_groups[0]["lr"]
    optimizer.add_param_group({"params": head, "lr": head_lr if head_lr is not None else base_lr,
                               "name": "head"})
    if not body:
        optimizer.param_groups.pop(0)  # head only (freeze_backbone)
    log.info("%s: %s", type(optimizer).__name__, ", ".join(
        f"{g['name']} lr={g['lr']:g} ({sum(p.numel() for p in g['params']):,} parameters)"
        for g in optimizer.param_groups))
    return optimizer
