"""Weights into an architecture exactly: every key matched, every shape equal, whatever
wrapper wrote them (Lightning, DataParallel) and whichever weight-norm names they use."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedModel

from ser.inference.loaded_model import ModelLoadError

# Wrappers that put a prefix in front of the Hugging Face model's own keys.
_PREFIXES = ("", "model.", "module.", "module.model.", "model.module.")


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
