"""One forward path (ser.forward): training and inference prepare and score a batch alike."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ser.data.batching import collate_clips
from ser.forward import ForwardPath, ModelInputs, model_logits, probabilities_of
from ser.inference import EmotionRecognizer
from ser.model import EmotionClassifier
from ser.preprocessing import normalize_waveforms

pytestmark = pytest.mark.usefixtures("one_thread")


def clips(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.1, 0.5, n).astype(np.float32) for n in (16000, 9000, 12345)]


def test_training_and_inference_give_a_clip_the_same_probabilities():
    """The LightningModule's forward (training, validation, test) and the recognizer (evaluate,
    ser predict, ser serve) on the same weights: the same probabilities for the same audio,
    though the recognizer runs its speed-ups (time-major encoder) and cuts rows to length."""
    torch.manual_seed(0)
    module = EmotionClassifier("tiny").eval()
    audio = clips()
    batch = collate_clips([{"input_values": c, "label": -1, "index": i, "error": None}
                           for i, c in enumerate(audio)])
    with torch.inference_mode():
        trained = probabilities_of(module(batch["input_values"], batch["attention_mask"]))
    recognizer = EmotionRecognizer(copy.deepcopy(module.model), module.feature_extractor,
                                   device="cpu", precision="fp32")
    assert recognizer.runtime.fast_encoder  # the speed-up is on, and changes no number
    np.testing.assert_allclose(recognizer.probabilities(audio), trained.numpy(), atol=1e-4)
    one_by_one = np.concatenate([recognizer.probabilities([c]) for c in audio])
    np.testing.assert_allclose(one_by_one, trained.numpy(), atol=1e-4)
    assert (module.forward_path.uses_mask, module.forward_path.normalize) == (
        recognizer.forward.uses_mask, recognizer.forward.normalize) == (True, True)


def test_inputs_are_normalised_per_clip_and_masked_only_for_models_that_take_a_mask():
    batch = collate_clips([{"input_values": c, "label": -1, "index": i, "error": None}
                           for i, c in enumerate(clips(1))])
    values, mask = batch["input_values"], batch["attention_mask"]
    seen: list[ModelInputs] = []
    layer = ForwardPath(lambda x: seen.append(x) or torch.zeros(len(x.values), 6), uses_mask=True)
    layer.logits(values, mask)
    torch.testing.assert_close(seen[-1].values, normalize_waveforms(values, mask))
    assert seen[-1].attention_mask is mask and seen[-1].lengths() == [16000, 9000, 12345]
    group = ForwardPath(layer.logits_of, uses_mask=False, normalize=False)
    group.logits(values, mask)
    assert seen[-1].attention_mask is None and seen[-1].values is values
    assert seen[-1].lengths() == [16000, 9000, 12345]  # the runtime still knows each length


def test_probabilities_apply_the_logit_scale():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0, -1.0]])
    path = ForwardPath(lambda x: logits, uses_mask=True, logit_scale=0.5)
    torch.testing.assert_close(path.probabilities(logits), (logits * 0.5).softmax(-1))
    assert path.batch_probabilities(torch.zeros(0, 10), torch.zeros(0, 10)).shape == (0, 6)


def test_model_logits_is_the_plain_model():
    torch.manual_seed(0)
    module = EmotionClassifier("tiny").eval()
    values = torch.randn(2, 8000)
    mask = torch.ones(2, 8000, dtype=torch.long)
    with torch.inference_mode():
        direct = module.model(input_values=values, attention_mask=mask).logits
        through = model_logits(module.model, ModelInputs(values, mask, mask))
    torch.testing.assert_close(direct, through)
