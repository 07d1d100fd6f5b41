"""The figures the field reports — WA, UA, macro-F1, per class, confusion — defined once.

Every number the toolkit prints or writes comes from :func:`scores_from_confusion`: the metrics
logged during training (:class:`EmotionScores`, a torchmetrics metric that accumulates the
confusion matrix and syncs it across processes), ``metrics.json`` of training runs and
evaluations (:func:`classification_summary`), and so the sweep summaries that read them.

The rule for classes absent from the truth: they have no recall, so UA (mean recall) and
macro-F1 average over the classes present in the truth only. Predictions *of* an absent class
still count: they are errors of the true class, lowering its recall and F1. For truth
``[0,0,1,1,2,2]`` and predictions ``[0,3,1,1,2,2]``: UA = (0.5 + 1 + 1) / 3 = 0.833.
(torchmetrics' own ``MulticlassRecall(average="macro")`` would average in class 3 with recall 0,
giving 0.625, and ignore classes 4 and 5: a number that depends on which wrong labels occur.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from ser.labels import LABELS

IGNORE = -1  # label of clips without one of the six classes (RAVDESS calm and surprised)


def scores_from_confusion(matrix: np.ndarray | torch.Tensor) -> dict[str, np.ndarray | float]:
    """``accuracy, ua, macro_f1`` and per-class ``precision, recall, f1, support`` from a
    confusion matrix (rows: true, columns: predicted). Empty: NaN for the averages."""
    m = np.asarray(matrix.cpu() if isinstance(matrix, torch.Tensor) else matrix, dtype=np.float64)
    support = m.sum(axis=1)
    predicted = m.sum(axis=0)
    tp = np.diag(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    n = m.sum()
    return {
        "n": int(n),
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "ua": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "precision": precision, "recall": recall, "f1": f1, "support": support.astype(int),
    }


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], k: int = len(LABELS)) -> np.ndarray:
    true = np.asarray(y_true, dtype=int)
    pred = np.asarray(y_pred, dtype=int)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} true labels but {pred.size} predictions")
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def classification_summary(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str] = LABELS
) -> dict:
    """``n, accuracy, ua, macro_f1, per_class, confusion`` for label ids in ``range(len(labels))``
    (metrics.json's block; the rule for absent classes is in the module docstring)."""
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    s = scores_from_confusion(matrix)
    return {
        "n": s["n"],
        "accuracy": s["accuracy"],
        "ua": s["ua"],
        "macro_f1": s["macro_f1"],
        "per_class": {
            label: {
                "precision": float(s["precision"][i]),
                "recall": float(s["recall"][i]),
                "f1": float(s["f1"][i]),
                "support": int(s["support"][i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
    }


class EmotionScores(MulticlassConfusionMatrix):
    """The training-time metric: torchmetrics accumulates (and syncs across DDP ranks) the
    confusion matrix; :meth:`scores` turns it into the same figures as ``metrics.json``.
    Clips labelled :data:`IGNORE` are left out."""

    def __init__(self, num_classes: int = len(LABELS)) -> None:
        super().__init__(num_classes=num_classes, ignore_index=IGNORE)

    def scores(self) -> dict[str, torch.Tensor]:
        """``acc, ua, f1`` and ``recall_<label>`` as tensors, ready for ``LightningModule.log``."""
        s = scores_from_confusion(self.compute())
        out = {"acc": s["accuracy"], "ua": s["ua"], "f1": s["macro_f1"]}
        out.update({f"recall_{label}": float(s["recall"][i]) for i, label in enumerate(LABELS)})
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in out.items()}


class EmotionScore(EmotionScores):
    """One figure (``accuracy``, ``ua`` or ``macro_f1``) as a scalar metric, for metrics that
    Lightning computes itself at the epoch's end (``self.log(name, metric)``): it then syncs them
    across DDP ranks in one order on every rank, inside its own logging."""

    def __init__(self, figure: str, num_classes: int = len(LABELS)) -> None:
        super().__init__(num_classes)
        if figure not in ("accuracy", "ua", "macro_f1"):
            raise ValueError(f"figure must be accuracy, ua or macro_f1, got {figure!r}")
        self.figure = figure

    def compute(self) -> torch.Tensor:
        value = scores_from_confusion(super().compute())[self.figure]
        return torch.tensor(value, dtype=torch.float32)
