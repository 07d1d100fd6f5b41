"""The LightningModule: a Wav2Vec2-family backbone with the six-class head, AdamW and a warmup.

Hyper-parameters stay plain (backbone name, flags, numbers), so a checkpoint reloads without
pickled objects; the optimizer and scheduler arrive as ``functools.partial`` from Hydra and are
called in :meth:`configure_optimizers` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)
from transformers import PreTrainedModel

from ser.backbones import load_backbone, load_feature_extractor, uses_attention_mask
from ser.labels import LABELS
from ser.preprocessing import normalize_waveforms

log = logging.getLogger(__name__)

IGNORE = -1  # label of clips without one of the six classes (RAVDESS calm and surprised)
HF_CONFIG_KEY = "hf_config"
HF_FEATURE_EXTRACTOR_KEY = "hf_feature_extractor"
# Set in checkpoints written with the backbone frozen: they hold the trainable parameters only,
# the backbone comes from this name (hub id or folder) when they are loaded.
FROZEN_FROM_KEY = "ser_frozen_backbone_from"


def stage_metrics(num_classes: int = len(LABELS)) -> MetricCollection:
    """The field's figures: WA (accuracy), UA (macro recall), macro-F1; unlabelled clips ignored."""
    kw = dict(num_classes=num_classes, ignore_index=IGNORE)
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(average="micro", **kw),
            "ua": MulticlassRecall(average="macro", **kw),
            "f1": MulticlassF1Score(average="macro", **kw),
        }
    )


def gather_from_ranks(items: list[Any]) -> list[Any]:
    """Every rank's list, concatenated in rank order; the list itself outside DDP."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    gathered: list[list[Any] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in (part or [])]


class EmotionClassifier(L.LightningModule):
    """Fine-tunes ``backbone`` (hub id, local folder or ``tiny``) on the six emotions."""

    def __init__(
        self,
        backbone: str = "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition",
        *,
        freeze_feature_encoder: bool = True,
        freeze_backbone: bool = False,
        use_weighted_layer_sum: bool = False,
        gradient_checkpointing: bool = False,
        class_weights: Sequence[float] | str | None = None,
        label_smoothing: float = 0.0,
        head_lr: float | None = None,
        warmup_ratio: float = 0.1,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.model: PreTrainedModel = load_backbone(
            backbone, use_weighted_layer_sum=use_weighted_layer_sum, pretrained=pretrained
        )
        # from_pretrained returns eval mode; Lightning keeps each module's mode as it finds it,
        # so without this dropout would be off during training.
        self.model.train()
        self.feature_extractor = load_feature_extractor(backbone, self.model.config)
        self.use_mask = uses_attention_mask(self.model.config)
        self._apply_freezing()
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.register_buffer("class_weight", torch.ones(len(LABELS)), persistent=False)
        self.train_metrics = stage_metrics().clone(prefix="train/")
        self.val_metrics = stage_metrics().clone(prefix="val/")
        self.test_metrics = stage_metrics().clone(prefix="test/")
        self.val_recall = MulticlassRecall(len(LABELS), average=None, ignore_index=IGNORE)
        self.test_recall = MulticlassRecall(len(LABELS), average=None, ignore_index=IGNORE)
        self.val_confusion = MulticlassConfusionMatrix(len(LABELS), ignore_index=IGNORE)
        self.test_confusion = MulticlassConfusionMatrix(len(LABELS), ignore_index=IGNORE)
        self.val_ua_best = MaxMetric()
        # Filled at the end of each validation / test epoch for callbacks and users.
        self.last_confusion: dict[str, torch.Tensor] = {}
        # Per-clip results of the last test pass (metrics.json, the W&B report); validation
        # keeps none, it runs every epoch and only its aggregated metrics are used.
        self.test_outputs: list[dict[str, torch.Tensor]] = []

    # -- set-up -------------------------------------------------------------------------------

    def _apply_freezing(self) -> None:
        hp = self.hparams
        if hp.freeze_backbone:
            # The feature encoder too: while its _requires_grad flag is on it makes its output
            # require gradients, and backward then runs through the whole frozen backbone.
            self.model.freeze_feature_encoder()
            for name, param in self.model.named_parameters():
                param.requires_grad = self._is_head(name)
        elif hp.freeze_feature_encoder:
            self.model.freeze_feature_encoder()

    @staticmethod
    def _is_head(name: str) -> bool:
        return name.startswith(("projector.", "classifier.", "layer_weights"))

    def set_class_weights(self, counts: Sequence[int]) -> None:
        """Inverse-frequency weights from the training split's class counts (``balanced``)."""
        spec = self.hparams.class_weights
        if spec is None:
            return
        if spec == "balanced":
            counts_t = torch.as_tensor(counts, dtype=torch.float).clamp_min(1)
            weights = counts_t.sum() / (len(counts_t) * counts_t)
        else:
            weights = torch.as_tensor(list(spec), dtype=torch.float)
        if weights.numel() != len(LABELS):
            raise ValueError(f"class_weights needs {len(LABELS)} values, got {weights.numel()}")
        self.class_weight.copy_(weights)
        log.info("class weights: %s", ", ".join(f"{l}={w:.2f}" for l, w in zip(LABELS, weights)))

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and dm is not None and hasattr(dm, "class_counts"):
            self.set_class_weights(dm.class_counts())

    # -- forward ------------------------------------------------------------------------------

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.feature_extractor.do_normalize:
            input_values = normalize_waveforms(input_values, attention_mask)
        mask = attention_mask if self.use_mask else None
        return self.model(input_values=input_values, attention_mask=mask).logits

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        labels = batch["labels"]
        if labels.numel() == 0:
            return None
        logits = self(batch["input_values"], batch["attention_mask"])
        if (labels == IGNORE).all():
            loss = logits.sum() * 0.0  # nothing to learn from; keeps the graph for DDP
        else:
            loss = nn.functional.cross_entropy(
                logits.float(), labels, weight=self.class_weight, ignore_index=IGNORE,
                label_smoothing=self.hparams.label_smoothing,
            )
        return loss, logits, labels

    def _log_failed(self, batch: dict[str, Any], stage: str) -> None:
        for index, error in batch.get("failed", ()):
            log.warning("%s: skipped item %s: %s", stage, index, error)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        self._log_failed(batch, "train")
        out = self._step(batch)
        if out is None:
            return None
        loss, logits, labels = out
        self.train_metrics(logits, labels)
        n = int(labels.numel())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n,
                 sync_dist=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=n)
        # Learning rates per parameter group; logged here (not by LearningRateMonitor) so that
        # logger=none needs no special case.
        for group in self.optimizers().optimizer.param_groups if self._trainer else ():
            self.log(f"lr/{group.get('name', 'group')}", group["lr"], on_step=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        self._log_failed(batch, stage)
        out = self._step(batch)
        if out is None:
            return
        loss, logits, labels = out
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        recall = self.val_recall if stage == "val" else self.test_recall
        confusion = self.val_confusion if stage == "val" else self.test_confusion
        metrics.update(logits, labels)
        recall.update(logits, labels)
        confusion.update(logits, labels)
        n = int((labels != IGNORE).sum())
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=stage == "val", batch_size=max(n, 1),
                 sync_dist=True)
        if stage == "test":
            self.test_outputs.append(
                {"index": batch["index"].cpu(), "logits": logits.detach().float().cpu(),
                 "labels": labels.cpu()}
            )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch["input_values"], batch["attention_mask"])
        return {"index": batch["index"], "probs": logits.float().softmax(-1)}

    def on_test_epoch_start(self) -> None:
        self.test_outputs = []

    def _end_eval_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        recall = self.val_recall if stage == "val" else self.test_recall
        confusion = self.val_confusion if stage == "val" else self.test_confusion
        values = metrics.compute()
        # torchmetrics has already synced these across ranks (identical everywhere), so
        # sync_dist only averages equal numbers; it keeps every rank's logged value the same.
        self.log_dict(values, prog_bar=stage == "val", sync_dist=True)
        per_class = recall.compute()
        self.log_dict({f"{stage}/recall_{label}": per_class[i] for i, label in enumerate(LABELS)},
                      sync_dist=True)
        self.last_confusion[stage] = confusion.compute().cpu()
        metrics.reset()
        recall.reset()
        confusion.reset()
        if stage == "val":
            self.val_ua_best(values["val/ua"])
            self.log("val/ua_best", self.val_ua_best.compute(), prog_bar=True, sync_dist=True)
        return values

    def on_validation_epoch_end(self) -> None:
        self._end_eval_epoch("val")

    def on_test_epoch_end(self) -> None:
        values = self._end_eval_epoch("test")
        # Under DDP each rank saw its own share of the clips: every rank gets them all, so the
        # per-clip results written by global rank zero cover the whole test set.
        scored = sum(len(o["labels"]) for o in self.test_outputs)
        self.test_outputs = gather_from_ranks(self.test_outputs)
        if self.trainer.world_size > 1:
            log.info("test: rank %d of %d scored %d of %d clips; synced test/ua=%.6f",
                     self.global_rank, self.trainer.world_size, scored,
                     sum(len(o["labels"]) for o in self.test_outputs), float(values["test/ua"]))

    def on_train_start(self) -> None:
        # Sanity-check validation must not count towards the best value.
        self.val_ua_best.reset()

    # -- optimisation -------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("EmotionClassifier was built without an optimizer (inference only)")
        head, body = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (head if self._is_head(name) else body).append(param)
        optimizer = self.optimizer_factory(params=[{"params": body, "name": "backbone"}])
        base_lr = optimizer.param_groups[0]["lr"]
        head_lr = self.hparams.head_lr if self.hparams.head_lr is not None else base_lr
        optimizer.add_param_group({"params": head, "lr": head_lr, "name": "head"})
        if not body:
            optimizer.param_groups.pop(0)  # head only (freeze_backbone)
        log.info("%s: %s", type(optimizer).__name__, ", ".join(
            f"{g['name']} lr={g['lr']:g} ({sum(p.numel() for p in g['params']):,} parameters)"
            for g in optimizer.param_groups))
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(
            optimizer=optimizer,
            num_warmup_steps=int(round(self.hparams.warmup_ratio * total)),
            num_training_steps=total,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- saving -------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the architecture in the checkpoint, so it reloads without the hub (offline).

        With the backbone frozen only the trainable parameters are kept (the backbone's weights
        are those of ``hparams.backbone``, loaded again on restore): a few MB instead of 1.3 GB
        for the XLSR-large architecture.
        """
        checkpoint[HF_CONFIG_KEY] = self.model.config.to_dict()
        checkpoint[HF_FEATURE_EXTRACTOR_KEY] = self.feature_extractor.to_dict()
        if self.hparams.freeze_backbone:
            frozen = {f"model.{n}" for n, p in self.model.named_parameters() if not p.requires_grad}
            state = checkpoint["state_dict"]
            for key in frozen & set(state):
                del state[key]
            checkpoint[FROZEN_FROM_KEY] = str(self.hparams.backbone)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A frozen-backbone checkpoint lacks the backbone: take it from this module, which was
        built from the same ``hparams.backbone``."""
        if checkpoint.get(FROZEN_FROM_KEY) is not None:
            state = checkpoint["state_dict"]
            for key, value in self.state_dict().items():
                state.setdefault(key, value)

    def export(self, directory: str | Path) -> Path:
        """A Hugging Face folder that ``transformers.pipeline('audio-classification')`` loads."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory, safe_serialization=True)
        self.feature_extractor.save_pretrained(directory)
        log.info("exported the model to %s", directory)
        return directory
