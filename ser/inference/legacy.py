"""The original project's two functions, kept for the code and notebooks that call them.

    model, device = load_model("checkpoints/emotion_model.pth")
    feature_extractor = Wav2Vec2FeatureExtractor.from_pretrained(BACKBONE_OR_MODEL_FOLDER)
    emotion, probabilities = predict_emotion(model, feature_extractor, "path/to/audio.wav")

New code should use :class:`ser.inference.EmotionRecognizer`, which also batches, handles long
recordings and reports broken files per file.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ser.audio import load_audio
from ser.backbones import uses_attention_mask
from ser.inference.loading import load_for_inference
from ser.labels import LABELS


def load_model(path: str | os.PathLike, device: str | torch.device | None = None,
               backbone: str | None = None) -> tuple[PreTrainedModel, torch.device]:
    """``(model, device)``: the six-class ``*ForSequenceClassification`` model in eval mode,
    already on ``device`` (default: CUDA if available, else CPU).

    ``path`` is any model path :class:`~ser.inference.EmotionRecognizer` accepts; for the
    original ``emotion_model.pth``, ``backbone`` names its architecture (default: the original
    project's base checkpoint, ``ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition``).
    """
    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_for_inference(path, backbone=backbone)
    return loaded.model.to(device).eval(), device


def predict_emotion(model: PreTrainedModel, feature_extractor: FeatureExtractionMixin,
                    path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """``(label, probabilities)`` for one audio file.

    ``label`` is one of :data:`ser.labels.LABELS`; ``probabilities`` is a float32 array of
    shape ``(6,)`` in that order (it sums to 1). The whole file is one clip (no windows).
    Raises :class:`~ser.audio.AudioError` for a file that cannot be used.
    """
    rate = int(getattr(feature_extractor, "sampling_rate", 16_000))
    audio = load_audio(path, target_sr=rate)
    inputs = feature_extractor(audio, sampling_rate=rate, return_tensors="pt",
                               return_attention_mask=uses_attention_mask(model.config))
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in inputs.items()}
    with torch.inference_mode():
        logits = model(**inputs).logits
    probabilities = logits.float().softmax(dim=-1)[0].cpu().numpy().astype(np.float32)
    return LABELS[int(probabilities.argmax())], probabilities
