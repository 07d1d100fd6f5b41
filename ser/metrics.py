"""The figures the field reports, from true and predicted labels: WA, UA, macro-F1, confusion.

One implementation for metrics.json everywhere (training runs, evaluations, sweeps), so that a
number in a report can be recomputed from the predictions next to it. torchmetrics does the same
during training; the tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ser.labels import LABELS


def classification_summary(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str] = LABELS
) -> dict:
    """``n, accuracy, ua, macro_f1, per_class, confusion`` for label ids in ``range(len(labels))``.

    UA (unweighted accuracy) is the mean recall over the classes present in ``y_true``; macro-F1
    averages over the same classes, so an evaluation set without a class is not penalised for it.
    """
    true = np.asarray(y_true, dtype=int)
    pred = np.asarray(y_pred, dtype=int)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} true labels but {pred.size} predictions")
    k = len(labels)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (true, pred), 1)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    tp = np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    n = int(true.size)
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "ua": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
    }
