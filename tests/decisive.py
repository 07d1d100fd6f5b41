"""A tiny model whose head is fitted to tell given clips apart, with wide margins.

A random tiny model's labels hang on ~1e-4 probability margins, so anything that moves the
audio a little (a browser's capture, resampled twice, its segment ends a VAD frame or two off)
changes them. Fitting only the classifier (a squared multiclass hinge on the pooled features of
each clip with its ends moved by up to 0.15 s) so that clip k gets label k by a wide logit margin
makes labels that a correct pipeline reproduces and a wrong one does not.
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


SAMPLES_OF_SLACK = 2400  # 0.15 s: how far the browser's segment ends may be from the file's


def reframed(clip: np.ndarray, reach: int = SAMPLES_OF_SLACK, step: int = 600,
             rates: tuple[int, ...] = (48000,)) -> list[np.ndarray]:
    """The clip with each end independently padded with silence or cut by up to ``reach``
    samples (a grid of ``step``), and the clip resampled 16 kHz -> each of ``rates`` -> 16 kHz:
    what a live path's segmenter and capture may do to a segment."""
    import soxr

    def moved(x: np.ndarray, head: int, tail: int) -> np.ndarray:
        x = np.concatenate([np.zeros(head, np.float32), x]) if head > 0 else x[-head:]
        return np.concatenate([x, np.zeros(tail, np.float32)]) if tail > 0 else x[:x.size + tail]

    offsets = range(-reach, reach + 1, step)
    return [moved(clip, a, b) for a in offsets for b in offsets] + [
        soxr.resample(soxr.resample(clip, 16000, rate), rate, 16000) for rate in rates]


def fit_head(model_dir: Path, clips: list[np.ndarray], margin: float = 8.0) -> None:
    """Rewrite the classifier of the model in ``model_dir`` so clip k (and its reframed
    copies) is label k by a logit margin of ``margin``."""
    recognizer = EmotionRecognizer.from_pretrained(model_dir, device="cpu")
    rows, labels = [], []
    for k, clip in enumerate(clips):
        for variant in reframed(clip):
            rows.append(pooled(recognizer, variant))
            labels.append(k)
    features = torch.stack(rows).double()                                     # [n, d]
    centre = features.mean(dim=0, keepdim=True)
    scale = (features - centre).std()
    x, y = (features - centre) / scale, torch.tensor(labels)
    w = torch.zeros(recognizer.model.classifier.out_features, x.shape[1], dtype=torch.float64,
                    requires_grad=True)
    b = torch.zeros(w.shape[0], dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:  # multiclass hinge on a margin, lightly regularised
        solver.zero_grad()
        logits = x @ w.T + b
        true = logits.gather(1, y[:, None])
        others = logits + margin - torch.nn.functional.one_hot(y, w.shape[0]) * 1e9
        value = torch.relu(others - true).pow(2).sum(dim=1).mean() + 1e-4 * w.pow(2).sum()
        value.backward()
        return value

    solver.step(loss)
    weight = (w.detach() / scale).float()
    bias = (b.detach() - (w.detach() / scale) @ centre[0]).float()
    with torch.no_grad():
        recognizer.model.classifier.weight.copy_(weight)
        recognizer.model.classifier.bias.copy_(bias)
    recognizer.model.save_pretrained(model_dir)
    from ser.checksums import write_checksums

    write_checksums(model_dir)  # the weights changed on purpose: record their new digest
