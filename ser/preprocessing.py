"""Waveform normalisation for the one forward path (:mod:`ser.forward`), which training and
inference share; without Lightning's import cost."""

from __future__ import annotations

import torch


def normalize_waveforms(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per clip over its real samples, padding kept at zero.

    The same as Wav2Vec2FeatureExtractor(do_normalize=True) applied before padding, so a model
    trained here and the exported feature extractor see identical inputs.
    """
    mask_f = mask.to(values.dtype)
    count = mask_f.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (values * mask_f).sum(dim=1, keepdim=True) / count
    var = (((values - mean) * mask_f) ** 2).sum(dim=1, keepdim=True) / count
    return (values - mean) / torch.sqrt(var + 1e-7) * mask_f


__all__ = ["normalize_waveforms"]
