"""Inference-only speed-ups that leave the predictions unchanged (or, for int8, say they may not).

Time-major feature encoder. Hugging Face runs the Wav2Vec2 convolutional feature encoder in
(batch, channels, time) layout, and a layer-norm encoder transposes every layer's output to
(batch, time, channels) and back around its LayerNorm: two full copies of the largest tensors in
the model per layer, over the padding too. Here each convolution is one matrix product over
unfolded frames, activations stay in (batch, time, channels) (the LayerNorm needs no copies),
and each clip of a batch is encoded on its own up to its real length (:func:`clip_lengths`):
no convolution is spent on padding, and the working set is one clip, which stays in cache,
instead of the whole batch. Same weights, same arithmetic up to rounding; it is switched on only
after a probe shows it matches the original on this model (max difference 1e-4), and on its own
instance (``encoder.forward``), so the state dict does not change.

int8: dynamic quantization of the Linear layers (weights int8, activations quantized per call).
Faster on CPUs with VNNI; probabilities move by ~1e-3, so check that the labels agree.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import types
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

log = logging.getLogger(__name__)

PROBE_TOLERANCE = 1e-4
_LENGTHS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("ser_clip_lengths",
                                                                             default=None)


def feature_encoder(model: PreTrainedModel) -> nn.Module | None:
    """The conv feature encoder of a Wav2Vec2-family model (wav2vec2, HuBERT, WavLM, ...)."""
    encoder = getattr(model.base_model, "feature_extractor", None)
    return encoder if isinstance(getattr(encoder, "conv_layers", None), nn.ModuleList) else None


def _norm_kind(layer: nn.Module) -> str | None:
    """'layer' (LayerNorm over channels), 'channel' (GroupNorm with one group per channel:
    each channel over time) or 'none'; None where the layer is of a kind not handled here."""
    conv = getattr(layer, "conv", None)
    if not isinstance(conv, nn.Conv1d) or conv.groups != 1 or conv.dilation != (1,) or (
        conv.padding not in ((0,), 0, "valid")
    ) or not callable(getattr(layer, "activation", None)):
        return None
    norm = getattr(layer, "layer_norm", None)
    name = type(layer).__name__
    if norm is None and name.endswith("NoLayerNormConvLayer"):
        return "none"
    if isinstance(norm, nn.LayerNorm) and tuple(norm.normalized_shape) == (conv.out_channels,):
        return "layer"
    if isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels == conv.out_channels:
        return "channel"
    return None


def _conv_gemms(encoder: nn.Module) -> list[nn.Module]:
    """Each convolution as a Linear over frames flattened in (kernel, channels) order: then a
    layer whose stride equals its kernel needs no copy to unfold. Kept in a plain list, not as
    submodules, so the model's state dict is unchanged."""
    gemms: list[nn.Module] = []
    for layer in encoder.conv_layers:
        conv = layer.conv
        linear = nn.Linear(conv.in_channels * conv.kernel_size[0], conv.out_channels,
                           bias=conv.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1))
            if conv.bias is not None:
                linear.bias.copy_(conv.bias)
        linear.requires_grad_(False)
        gemms.append(linear.to(device=conv.weight.device, dtype=conv.weight.dtype).eval())
    return gemms


def _encode_clip(encoder: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """Frames (1, time, channels) of one unpadded clip (1, samples)."""
    hidden = clip[:, :, None]  # (1, samples, channels=1)
    for layer, kind, gemm in zip(encoder.conv_layers, encoder._ser_norm_kinds,
                                 encoder._ser_gemms):
        kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
        frames = hidden.unfold(1, kernel, stride).transpose(2, 3)  # (1, frames, kernel, channels)
        length = frames.shape[1]
        hidden = gemm(frames.reshape(length, -1)).view(1, length, -1)
        if kind == "layer":
            norm = layer.layer_norm
            hidden = F.layer_norm(hidden, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        elif kind == "channel":
            norm = layer.layer_norm
            var, mean = torch.var_mean(hidden, dim=1, keepdim=True, correction=0)
            hidden = (hidden - mean) * torch.rsqrt(var + norm.eps)
            if norm.affine:
                hidden = hidden * norm.weight + norm.bias
        hidden = layer.activation(hidden)
    return hidden


def _frame_count(encoder: nn.Module, samples: int) -> int:
    for layer in encoder.conv_layers:
        samples = max(0, (samples - layer.conv.kernel_size[0]) // layer.conv.stride[0] + 1)
    return samples


def _time_major_forward(self: nn.Module, input_values: torch.Tensor) -> torch.Tensor:
    """Each clip on its own, up to its real length (see :func:`clip_lengths`), frames zero-
    padded after it. The model masks frames past a clip's end, so their values do not matter;
    a clip's own frames are exactly those of the padded batch, with no convolution spent on
    padding and a working set of one clip (which stays in cache) instead of the whole batch."""
    batch, samples = input_values.shape
    lengths = _LENGTHS.get()
    if lengths is None or len(lengths) != batch:
        lengths = [samples] * batch
    clips = [_encode_clip(self, input_values[row:row + 1, :length]) if length >= 1 else None
             for row, length in enumerate(lengths)]
    channels = self.conv_layers[-1].conv.out_channels
    if batch == 1 and clips[0] is not None and lengths[0] == samples:
        return clips[0].transpose(1, 2)
    out = input_values.new_zeros(batch, _frame_count(self, samples), channels)
    for row, frames in enumerate(clips):
        if frames is not None:
            out[row, : frames.shape[1]] = frames[0]
    return out.transpose(1, 2)  # the (batch, channels, time) view the model expects


@contextlib.contextmanager
def clip_lengths(lengths: list[int] | None) -> Iterator[None]:
    """Tell the time-major encoder the real length of each row of the next batch."""
    token = _LENGTHS.set(lengths)
    try:
        yield
    finally:
        _LENGTHS.reset(token)


def use_time_major_encoder(model: PreTrainedModel) -> bool:
    """Switch the model's feature encoder to the time-major form if it matches on a probe."""
    encoder = feature_encoder(model)
    if encoder is None:
        log.debug("no Wav2Vec2-style feature encoder; keeping the model as it is")
        return False
    kinds = [_norm_kind(layer) for layer in encoder.conv_layers]
    if any(kind is None for kind in kinds):
        log.debug("feature encoder layers of an unhandled kind; keeping the original")
        return False
    encoder._ser_norm_kinds = kinds
    encoder._ser_gemms = _conv_gemms(encoder)
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(2, 8000, generator=generator)
    param = next(encoder.parameters())
    probe = probe.to(device=param.device, dtype=param.dtype)
    with torch.inference_mode():
        reference = encoder(probe)
        fast = _time_major_forward(encoder, probe)
        # A shorter clip in a padded batch: its own frames must equal those of the padded run.
        with clip_lengths([8000, 5000]):
            short = _time_major_forward(encoder, probe)[1:, :, : _frame_count(encoder, 5000)]
        short_reference = encoder(probe[1:, :5000])
    scale = max(1.0, float(reference.abs().max()))
    if reference.shape != fast.shape or short.shape != short_reference.shape:
        log.warning("time-major feature encoder gives other shapes; not used")
        return False
    error = max(float((reference - fast).abs().max()),
                float((short_reference - short).abs().max())) / scale
    if not error <= PROBE_TOLERANCE:
        log.warning("time-major feature encoder differs from the original (%.2g); not used", error)
        return False
    encoder.forward = types.MethodType(_time_major_forward, encoder)
    log.debug("time-major feature encoder on (probe difference %.1g)", error)
    return True


def quantize_int8(model: PreTrainedModel) -> PreTrainedModel:
    """Dynamic int8 quantization of every Linear layer (CPU only), in place.

    The feature encoder's convolutions stay fp32: quantizing them as well was about 20% faster
    on the benchmark model but moved the probabilities ten times as much (0.02 against 0.002).
    """
    with warnings.catch_warnings():
        # torch.ao's eager quantization prints a migration notice (to torchao); it still works.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8,
                                                      inplace=True)
