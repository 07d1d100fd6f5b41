"""The W&B report callback: a test set's results in front of a person on W&B."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from ser.audio import TARGET_SR, AudioError, load_audio
from ser.forward import probabilities_of
from ser.labels import LABELS
from ser.metrics import classification_summary
from ser.figures import confusion_figure

log = logging.getLogger(__name__)


def _wandb_loggers(trainer: L.Trainer) -> list[Any]:
    from lightning.pytorch.loggers import WandbLogger

    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def report_key(pl_module: Any) -> str:
    """The W&B panel of a test pass, from the set the module is testing on
    (``EmotionClassifier.test_set_name``): ``val_best`` for the validation split, ``test_best``
    for the held-out test split, ``<name>_best`` for an ``extra_test`` set, so no set overwrites
    another's panel."""
    name = getattr(pl_module, "test_set_name", None) or "val_best"
    return name if name.endswith("_best") else f"{name}_best"


def _test_frame(trainer: L.Trainer, pl_module: Any) -> Any:
    """The frame whose rows ``batch["index"]`` refers to in this test pass: what training set on
    the module (``test_set_frame``), else what the data module says."""
    frame = getattr(pl_module, "test_set_frame", None)
    if frame is not None:
        return frame
    datamodule = trainer.datamodule
    if hasattr(datamodule, "frame_for"):
        return datamodule.frame_for("test")
    return getattr(datamodule, "frame", None)


class WandbValidationReport(L.Callback):
    """After testing the best checkpoint on a test set, log what a person looks at.

    A confusion-matrix figure and W&B's own confusion matrix, a per-class table, and a table of
    misclassified clips with their audio (at most ``max_audio`` of them, to keep the run small).

    It runs in ``on_test_end``, after the module's ``on_test_epoch_end`` has gathered the
    per-clip outputs of every rank (Lightning calls a callback's ``on_test_epoch_end`` *before*
    the module's, which under DDP would report rank 0's share only). Each test set gets its own
    keys (:func:`report_key`).
    """

    def __init__(self, max_audio: int = 50) -> None:
        self.max_audio = max_audio

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = _wandb_loggers(trainer)
        outputs = getattr(pl_module, "test_outputs", [])
        if not loggers or not outputs or not trainer.is_global_zero:
            return
        import wandb

        key = report_key(pl_module)
        index = torch.cat([o["index"] for o in outputs]).tolist()
        logits = torch.cat([o["logits"] for o in outputs])
        labels = torch.cat([o["labels"] for o in outputs]).tolist()
        probs = probabilities_of(logits)  # the checkpoint's own (no temperature yet)
        preds = probs.argmax(-1).tolist()
        keep = [i for i, y in enumerate(labels) if y >= 0]
        summary = classification_summary([labels[i] for i in keep], [preds[i] for i in keep])
        frame = _test_frame(trainer, pl_module)
        title = "Validation" if key == "val_best" else key[: -len("_best")]

        fig = confusion_figure(summary["confusion"]["matrix"], LABELS,
                               title=f"{title} (best checkpoint, {len(keep)} clips)")
        per_class = wandb.Table(columns=["label", "precision", "recall", "f1", "support"])
        for label, row in summary["per_class"].items():
            per_class.add_data(label, row["precision"], row["recall"], row["f1"], row["support"])
        wrong = wandb.Table(columns=["path", "true", "pred", "confidence", "audio"])
        for i in keep:
            if preds[i] == labels[i] or len(wrong.data) >= self.max_audio:
                continue
            path = str(frame.iloc[index[i]]["path"]) if frame is not None else str(index[i])
            try:
                audio = wandb.Audio(load_audio(path), sample_rate=TARGET_SR)
            except AudioError as exc:
                log.warning("W&B: no audio for %s", exc)
                audio = None
            wrong.add_data(path, LABELS[labels[i]], LABELS[preds[i]],
                           float(probs[i, preds[i]]), audio)
        payload = {
            f"{key}/confusion_figure": wandb.Image(fig),
            f"{key}/confusion_matrix": wandb.plot.confusion_matrix(
                y_true=[labels[i] for i in keep], preds=[preds[i] for i in keep],
                class_names=list(LABELS)),
            f"{key}/per_class": per_class,
            f"{key}/misclassified": wrong,
            f"{key}/n_clips": len(keep),
        }
        for logger in loggers:
            logger.experiment.log(payload)
