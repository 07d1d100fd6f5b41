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
from torchmetrics import MetricCollection
from transformers import PreTrainedModel

from ser.backbones import load_backbone, load_feature_extractor
from ser.checkpoint_contents import BEST_KEY, add_to_checkpoint, complete_frozen_state
from ser.checksums import write_checksums
from ser.forward import ForwardPath, ModelInputs, model_logits
from ser.labels import LABELS
from ser.metrics import IGNORE, EmotionScore, EmotionScores
from ser.optimisation import apply_freezing, build_optimizer
from ser.skipped_clips import SkippedClips

log = logging.getLogger(__name__)

_SCORES = {"val": "val_scores", "test": "test_scores"}  # stage -> metric key
# Training batches are padded to a multiple of this many samples (0.1 s at 16 kHz) for backbones
# that take the attention mask: on the CPU the demo's speed-perturbed crops cost 25-40 % more per
# epoch without it (ser.preprocessing.pad_to_multiple, bench/BENCHMARKS.md issue 15).
PAD_MULTIPLE = 1600


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
        monitor: str = "val/ua",
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
        # Normalisation, attention mask, probabilities: the path inference takes too (ser.forward).
        self.forward_path = ForwardPath.of(self.model.config, self.feature_extractor,
                                           self._model_logits, pad_multiple=PAD_MULTIPLE)
        self.use_mask = self.forward_path.uses_mask
        apply_freezing(self.model, freeze_backbone=freeze_backbone,
                       freeze_feature_encoder=freeze_feature_encoder)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.register_buffer("class_weight", torch.ones(len(LABELS)), persistent=False)
        # One metric object per stage; the figures come from ser.metrics (one definition).
        self.scores = nn.ModuleDict({_SCORES[stage]: EmotionScores() for stage in _SCORES})
        # Training figures are computed by Lightning's own epoch-end logging: a compute of our
        # own in on_train_epoch_end would sync across ranks in another order than rank zero's
        # progress bar does (a DDP deadlock). Same definition (ser.metrics), one state shared.
        self.train_scores = MetricCollection(
            {name: EmotionScore(figure) for name, figure in
             (("acc", "accuracy"), ("ua", "ua"), ("f1", "macro_f1"))}, prefix="train/")
        # The best value of ``monitor`` over the run's validation epochs (``<monitor>_best``),
        # kept in checkpoints so a resumed run still knows the epochs before the resume.
        self.best_monitored: float | None = None
        # Name of the set the next test pass runs on: its logs are ``<name>/ua`` etc. Training
        # sets ``val_best`` (validation split, best checkpoint), ``test``, and extra sets' names.
        self.test_set_name = "test"
        self.test_set_frame: Any = None  # its rows, when the loader's data module can't say
        # Filled at the end of each validation / test epoch for callbacks and users.
        self.last_confusion: dict[str, torch.Tensor] = {}
        # Per-clip results of the last test pass (metrics.json, the W&B report); validation
        # keeps none, it runs every epoch and only its aggregated metrics are used.
        self.test_outputs: list[dict[str, torch.Tensor]] = []
        # Clips that could not be read, per stage (test: per test set).
        self.skipped = SkippedClips()

    # -- set-up -------------------------------------------------------------------------------

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
        """Logits of a zero-padded batch of raw waveforms with its mask (1 on real samples)."""
        return self.forward_path.logits(input_values, attention_mask)

    def _model_logits(self, inputs: ModelInputs) -> torch.Tensor:
        return model_logits(self.model, inputs)  # self.model read per call: it may be replaced

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

    def _stage_key(self, stage: str) -> str:
        return self.test_set_name if stage == "test" else stage

    def skipped_counts(self) -> dict[str, int]:
        """Unreadable clips per stage / test set, over every rank."""
        return self.skipped.counts(gather_from_ranks)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        self.skipped.record("train", batch, "train")
        out = self._step(batch)
        if out is None:
            return None
        loss, logits, labels = out
        self.train_scores.update(logits, labels)
        n = int(labels.numel())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n,
                 sync_dist=True)
        self.log_dict(self.train_scores, on_step=False, on_epoch=True, batch_size=n)
        # Learning rates per parameter group; logged here (not by LearningRateMonitor) so that
        # logger=none needs no special case.
        for group in self.optimizers().optimizer.param_groups if self._trainer else ():
            self.log(f"lr/{group.get('name', 'group')}", group["lr"], on_step=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        self.skipped.record(self._stage_key(stage), batch, stage)
        out = self._step(batch)
        if out is None:
            return
        loss, logits, labels = out
        self.scores[_SCORES[stage]].update(logits, labels)
        n = int((labels != IGNORE).sum())
        self.log(f"{self._stage_key(stage)}/loss", loss, on_epoch=True, prog_bar=stage == "val",
                 batch_size=max(n, 1), sync_dist=True)
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
        return {"index": batch["index"], "probs": self.forward_path.probabilities(logits)}

    def on_test_epoch_start(self) -> None:
        self.test_outputs = []

    def _end_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        """Log ``<name>/acc, ua, f1, recall_<label>`` for the epoch and reset the stage's metric.
        The confusion matrix is synced across ranks by torchmetrics, so every rank logs the same
        values (sync_dist only averages equal numbers)."""
        metric = self.scores[_SCORES[stage]]
        prefix = self._stage_key(stage)
        values = {f"{prefix}/{k}": v for k, v in metric.scores().items()}
        self.last_confusion[prefix] = metric.compute().cpu()
        metric.reset()
        headline = {k: v for k, v in values.items() if not k.split("/")[-1].startswith("recall_")}
        self.log_dict(headline, prog_bar=stage == "val", sync_dist=True)
        self.log_dict({k: v for k, v in values.items() if k not in headline}, sync_dist=True)
        self.skipped.report(self._stage_key(stage))
        return values

    def on_train_epoch_end(self) -> None:
        self.skipped.report("train")

    def on_validation_epoch_end(self) -> None:
        values = self._end_epoch("val")
        monitor = self.hparams.monitor
        if self.trainer.sanity_checking or monitor not in values:
            return  # the sanity check's two batches must not count towards the best value
        value = float(values[monitor])
        if self.best_monitored is None or value > self.best_monitored:
            self.best_monitored = value
        self.log(f"{monitor}_best", self.best_monitored, prog_bar=True, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        values = self._end_epoch("test")
        # Under DDP each rank saw its own share of the clips: every rank gets them all, so the
        # per-clip results written by global rank zero cover the whole test set.
        scored = sum(len(o["labels"]) for o in self.test_outputs)
        self.test_outputs = gather_from_ranks(self.test_outputs)
        if self.trainer.world_size > 1:
            log.info("%s: rank %d of %d scored %d of %d clips; synced ua=%.6f",
                     self.test_set_name, self.global_rank, self.trainer.world_size, scored,
                     sum(len(o["labels"]) for o in self.test_outputs),
                     float(values[f"{self.test_set_name}/ua"]))

    # -- optimisation -------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("EmotionClassifier was built without an optimizer (inference only)")
        optimizer = build_optimizer(self.model, self.optimizer_factory, self.hparams.head_lr)
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
        """The architecture, the best monitored value, and with the backbone frozen only the
        trainable parameters (:mod:`ser.checkpoint_contents`)."""
        add_to_checkpoint(checkpoint, self.model, self.feature_extractor, self.best_monitored,
                          str(self.hparams.backbone) if self.hparams.freeze_backbone else None)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the best monitored value; a frozen-backbone checkpoint lacks the backbone:
        take it from this module, which was built from the same ``hparams.backbone``."""
        self.best_monitored = checkpoint.get(BEST_KEY, self.best_monitored)
        complete_frozen_state(checkpoint, self.state_dict())

    def export(self, directory: str | Path) -> Path:
        """A Hugging Face folder that ``transformers.pipeline('audio-classification')`` loads."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory, safe_serialization=True)
        self.feature_extractor.save_pretrained(directory)
        write_checksums(directory)  # loading verifies the weights against it (ser.checksums)
        log.info("exported the model to %s", directory)
        return directory
