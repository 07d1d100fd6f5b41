"""The one forward path: raw waveforms -> normalised batch -> logits -> probabilities.

Training, validation and test (:class:`ser.model.EmotionClassifier`) and every prediction
(:class:`ser.inference.EmotionRecognizer`: ``evaluate.py``, ``ser predict``, ``ser serve``) go
through :class:`ForwardPath`, so a model sees the same input wherever it runs:

* each clip is normalised over its real samples, padding kept at zero (what the exported
  ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does before padding, :mod:`ser.preprocessing`);
* the attention mask goes to the model only if it takes one (:func:`~ser.backbones.
  uses_attention_mask`: layer-norm feature encoders); group-norm encoders were trained without;
* probabilities are ``softmax(logit_scale * logits)``: 1 in training, the calibration
  temperature's ``1/T`` in inference unless it is baked into the weights
  (:func:`ser.calibration.logit_scale`).

What turns :class:`ModelInputs` into logits is a callable: :func:`model_logits` (the plain
Hugging Face model, with gradients, in training) or a runtime's ``logits``
(:mod:`ser.inference.runtime`: PyTorch with its speed-ups, or ONNX Runtime). Speed-ups are
options of the runtime, never a second path.

Training runs a padded batch as it is (:meth:`ForwardPath.logits`). Inference
(:meth:`ForwardPath.batch_probabilities`) also makes a batch give each clip its one-at-a-time
result; rows are cut to the longest real clip, and then:

* layer-norm feature encoders (``feat_extract_norm="layer"``: XLSR, large models, the tiny one)
  take an attention mask, so padding does not change a clip's prediction: batched results equal
  one-at-a-time results (same label, probabilities within 1e-4);
* group-norm feature encoders (``feat_extract_norm="group"``: wav2vec2-base) normalise each
  channel over the whole input, padding included, and were trained without masks. For them a
  batch is split into groups of clips of exactly equal length and each group runs unpadded, so
  results are again those of one clip at a time; clips of differing lengths gain nothing from
  batching with such a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PretrainedConfig

from ser.backbones import uses_attention_mask
from ser.data.batching import collate_clips
from ser.labels import LABELS
from ser.preprocessing import normalize_waveforms, pad_to_multiple


@dataclass(frozen=True)
class ModelInputs:
    """A prepared batch: ``values`` [B, T] as the model reads them (normalised where the feature
    extractor normalises, zero padded), ``mask`` [B, T] (1 on real samples, always: the clip
    lengths) and ``attention_mask``: ``mask`` for a model that takes one, else None."""

    values: torch.Tensor
    mask: torch.Tensor
    attention_mask: torch.Tensor | None

    def lengths(self) -> list[int]:
        """Real samples per row."""
        return self.mask.sum(dim=1).tolist()

    def to(self, device: torch.device) -> ModelInputs:
        mask = self.mask.to(device, non_blocking=True)
        return ModelInputs(self.values.to(device, non_blocking=True), mask,
                           mask if self.attention_mask is not None else None)


LogitsFn = Callable[[ModelInputs], torch.Tensor]


def model_logits(model: Any, inputs: ModelInputs) -> torch.Tensor:
    """Logits [B, num_labels] of a Hugging Face audio classifier, as it is (grad mode, device
    and precision are the caller's)."""
    return model(input_values=inputs.values, attention_mask=inputs.attention_mask).logits


def probabilities_of(logits: torch.Tensor, logit_scale: float = 1.0) -> torch.Tensor:
    """``softmax(logit_scale * logits)`` in float32 (see the module docstring)."""
    return (logits.float() * logit_scale).softmax(-1)


@dataclass(frozen=True)
class ForwardPath:
    """Waveforms to logits and probabilities for one model (see the module docstring).

    ``logits_of`` runs the model on prepared inputs; ``uses_mask`` says whether the model takes
    an attention mask, ``normalize`` whether clips are normalised (the feature extractor's
    ``do_normalize``), ``logit_scale`` what logits are multiplied by before the softmax.
    ``pad_multiple`` (samples, 0: off) rounds batch lengths up for models that take the mask
    (:func:`~ser.preprocessing.pad_to_multiple`): training sets it, inference cuts rows to the
    longest clip instead. ``cuts_rows``: ``logits_of`` runs each row alone, cut to its clip
    (the ONNX runtime), so padding changes nothing and any batch runs as one call."""

    logits_of: LogitsFn
    uses_mask: bool
    normalize: bool = True
    logit_scale: float = 1.0
    pad_multiple: int = 0
    cuts_rows: bool = False

    @classmethod
    def of(cls, config: PretrainedConfig, feature_extractor: Any, logits_of: LogitsFn, *,
           logit_scale: float = 1.0, pad_multiple: int = 0,
           cuts_rows: bool = False) -> ForwardPath:
        """The path of a model with this config and feature extractor."""
        return cls(logits_of, uses_mask=uses_attention_mask(config),
                   normalize=bool(getattr(feature_extractor, "do_normalize", True)),
                   logit_scale=logit_scale, pad_multiple=pad_multiple, cuts_rows=cuts_rows)

    def inputs(self, values: torch.Tensor, mask: torch.Tensor) -> ModelInputs:
        """Raw zero-padded waveforms [B, T] with their mask (1 on real samples) as the model
        takes them."""
        if self.normalize:
            values = normalize_waveforms(values, mask)
        if self.uses_mask and self.pad_multiple:
            values, mask = pad_to_multiple(values, mask, self.pad_multiple)
        return ModelInputs(values, mask, mask if self.uses_mask else None)

    def logits(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits of one padded batch of raw waveforms, run as it is (training)."""
        return self.logits_of(self.inputs(values, mask))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities of logits of this model, with its ``logit_scale``."""
        return probabilities_of(logits, self.logit_scale)

    def batch_probabilities(self, values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """Probabilities [B, 6] of a zero-padded batch of raw waveforms, each row as if its clip
        ran alone (inference, see the module docstring)."""
        if values.shape[0] == 0:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        lengths = mask.sum(dim=1)
        if self.uses_mask or self.cuts_rows or bool((lengths == lengths[0]).all()):
            longest = int(lengths.max())
            return self._probabilities(values[:, :longest], mask[:, :longest])
        # Group-norm encoders: padding would change the result; run equal lengths together.
        out = np.empty((values.shape[0], len(LABELS)), dtype=np.float32)
        for length in torch.unique(lengths).tolist():
            rows = torch.nonzero(lengths == length).flatten()
            out[rows.numpy()] = self._probabilities(values[rows, :length], mask[rows, :length])
        return out

    def clip_probabilities(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities [N, 6] of mono clips already at the model's rate, as one batch."""
        batch = collate_clips([{"input_values": c, "label": -1, "index": i, "error": None}
                               for i, c in enumerate(clips)])
        return self.batch_probabilities(batch["input_values"], batch["attention_mask"])

    def _probabilities(self, values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        return self.probabilities(self.logits(values, mask)).detach().cpu().numpy()


__all__ = ["ForwardPath", "LogitsFn", "ModelInputs", "model_logits", "probabilities_of"]
