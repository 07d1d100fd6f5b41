"""The six-class head on a loaded backbone: kept when the checkpoint's labels are the six in
contract order, mapped by name when they are the six in another order, re-initialised otherwise;
and the weighted layer sum's start when the checkpoint has none.

Why: a checkpoint's head may be another task's (RAVDESS's eight emotions) or our six in another
order; the model must mean the contract's classes whatever it was loaded from, and the log says
which parameters start random.
"""

from __future__ import annotations

import logging

import torch
from transformers import PretrainedConfig, PreTrainedModel

from ser.labels import LABELS

log = logging.getLogger(__name__)


def head_labels(config: PretrainedConfig) -> list[str]:
    """The labels of the config's head in output order ([] when it names none)."""
    own = getattr(config, "id2label", None) or {}
    return [str(own[k]) for k in sorted(own, key=int)] if own else []


def init_layer_weights(model: PreTrainedModel, fresh: list[str]) -> None:
    """Give a ``layer_weights`` missing from the checkpoint the architecture's own start: equal
    weights, ``1 / num_layers`` each.

    Why: ``from_pretrained`` (transformers 5) allocates the model without values and fills only
    what the checkpoint holds or ``_init_weights`` initialises; the audio-classification models'
    ``_init_weights`` skip the bare ``layer_weights`` parameter, so it kept whatever the memory held
    (1e-23, or -3e+27 in one run). Training then started from a different point in every process,
    and a resumed run could not end like an uninterrupted one (issue 12).
    """
    weights = getattr(model, "layer_weights", None)
    if "layer_weights" in fresh and isinstance(weights, torch.nn.Parameter):
        with torch.no_grad():
            weights.fill_(1.0 / weights.numel())


def _head_modules(model: PreTrainedModel) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in (("projector", getattr(model, "projector", None)),
                                ("classifier", getattr(model, "classifier", None))) if m is not None]


def fit_head(model: PreTrainedModel, own_labels: list[str], name: str,
             loaded_keys: list[str], had_head: bool = True) -> list[str]:
    """Make a loaded 6-output head mean the six contract labels; the parameters it re-initialised.

    A head is kept as loaded only when the checkpoint's labels are the six in contract order. The
    same six in another order: its rows are put in contract order (mapped by name). Anything else
    with six outputs (other labels, or names like LABEL_0): the head is re-initialised. Heads of
    another size were already replaced at load (``ignore_mismatched_sizes``).
    """
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, torch.nn.Linear):
        return []
    head_loaded = "classifier.weight" not in loaded_keys
    if not head_loaded or own_labels == list(LABELS):
        if head_loaded:
            log.info("%s: keeping its 6-class head (labels already %s)", name, ", ".join(LABELS))
        elif had_head:
            log.warning("%s has a %d-output head (%s); replacing it with a new 6-class head (%s)",
                        name, len(own_labels), ", ".join(own_labels) or "labels not named",
                        ", ".join(LABELS))
        else:
            log.info("%s has no classification head; adding a new 6-class head (%s)", name,
                     ", ".join(LABELS))
        return []
    if sorted(own_labels) == sorted(LABELS):
        order = [own_labels.index(label) for label in LABELS]
        with torch.no_grad():
            classifier.weight.copy_(classifier.weight[order].clone())
            classifier.bias.copy_(classifier.bias[order].clone())
        log.warning("%s has a 6-output head with the six labels in another order (%s): its rows "
                    "are mapped by name to %s", name, ", ".join(own_labels), ", ".join(LABELS))
        return []
    log.warning("%s has a 6-output head with other labels (%s): re-initialising it for %s",
                name, ", ".join(own_labels) or "none named", ", ".join(LABELS))
    fresh = []
    std = float(getattr(model.config, "initializer_range", 0.02))
    for prefix, module in _head_modules(model):
        # as the model's own init does for a new Linear (its _init_weights skips loaded modules)
        with torch.no_grad():
            module.weight.normal_(0.0, std)
            module.bias.zero_()
        fresh += [f"{prefix}.{p}" for p, _ in module.named_parameters()]
    return fresh
