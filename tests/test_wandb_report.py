"""The W&B validation report (issue 14, item 9): it reports the outputs gathered from every
rank, not rank 0's share, and each test set gets its own panel."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

import ser.model
from ser.wandb_report import WandbValidationReport
from ser.data.datamodule import RavdessDataModule
from ser.model import EmotionClassifier
from ser.tracking import finish_wandb, wandb_logger

pytestmark = pytest.mark.usefixtures("one_thread")


def test_report_covers_every_rank_and_each_test_set_has_its_own_keys(tiny_corpora, tmp_path,
                                                                     monkeypatch):
    # What DDP's gather does on rank 0: its own share, then the other rank's. Here the "other
    # rank" scored the same clips again, so a report on gathered outputs counts twice as many.
    def two_ranks(items: list) -> list:
        return items + [dict(o) for o in items]

    monkeypatch.setattr(ser.model, "gather_from_ranks", two_ranks)
    logger = wandb_logger(project="ser-test", mode="disabled", save_dir=str(tmp_path))
    logged: list[dict] = []
    try:
        monkeypatch.setattr(logger.experiment, "log", lambda payload, *a, **k: logged.append(
            dict(payload)))
        trainer = L.Trainer(accelerator="cpu", logger=logger, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[WandbValidationReport(max_audio=2)])
        torch.manual_seed(0)
        model = EmotionClassifier("tiny")
        validation = RavdessDataModule(tiny_corpora["ravdess"], actors=[1], batch_size=16)
        extra = RavdessDataModule(tiny_corpora["ravdess"], actors=[2], batch_size=16)
        model.test_set_name = "val_best"  # what train() sets for each pass
        trainer.test(model, datamodule=validation, verbose=False)
        model.test_set_name = "ravdess"
        trainer.test(model, datamodule=extra, verbose=False)
    finally:
        finish_wandb()

    reports = [payload for payload in logged if any(k.endswith("/per_class") for k in payload)]
    assert len(reports) == 2
    first, second = reports
    assert {k.split("/")[0] for k in first} == {"val_best"}
    assert {k.split("/")[0] for k in second} == {"ravdess_best"}  # nothing overwritten
    # Actor 1 alone: its labelled clips (calm and surprised have no class), twice (two ranks).
    labelled = int(validation.frame["label"].notna().sum())
    assert first["val_best/n_clips"] == 2 * labelled
    support = sum(row[4] for row in first["val_best/per_class"].data)
    assert support == 2 * labelled
    # The misclassified table names the test set's own files, not rows of another frame.
    paths = [row[0] for row in second["ravdess_best/misclassified"].data]
    assert paths and all(Path(p).parent.name == "Actor_02" for p in paths)
