"""evaluate(cfg) end to end on the tiny backbone and the synthetic corpora: the evaluation folder
contract, metrics that agree with predictions.csv, figures, the submission, model kinds, broken
files, the in-domain warning, noise robustness and W&B."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import compose_config
from test_inference import sharpened_classifier

from ser.evaluation.run import evaluate
from ser.inference.predictions_table import COLUMNS
from ser.labels import LABEL2ID, LABELS
from ser.metrics import classification_summary

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """One set of weights as a training run's model/ and checkpoints/last.ckpt (with the run's
    config.yaml naming the backbone `tiny`), and as a bare state dict outside any run."""
    root = tmp_path_factory.mktemp("eval-models")
    run = root / "run"
    module = sharpened_classifier()
    module.export(run / "model")
    trainer = L.Trainer(max_epochs=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(module)
    trainer.save_checkpoint(run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text("model:\n  backbone: tiny\n")
    torch.save(module.model.state_dict(), root / "emotion_model.pth")
    return {"folder": run / "model", "ckpt": run / "checkpoints" / "last.ckpt",
            "pth": root / "emotion_model.pth", "run": run}


@pytest.fixture(scope="module")
def ravdess_with_broken_file(tiny_corpora, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the synthetic RAVDESS in which one speech file is not audio."""
    root = tmp_path_factory.mktemp("ravdess-broken") / "ravdess"
    shutil.copytree(tiny_corpora["ravdess"], root)
    broken = sorted((root / "Actor_02").glob("03-01-05-*.wav"))[0]
    broken.write_bytes(b"this is not a wav file")
    return root, broken


def run_eval(tmp_path: Path, overrides: list[str]):
    cfg = compose_config("evaluate", tmp_path, ["print_rows=3", "progress=false", *overrides])
    return evaluate(cfg)


def scored_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["true"].isin(LABELS) & table["pred"].isin(LABELS)]


# -- RAVDESS: the folder contract ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ravdess_run(models, ravdess_with_broken_file, tmp_path_factory):
    root, broken = ravdess_with_broken_file
    out = tmp_path_factory.mktemp("eval-ravdess")
    result = run_eval(out, ["dataset=ravdess", f"model_path={models['folder']}",
                            f"dataset.root={root}"])
    return result, broken


def test_ravdess_metrics_agree_with_predictions_csv(ravdess_run):
    result, _ = ravdess_run
    out = result.out_dir
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"true", "correct", "actor", "gender", "emotion", "intensity",
            "statement"} <= set(table.columns)
    metrics = json.loads((out / "metrics.json").read_text())
    rows = scored_rows(table)
    again = classification_summary([LABEL2ID[t] for t in rows["true"]],
                                   [LABEL2ID[p] for p in rows["pred"]])
    for key in ("n", "confusion"):
        assert metrics[key] == again[key]
    for key in ("accuracy", "ua", "macro_f1"):
        assert metrics[key] == pytest.approx(again[key])
    # calm and surprised are out of the scores, and where their predictions went is counted
    assert metrics["n"] == int(table["true"].isin(LABELS).sum()) - 1  # the broken file
    for emotion in ("calm", "surprised"):
        went = table.loc[table["emotion"] == emotion, "pred"].value_counts().to_dict()
        assert {k: v for k, v in metrics["unmapped"][emotion].items() if v} == went
    for actor, part in scored_rows(table).groupby("actor"):
        block = metrics["per_actor"][str(actor)]
        assert block["n"] == len(part)
        assert block["accuracy"] == pytest.approx((part["true"] == part["pred"]).mean())
    assert set(metrics["per_gender"]) == {"male", "female"}
    assert set(metrics["per_intensity"]) == {"normal", "strong"}
    assert set(metrics["per_statement"]) == {"1", "2"}


def test_a_broken_file_is_reported_and_the_rest_evaluated(ravdess_run):
    result, broken = ravdess_run
    table = pd.read_csv(result.out_dir / "predictions.csv", keep_default_na=False)
    assert len(table) == 120
    bad = table[table["path"] == str(broken)]
    assert len(bad) == 1 and bad["pred"].iloc[0] == "" and bad["error"].iloc[0]
    assert (table.drop(bad.index)["pred"].isin(LABELS)).all()
    assert result.metrics["n_failed"] == 1
    assert result.metrics["failed"][0]["path"] == str(broken)
    report = result.report.read_text()
    assert "## Failed files (1)" in report and str(broken) in report
    assert result.exit_code == 1  # every dataset exits 1 when a row failed


def test_every_figure_is_a_png_linked_from_the_report(ravdess_run):
    result, _ = ravdess_run
    figures = sorted((result.out_dir / "figures").glob("*.png"))
    names = {f.name for f in figures}
    assert {"overview_all.png", "overview_actor01.png", "overview_actor02.png",
            "accuracy_by_actor.png", "accuracy_by_gender.png",
            "accuracy_by_intensity.png"} <= names
    report = result.report.read_text()
    for figure in figures:
        data = figure.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, figure
        assert f"](figures/{figure.name})" in report
    assert result.report == result.out_dir / "report.md"


def test_report_says_what_was_evaluated_and_the_kaggle_caveat(ravdess_run, models):
    report = ravdess_run[0].report.read_text()
    assert str(models["folder"]) in report
    assert "backbone: `tiny`" in report
    assert "actors: 01, 02" in report
    assert "contains RAVDESS clips" in report and "audit.train_root" in report
    assert "in-domain" not in report.split("## What was evaluated")[0]


# -- model kinds, caveats ----------------------------------------------------------------------


def actor1(tiny_corpora) -> list[str]:
    return ["dataset=ravdess", f"dataset.root={tiny_corpora['ravdess']}", "dataset.actors=[1]"]


@pytest.fixture(scope="module")
def reference(models, tiny_corpora, tmp_path_factory):
    """The Hugging Face folder on actor 01, with one noise level."""
    return run_eval(tmp_path_factory.mktemp("eval-reference"),
                    [*actor1(tiny_corpora), f"model_path={models['folder']}",
                     "dataset.noise_snr_db=[0]"])


@pytest.mark.parametrize("kind", ["ckpt", "pth"])
def test_the_three_model_path_kinds_give_the_same_metrics(kind, models, tiny_corpora, reference,
                                                          tmp_path):
    common = actor1(tiny_corpora)
    other = run_eval(tmp_path / kind, [*common, f"model_path={models[kind]}", "backbone=tiny"])
    for key in ("n", "confusion", "per_intensity", "unmapped"):
        assert other.metrics[key] == reference.metrics[key]
    probs = [f"p_{label}" for label in LABELS]
    np.testing.assert_allclose(other.predictions[probs].to_numpy(dtype=float),
                               reference.predictions[probs].to_numpy(dtype=float), atol=1e-5)
    assert "backbone: `tiny`" in other.report.read_text()


def test_in_domain_warning_at_the_top_when_the_backbone_is_listed(models, tiny_corpora,
                                                                  tmp_path):
    result = run_eval(tmp_path, ["dataset=ravdess", f"model_path={models['ckpt']}",
                                 f"dataset.root={tiny_corpora['ravdess']}", "dataset.actors=[2]",
                                 "caveats.trained_on_ravdess=[tiny]"])
    head = result.report.read_text().split("## What was evaluated")[0]
    assert "Warning: RAVDESS is in-domain for this model, not cross-lingual" in head


# -- Indonesian and the Kaggle test set --------------------------------------------------------


def test_indonesian_uses_the_test_split_of_the_run(models, tiny_corpora, tmp_path):
    train = pd.read_csv(tiny_corpora["indonesian"] / "train.csv")
    val, test = train["id"].iloc[::3].tolist(), train["id"].iloc[1::3].tolist()
    pd.DataFrame({"file": train["id"], "split": ["val" if i in val else "test" if i in test
                                                 else "train" for i in train["id"]]}).to_csv(
        models["run"] / "split.csv", index=False)
    common = [f"model_path={models['folder']}", f"dataset.root={tiny_corpora['indonesian']}"]
    try:
        result = run_eval(tmp_path / "test", ["dataset=indonesian", *common])
        on_val = run_eval(tmp_path / "val", ["dataset=indonesian", "dataset.split=val", *common])
        every = run_eval(tmp_path / "all", ["dataset=indonesian", "dataset.split=all", *common])
    finally:
        (models["run"] / "split.csv").unlink()
    assert sorted(result.predictions["id"]) == sorted(test)
    assert result.metrics["n"] == len(test) and result.metrics["split"] == "test"
    assert "test split of" in result.report.read_text()
    assert sorted(on_val.predictions["id"]) == sorted(val)
    assert "selected the checkpoint" in on_val.report.read_text()
    assert every.metrics["n"] == len(train)
    assert set(result.metrics["per_intensity"]) and set(result.metrics["per_source"])
    assert (result.out_dir / "figures" / "accuracy_by_source.png").read_bytes()[:8] == PNG_MAGIC


def test_bad_csv_rows_keep_their_row_with_the_reason_and_exit_1(models, tiny_corpora, tmp_path):
    """Labels outside the six, missing files, conflicting duplicate ids, a path outside the
    folder: every CSV row is a row of predictions.csv, counted, and the command exits 1."""
    root = tmp_path / "indonesian"
    shutil.copytree(tiny_corpora["indonesian"], root)
    table = pd.read_csv(root / "train.csv", dtype=str)
    good = table["id"].tolist()
    extra = pd.DataFrame({"id": [good[0], good[1], "1_09999_marah_sedang.wav", "../test.csv",
                                 "/etc/passwd", good[2]],
                          "label": ["senang", "marah", "marah", "sedih", "sedih",
                                    "jijik" if table["label"][2] != "jijik" else "sedih"]})
    table.loc[0, "label"] = "senang"  # a label outside the six
    pd.concat([table, extra.iloc[2:]], ignore_index=True).to_csv(root / "train.csv", index=False)
    n_rows = len(table) + 4
    result = run_eval(tmp_path / "out", ["dataset=indonesian", "dataset.split=all",
                                         f"model_path={models['folder']}", f"dataset.root={root}"])
    csv = pd.read_csv(result.out_dir / "predictions.csv", keep_default_na=False)
    assert len(csv) == n_rows
    m = result.metrics
    assert m["n_rows"] == n_rows and m["n_failed"] == 6 and m["n_scored"] == n_rows - 6
    assert m["failed_reasons"] == {"duplicate_id": 2, "unknown_label": 1, "missing_file": 1,
                                   "unsafe_path": 2}
    failed = csv[csv["error"] != ""]
    assert (failed["pred"] == "").all()
    # Calibration is measured on the scored rows only: a failed row has no probabilities.
    assert m["calibration"]["n"] == n_rows - 6
    assert all(math.isfinite(m["calibration"][k]) for k in ("ece_before", "ece_after", "nll_after"))
    assert result.exit_code == 1
    report = result.report.read_text()
    assert f"rows: {n_rows} (every input row), scored: {n_rows - 6}, failed: 6" in report
    assert "passwd" in report and "unsafe_path" in report


def test_kaggle_submission_has_every_test_id_once_in_order(models, tiny_corpora, tmp_path):
    root = tmp_path / "indonesian"
    shutil.copytree(tiny_corpora["indonesian"], root)
    ids = pd.read_csv(root / "test.csv", dtype=str)["id"].tolist()
    (root / "test" / ids[2]).unlink()  # a test file that cannot be predicted
    result = run_eval(tmp_path / "out", ["dataset=kaggle_test", f"model_path={models['folder']}",
                                         f"dataset.root={root}"])
    sub = pd.read_csv(result.out_dir / "submission.csv", dtype=str, keep_default_na=False)
    assert list(sub.columns) == ["id", "label"]
    assert sub["id"].tolist() == ids
    assert sub["label"].iloc[2] == ""
    assert sub.drop(index=2)["label"].isin(LABELS).all()
    assert result.exit_code == 1
    assert ids[2] in result.report.read_text()
    figure = result.out_dir / "figures" / "predicted_classes.png"
    assert figure.read_bytes()[:8] == PNG_MAGIC
    assert sum(v["n"] for v in result.metrics["predicted"].values()) == len(ids) - 1


# -- noise, W&B, the command -------------------------------------------------------------------


def test_noise_robustness_is_reported_per_snr(reference):
    result = reference
    rows = result.metrics["noise"]
    assert [r["snr_db"] for r in rows] == [None, 0.0]
    assert rows[0]["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert all(r["n"] == result.metrics["n"] for r in rows)
    clean = result.predictions["p_marah"].to_numpy(dtype=float)
    noisy = pd.read_csv(result.out_dir / "predictions_snr0.csv")["p_marah"].to_numpy()
    assert not np.allclose(clean, noisy)  # the noise reached the model
    assert (result.out_dir / "figures" / "noise.png").read_bytes()[:8] == PNG_MAGIC
    assert "Robustness to added white noise" in result.report.read_text()


def test_wandb_logger_runs_without_network(models, tiny_corpora, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    result = run_eval(tmp_path, [*actor1(tiny_corpora), f"model_path={models['folder']}",
                                 "logger=wandb"])
    assert result.metrics["n"] > 0


@pytest.mark.slow
def test_added_noise_is_seeded(models, tiny_corpora, reference, tmp_path):
    again = run_eval(tmp_path, [*actor1(tiny_corpora), f"model_path={models['folder']}",
                                "dataset.noise_snr_db=[0]"])
    assert again.metrics["noise"] == reference.metrics["noise"]
    first = pd.read_csv(reference.out_dir / "predictions_snr0.csv")["p_marah"].to_numpy()
    second = pd.read_csv(again.out_dir / "predictions_snr0.csv")["p_marah"].to_numpy()
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_command_line_prints_the_report_path_last(models, tiny_corpora, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "dataset=ravdess",
         f"model_path={models['folder']}", f"dataset.root={tiny_corpora['ravdess']}",
         "dataset.actors=[1]", f"paths.log_dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("report: ") and Path(last[8:]).is_file()
    assert Path(last[8:]).parent.parent == tmp_path / "eval" / "runs"


# -- leakage audit ------------------------------------------------------------------------------


def test_audit_finds_planted_training_copies_and_reports_clean_scores(models, tiny_corpora,
                                                                      tmp_path):
    """Training data holding resampled copies of three evaluated clips among clips of another
    actor: the three are leaked, nothing else, and the clean scores leave them out. (Hard
    negatives, other takes of the same sentence, are tested in test_audit.py.)"""
    import soundfile as sf
    import soxr

    from ser.evaluation.metrics_json import summary_of

    train = tmp_path / "train"
    train.mkdir()
    actor = sorted((tiny_corpora["ravdess"] / "Actor_01").glob("03-01-0[3-7]-*.wav"))
    planted = actor[:3]
    for i, path in enumerate(planted):
        audio, rate = sf.read(path, dtype="float32")
        sf.write(train / f"copy{i}.flac", soxr.resample(audio, rate, 22050) * 0.7, 22050)
    for path in sorted((tiny_corpora["ravdess"] / "Actor_02").glob("*.wav"))[:10]:
        shutil.copy(path, train / path.name)
    result = run_eval(tmp_path / "eval", [*actor1(tiny_corpora), f"model_path={models['folder']}",
                                          f"audit.train_root={train}",
                                          f"audit.cache_dir={tmp_path / 'fp-cache'}"])
    leakage = result.metrics["leakage"]
    assert leakage["overlap"] == 3 and leakage["summary"].startswith("3 of 60 ")
    table = pd.read_csv(result.out_dir / "predictions.csv")
    leaked = {Path(p).name for p in table.loc[table["leaked"], "path"]}
    assert leaked == {p.name for p in planted}
    clean = summary_of(table[~table["leaked"]])
    assert leakage["clean_n"] == clean["n"] == result.metrics["n"] - 3
    assert leakage["clean_ua"] == pytest.approx(clean["ua"])
    head = result.report.read_text().split("## Scores")[0]
    assert "## Leakage audit" in head and "3 of 60 evaluation clips found" in head


def test_run_model_is_audited_against_its_train_rows_by_default(models, tiny_corpora, tmp_path):
    """A run whose Kaggle data holds one evaluated RAVDESS take in a train row and another in a
    val row: without audit.train_root, the train one is leakage (named with its training file),
    the val one is reported apart as held-out, and the clean score leaves out only the first."""
    import soundfile as sf
    import soxr

    kaggle = tmp_path / "kaggle"
    shutil.copytree(tiny_corpora["indonesian"], kaggle)
    ids = pd.read_csv(kaggle / "train.csv")["id"].tolist()
    actor = sorted((tiny_corpora["ravdess"] / "Actor_01").glob("03-01-0[3-7]-*.wav"))
    in_train, in_val = actor[0], actor[5]
    for file, src in ((ids[0], in_train), (ids[1], in_val)):
        audio, rate = sf.read(src, dtype="float64")
        sf.write(kaggle / "train" / file, soxr.resample(audio, rate, 16000), 16000)
    run = tmp_path / "run"
    shutil.copytree(models["folder"], run / "model")
    (run / "config.yaml").write_text(f"model:\n  backbone: tiny\ndata:\n  root: {kaggle}\n")
    pd.DataFrame({"file": ids, "split": ["val" if i == 1 else "train"
                                         for i in range(len(ids))]}).to_csv(run / "split.csv",
                                                                            index=False)
    result = run_eval(tmp_path / "eval", [*actor1(tiny_corpora), f"model_path={run / 'model'}",
                                          f"audit.cache_dir={tmp_path / 'fp-cache'}"])
    leakage = result.metrics["leakage"]
    assert leakage["overlap"] == 1 and leakage["held_out_overlap"] == 1
    assert leakage["held_out_parts"] == {"val": 1}
    assert leakage["matched"] == {str(in_train.resolve()): str((kaggle / "train" / ids[0])
                                                                .resolve())}
    table = pd.read_csv(result.out_dir / "predictions.csv", keep_default_na=False)
    row = table[table["leaked"].astype(str) == "True"]
    assert [Path(p).name for p in row["path"]] == [in_train.name]
    assert row["train_match"].tolist() == [str((kaggle / "train" / ids[0]).resolve())]
    held = table[table["held_out_match"] != ""]
    assert [Path(p).name for p in held["path"]] == [in_val.name]
    assert leakage["clean_n"] == result.metrics["n"] - 1
    head = result.report.read_text().split("## Scores")[0]
    assert "1 of 60 evaluation clips found" in head and "also found in held-out data" in head


def test_in_domain_warning_follows_the_backbone_not_its_path(tiny_corpora, tmp_path):
    """A local copy of a RAVDESS-trained backbone (its head has RAVDESS's eight labels), under a
    path that names nothing, fine-tuned and exported elsewhere: the report still warns."""
    from test_model import eight_label_checkpoint

    from ser.model import EmotionClassifier

    copy = eight_label_checkpoint(tmp_path / "some" / "local-folder")
    exported = EmotionClassifier(str(copy)).export(tmp_path / "elsewhere" / "model")
    result = run_eval(tmp_path / "eval", ["dataset=ravdess", f"model_path={exported}",
                                          f"dataset.root={tiny_corpora['ravdess']}",
                                          "dataset.actors=[2]"])
    head = result.report.read_text().split("## What was evaluated")[0]
    assert "Warning: RAVDESS is in-domain for this model, not cross-lingual" in head
