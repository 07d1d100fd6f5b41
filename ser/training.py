"""``train(cfg)``: the whole training job as a plain function that tests call in-process.

train.py only adds ``@hydra.main``. The job: seed, build from config, fit, test the best
checkpoint on the validation split (and on any extra test sets), export the model as a Hugging
Face folder, and write the run folder's records.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ser.calibration import calibrate_export, logits_of
from ser.data.extra_test import extra_test_datamodule
from ser.inference.auto_export import export_trained_model
from ser.distributed import distributed_job
from ser.metrics import classification_summary
from ser.model_card import write_model_card
from ser.tracking import finish_wandb

log = logging.getLogger(__name__)

RECORDED_PACKAGES = ("ser", "torch", "lightning", "transformers", "torchmetrics", "hydra-core",
                     "omegaconf", "wandb", "numpy", "pandas", "soundfile", "soxr")


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Every ``_target_`` entry of a config group (callbacks, loggers); ``none`` gives []."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def environment_record() -> dict[str, Any]:
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"git_commit": git_commit(), "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": versions}


def write_run_records(output_dir: Path, cfg: DictConfig) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (output_dir / "environment.json").write_text(json.dumps(environment_record(), indent=2))


def evaluation_summary(module: L.LightningModule) -> dict[str, Any]:
    """metrics.json figures for the last test pass, from the module's collected outputs."""
    outputs = module.test_outputs
    if not outputs:
        return {"n": 0}
    labels = torch.cat([o["labels"] for o in outputs])
    preds = torch.cat([o["logits"] for o in outputs]).argmax(-1)
    known = labels >= 0
    summary = classification_summary(labels[known].tolist(), preds[known].tolist())
    unmapped = int((~known).sum())
    if unmapped:
        summary["unmapped_n"] = unmapped
    return summary


def test_on(trainer: L.Trainer, model: L.LightningModule, name: str, ckpt_path: str | None,
            frame: Any = None, **data: Any) -> dict[str, Any]:
    """One test pass of the best weights over one set; its logs are ``<name>/ua`` etc., its W&B
    report panel ``<name>_best`` (ser.wandb_report)."""
    model.test_set_name = name
    model.test_set_frame = frame
    trainer.test(model, ckpt_path=ckpt_path, weights_only=False, **data)
    summary = evaluation_summary(model)
    skipped = model.skipped_counts().get(name, 0)
    if skipped:
        summary["skipped"] = skipped
    return summary


def best_value(trainer: L.Trainer, model: L.LightningModule) -> float | None:
    """The best validation value of the run: what the checkpoint kept (ModelCheckpoint's
    ``best_model_score``), else the module's own record (no checkpointing, fast_dev_run)."""
    callback = trainer.checkpoint_callback
    score = getattr(callback, "best_model_score", None) if callback else None
    if score is not None and torch.isfinite(score):
        return float(score)
    return model.best_monitored


# The demo's corpus seed; warm starts are built from other seeds (ser.pretraining.warm_start).
DEMO_CORPUS_SEED = 0


def prepare_synthetic_data(directory: str | None) -> None:
    """The demo's corpora: written once under ``directory`` when missing."""
    if directory:
        from ser.data.synthetic import write_synthetic_corpora

        write_synthetic_corpora(directory, seed=DEMO_CORPUS_SEED, size="demo")


def check_distributed_sampling(trainer: L.Trainer, trainer_cfg: DictConfig) -> None:
    """Several processes need ``use_distributed_sampler=False``: our samplers shard themselves,
    and Lightning's sampler on top would shard again, so each rank would evaluate a fraction of
    its share and the metrics would silently cover only part of the data."""
    if trainer.world_size > 1 and trainer_cfg.get("use_distributed_sampler", True):
        raise ValueError(
            f"{trainer.world_size} processes with trainer.use_distributed_sampler=true: the data "
            "modules shard their batches by rank themselves. Use trainer=ddp (or ddp_cpu), or set "
            "trainer.use_distributed_sampler=false.")


def resume_in_place(cfg: DictConfig) -> None:
    """Point a resumed job at the run it continues: same folder, checkpoints and split.

    A checkpoint at ``RUN/checkpoints/last.ckpt`` belongs to RUN; writing the rest of that run
    elsewhere would lose the best-checkpoint record (Lightning keeps it per folder) and could
    draw the validation split again from changed data.
    """
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt}: no such checkpoint")
    run = ckpt.resolve().parent.parent
    if ckpt.parent.name != "checkpoints" or not (run / "config.yaml").is_file():
        log.info("resuming from %s into the new run folder %s", ckpt, cfg.paths.output_dir)
        return
    log.info("resuming run %s from %s", run, ckpt.name)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run)
        if "split_from" in cfg.data and (run / "split.csv").is_file():
            cfg.data.split_from = str(run / "split.csv")


def train(cfg: DictConfig) -> tuple[float | None, dict[str, Any]]:
    """Run one training job; returns (optimised metric, metrics dict).

    Whatever happens, the job's W&B run is finished (marked failed on an error) and its
    distributed state cleared, so the next job of a multirun starts clean.
    """
    with distributed_job():
        try:
            result = _run_job(cfg)
        except BaseException:
            finish_wandb(exit_code=1)
            raise
        finish_wandb()
        return result


def _run_job(cfg: DictConfig) -> tuple[float | None, dict[str, Any]]:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    if cfg.get("ckpt_path"):
        resume_in_place(cfg)
    output_dir = Path(cfg.paths.output_dir)
    prepare_synthetic_data(cfg.get("synthetic_data"))

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    model: L.LightningModule = instantiate(cfg.model)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    check_distributed_sampling(trainer, cfg.trainer)

    if trainer.is_global_zero:
        write_run_records(output_dir, cfg)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    optimized = str(cfg.get("optimized_metric") or "val/ua")
    best_score = best_value(trainer, model)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not best:
        log.warning("no best checkpoint (fast_dev_run or no validation); testing the last weights")
    ckpt = best or None
    metrics: dict[str, Any] = {
        "best_checkpoint": best or None,
        "optimized_metric": optimized,
        "best_value": best_score,
        # The sweeps' ranking column (kept under this name for the default metric).
        "val_ua_best": best_score if optimized == "val/ua" else None,
        "split": getattr(datamodule, "split_info", None) or None,
    }
    # The validation split again with the selected weights (the number selection used), then
    # the held-out test split, touched once, here. Each pass's logits also go to calibration
    # (ser.calibration: the temperature is fitted on validation, scored on every set).
    calibration_sets: dict[str, Any] = {}
    if hasattr(datamodule, "val_dataloader"):
        datamodule.setup("fit")
        metrics["validation"] = test_on(trainer, model, "val_best", ckpt,
                                        frame=datamodule.val_frame,
                                        dataloaders=datamodule.val_dataloader())
        calibration_sets["validation"] = logits_of(model)
    test_frame = getattr(datamodule, "test_frame", None)
    if test_frame is not None and len(test_frame):
        metrics["test"] = test_on(trainer, model, "test", ckpt, datamodule=datamodule)
        calibration_sets["test"] = logits_of(model)
    else:
        log.warning("no test split (data.test_fraction=0): only validation scores are reported, "
                    "and they are the scores the checkpoint was selected on")
    for name, node in (cfg.get("extra_test") or {}).items():
        extra = extra_test_datamodule(
            name, node, batch_size=cfg.data.get("eval_batch_size") or cfg.data.batch_size,
            num_workers=cfg.data.num_workers)
        metrics[name] = test_on(trainer, model, name, ckpt, datamodule=extra)
        calibration_sets[name] = logits_of(model)
    skipped = model.skipped_counts()
    metrics["skipped"] = {"train": skipped.get("train", 0), "val": skipped.get("val", 0),
                          **{k: v for k, v in skipped.items() if k not in ("train", "val")}}

    if trainer.is_global_zero:
        model_dir = model.export(output_dir / "model")
        metrics["calibration"] = calibrate_export(calibration_sets, model_dir,
                                                  output_dir / "figures" / "reliability.png")
        metrics["model"] = str(model_dir)
        val_frame = getattr(datamodule, "val_frame", None)
        metrics["onnx"] = export_trained_model(
            model_dir, [] if val_frame is None else [str(p) for p in val_frame["path"]],
            **OmegaConf.to_container(cfg.get("onnx_export") or OmegaConf.create({}),
                                     resolve=True))
        write_model_card(model_dir, cfg, metrics, output_dir)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print_summary(metrics)
    return best_score, metrics


def describe_sets(metrics: dict[str, Any]) -> dict[str, str]:
    """What each scored set is, in words: which split, which speakers, in-domain or not."""
    split = metrics.get("split") or {}
    blocks = split.get("splits", {})
    disjoint = split.get("speaker_disjoint")
    who = ("speaker(s) not in training" if disjoint else
           f"speaker(s), {split.get('shared_speakers', '?')} shared with other splits"
           if disjoint is not None else "speakers unknown")
    words = {
        "validation": f"validation split ({split.get('kind', '?')} split, "
                      f"{blocks.get('val', {}).get('speakers', '?')} {who}); "
                      "selected the checkpoint, so optimistic",
        "test": f"test split, held out, scored once ({blocks.get('test', {}).get('speakers', '?')}"
                f" {who})",
    }
    for name, block in metrics.items():
        if isinstance(block, dict) and "n" in block and name not in words:
            words[name] = "extra test set (another corpus; see its evaluation report for leakage)"
    return words


def print_summary(metrics: dict[str, Any]) -> None:
    """What a person reads at the end of a run; the ``model:`` line is last (contract)."""
    print(f"\nResults (best checkpoint: {metrics.get('optimized_metric')}="
          f"{_fmt(metrics.get('best_value'))} on validation)")
    words = describe_sets(metrics)
    for name, block in metrics.items():
        if not isinstance(block, dict) or not block.get("n"):
            continue
        print(f"  {name:<11} n={block['n']:<5} WA={block['accuracy']:.3f} "
              f"UA={block['ua']:.3f} macro-F1={block['macro_f1']:.3f}  [{words.get(name, name)}]")
        recalls = " ".join(f"{k}={v['recall']:.2f}" for k, v in block["per_class"].items()
                           if v["support"])
        print(f"  {'':<11} recall: {recalls}")
    skipped = {k: v for k, v in (metrics.get("skipped") or {}).items() if v}
    left_out = (metrics.get("split") or {}).get("left_out") or {}
    if skipped or left_out:
        print(f"  unreadable clips skipped: {skipped or 'none'}; rows of train.csv left out: "
              f"{left_out or 'none'}")
    print(f"model: {metrics['model']}")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
