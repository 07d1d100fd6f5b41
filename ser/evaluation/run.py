"""``evaluate(cfg)``: one evaluation as a plain function that tests call in-process.

The job: index the data, load the model (any of the three kinds), predict every file (a broken
file gets a row with its error and the rest go on), compute metrics.json from the predictions
table, draw the figures, optionally repeat under added noise, write report.md, log to W&B when
asked. The last printed line is ``report: <path>`` (contract).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ser.backbones import IDENTITY_KEY
from ser.calibration import evaluation_calibration
from ser.evaluation.data import BREAKDOWNS, EvalSet, load_eval_set
from ser.evaluation.metrics_json import headline, metrics_of, nan_to_none
from ser.evaluation.predicting import predict_clean, predict_noisy, predictions_table
from ser.evaluation.provenance import identify_backbone, model_kind, training_data_of
from ser.evaluation.report import ReportInput, write_report
from ser.figures import evaluation as fig
from ser.inference import EmotionRecognizer
from ser.inference.predictions_table import summary
from ser.model_card import append_evaluation

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    out_dir: Path
    report: Path
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    exit_code: int = 0


# -- the job -----------------------------------------------------------------------------------


def draw_figures(data: EvalSet, table: pd.DataFrame, metrics: dict[str, Any],
                 figures_dir: Path) -> list[Path]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    if data.name == "ravdess":
        made.append(fig.overview(table, figures_dir / "overview_all.png",
                                 f"RAVDESS, actors {', '.join(map(str, data.actors))}"))
        for actor, part in table.groupby("actor"):
            made.append(fig.overview(part, figures_dir / f"overview_actor{int(actor):02d}.png",
                                     f"RAVDESS actor {int(actor):02d}"))
    elif metrics["n"]:
        made.append(fig.confusion(metrics, figures_dir / "confusion.png",
                                  f"{data.name}: confusion (rows: true, normalised)"))
    if "predicted" in metrics:
        made.append(fig.prediction_distribution(metrics["predicted"],
                                                figures_dir / "predicted_classes.png",
                                                f"{data.name}: predicted classes"))
    for column in BREAKDOWNS[data.name]:
        block = metrics.get(f"per_{column}")
        if block:
            made.append(fig.accuracy_bars(block, figures_dir / f"accuracy_by_{column}.png",
                                          f"Accuracy by {column}", column))
    return made


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"


def write_submission(table: pd.DataFrame, path: Path) -> Path:
    """``id,label`` in test.csv order; a failed file keeps its id with an empty label."""
    pd.DataFrame({"id": table["id"], "label": table["pred"].fillna("")}).to_csv(path, index=False)
    return path


def evaluate(cfg: DictConfig) -> Evaluation:
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = str(cfg.model_path)
    data = load_eval_set(cfg.dataset, model_path)
    log.info("%s: %d files from %s", data.name, len(data.frame), data.root)
    recognizer = EmotionRecognizer.from_pretrained(
        model_path, device=cfg.get("device"), backbone=cfg.get("backbone"),
        threads=cfg.get("threads"), quantize=bool(cfg.get("quantize", False)),
        runtime=cfg.get("runtime") or "auto")
    backbone, backbone_source, names = identify_backbone(model_path, cfg.get("backbone"),
                                                         recognizer)
    listed = set(cfg.get("caveats", {}).get("trained_on_ravdess") or [])
    # The identity recorded in the model's config when its backbone was loaded (its head's
    # labels, its hub id) holds however the files were copied or renamed since.
    identity = getattr(recognizer.config, IDENTITY_KEY, None) or {}
    names = [*names, *([str(identity["name"])] if identity.get("name") else [])]
    in_domain = data.name == "ravdess" and (any(n in listed for n in names)
                                            or bool(identity.get("trained_on_ravdess")))
    if in_domain:
        log.warning("backbone %s was trained on RAVDESS (%s): these scores are in-domain",
                    backbone, identity.get("evidence") or "listed in caveats.trained_on_ravdess")

    results = predict_clean(recognizer, data, cfg)
    table = predictions_table(data, results)
    audit_cfg = cfg.get("audit") or {}
    leakage = None
    trained = training_data_of(audit_cfg, model_path)
    if trained is not None:
        from ser.evaluation.leakage import audit_predictions

        leakage = audit_predictions(table, trained, out_dir, cache_dir=audit_cfg.get("cache_dir"))
    table.to_csv(out_dir / "predictions.csv", index=False)
    metrics = metrics_of(table, BREAKDOWNS[data.name], ravdess=data.name == "ravdess")
    if leakage is not None:
        metrics["leakage"] = leakage
    metrics.update(dataset=data.name, model_path=model_path, backbone=backbone)
    if data.actors:
        metrics["actors"] = list(data.actors)
    if data.split:
        metrics["split"] = data.split

    figures = draw_figures(data, table, metrics, out_dir / "figures")
    calibration = evaluation_calibration(table, recognizer.temperature,
                                         out_dir / "figures" / "reliability.png", data.name)
    if calibration is not None:
        metrics["calibration"] = calibration
        figures.append(Path(calibration["figure"]))
    noise_rows: list[dict[str, Any]] = []
    if cfg.dataset.get("noise_snr_db"):
        noise_rows.append({"snr_db": None, **headline(metrics)})
        for snr in cfg.dataset.noise_snr_db:
            noisy = predictions_table(data, predict_noisy(recognizer, data, float(snr),
                                                          int(cfg.seed or 0), cfg))
            noisy.to_csv(out_dir / f"predictions_snr{float(snr):g}.csv", index=False)
            noise_rows.append({"snr_db": float(snr),
                               **headline(metrics_of(noisy, (), ravdess=False))})
        metrics["noise"] = noise_rows
        if metrics["n"]:
            figures.append(fig.noise_curve(noise_rows, out_dir / "figures" / "noise.png"))
    metrics = nan_to_none(metrics)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))

    exit_code = 1 if metrics["n_failed"] else 0
    if data.name == "kaggle_test":
        sub = write_submission(table, out_dir / "submission.csv")
        print(f"submission: {sub}")
    if metrics["n_failed"]:
        log.error("%d of %d rows could not be used (%s); they are rows with the reason in "
                  "predictions.csv and listed in report.md; exit status 1",
                  metrics["n_failed"], metrics["n_rows"],
                  ", ".join(f"{k}: {v}" for k, v in metrics["failed_reasons"].items()))
    report = write_report(ReportInput(
        dataset=data.name, model_path=model_path, model_kind=model_kind(model_path),
        backbone=backbone, backbone_source=backbone_source, data_root=str(data.root),
        metrics=metrics, figures=figures, out_dir=out_dir, in_domain=in_domain,
        actors=data.actors, notes=data.notes, noise=noise_rows,
        audit_root=trained.source if trained is not None else None), out_dir / "report.md")

    append_evaluation(model_path, metrics, data.name, report)
    loggers = cfg.get("logger") or {}
    if "wandb" in loggers:
        from ser.evaluation.wandb_log import log_evaluation

        log_evaluation(loggers.wandb, OmegaConf.to_container(cfg, resolve=True),
                       metrics, figures, table, out_dir)
    unknown = sorted(set(loggers) - {"wandb"})
    if unknown:
        log.warning("evaluation logs to W&B only; logger entries %s are ignored", unknown)

    print(summary(results))
    print(f"{data.name}{' (' + data.split + ' split)' if data.split else ''}: "
          f"rows {metrics['n_rows']}, scored {metrics['n_scored']}, failed {metrics['n_failed']}")
    if metrics["n"]:
        print(f"{data.name}: n={metrics['n']} WA={metrics['accuracy']:.3f} "
              f"UA={metrics['ua']:.3f} macro-F1={metrics['macro_f1']:.3f}"
              + ("  [in-domain: the backbone was trained on RAVDESS]" if in_domain else ""))
        if leakage and leakage.get("overlap"):
            print(f"{data.name}: {leakage['overlap']} clips found in the training data; clean "
                  f"part n={leakage.get('clean_n')} UA={_fmt(leakage.get('clean_ua'))}")
    print(f"report: {report}")
    return Evaluation(out_dir, report, metrics, table, exit_code)
