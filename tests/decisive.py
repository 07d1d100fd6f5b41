"""A tiny model whose head is fitted to tell given clips apart, with wide margins.

A random tiny model's labels hang on ~1e-4 probability margins, so anything that moves the
audio a little (a browser's capture, resampled twice) changes them. Fitting only the classifier
(least squares on the pooled features) so that clip k gets label k by a wide logit margin makes
labels that a correct pipeline reproduces and a wrong one does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ser.inference import EmotionRecognizer


def pooled(recognizer: EmotionRecognizer, clip: np.ndarray) -> torch.Tensor:
    """The classifier's input for one clip (mean of the projected last hidden states)."""
    model = recognizer.model
    captured = {}
    hook = model.classifier.register_forward_hook(
        lambda module, args, out: captured.setdefault("x", args[0].detach().clone()))
    try:
        recognizer.probabilities([clip])
    finally:
        hook.remove()
    return captured["x"][0]


def jittered(clip: np.ndarray, shift: int = 512) -> list[np.ndarray]:
    """The clip, ``shift`` samples more or less at either end, and resampled 16->48->16 kHz."""
    import soxr

    return [clip, np.concatenate([np.zeros(shift, np.float32), clip]), clip[shift:],
            clip[:-shift], np.concatenate([clip, np.zeros(shift, np.float32)]),
            soxr.resample(soxr.resample(clip, 16000, 48000), 48000, 16000)]


def fit_head(model_dir: Path, clips: list[np.ndarray], margin: float = 8.0) -> None:
    """Rewrite the classifier of the model in ``model_dir`` so clip k (and its jittered
    copies) is label k."""
    recognizer = EmotionRecognizer.from_pretrained(model_dir, device="cpu")
    rows, labels = [], []
    for k, clip in enumerate(clips):
        for variant in [v for shift in (64, 160, 256, 352, 448, 512) for v in jittered(clip, shift)]:
            rows.append(pooled(recognizer, variant))
            labels.append(k)
    features = torch.stack(rows)                                              # [n, d]
    centre = features.mean(dim=0, keepdim=True)
    targets = torch.full((len(rows), recognizer.model.classifier.out_features), -margin)
    targets[torch.arange(len(rows)), torch.tensor(labels)] = margin
    weight = torch.linalg.lstsq((features - centre).double(), targets.double(),
                                driver="gelsd").solution.T.float()          # [6, d]
    with torch.no_grad():
        recognizer.model.classifier.weight.copy_(weight)
        recognizer.model.classifier.bias.copy_(-(weight @ centre[0]))
    recognizer.model.save_pretrained(model_dir)
    from ser.checksums import write_checksums

    write_checksums(model_dir)  # the weights changed on purpose: record their new digest
