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


def pad_to_multiple(values: torch.Tensor, mask: torch.Tensor,
                    multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad (and mask) a batch to the next multiple of ``multiple`` samples.

    Why: the CPU convolution kernels are prepared per input shape, so training batches of ever
    new lengths (random crops, speed perturbation) pay that set-up on nearly every step; a few
    lengths reuse it (bench/BENCHMARKS.md, issue 15). Only for models that take the attention
    mask: there masked padding leaves predictions as they are.
    """
    extra = -values.shape[-1] % multiple
    if not extra:
        return values, mask
    return (torch.nn.functional.pad(values, (0, extra)),
            torch.nn.functional.pad(mask, (0, extra)))


__all__ = ["normalize_waveforms", "pad_to_multiple"]
