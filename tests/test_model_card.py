"""The exported model folder explains itself: a Hugging Face model card with metadata, the data,
the split, the scores with ECE, the limits, how to reproduce; evaluations append to it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ser.labels import LABELS
from ser.model_card import EVAL_MARK, append_evaluation, write_model_card


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def _block(n: int, ua: float) -> dict:
    return {"n": n, "accuracy": ua + 0.01, "ua": ua, "macro_f1": ua - 0.01, "per_class": {}}


def test_card_has_hub_metadata_data_split_scores_and_reproduction(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    rows = []
    for i in range(60):
        split = "train" if i < 40 else ("val" if i < 50 else "test")
        rows.append({"file": f"{1 + i % 2}_{i:05d}_x_no_data.wav", "split": split,
                     "label": LABELS[i % 6], "speaker": f"spk-{i // 5}", "gender": "f",
                     "corpus": "crema-d" if i % 2 == 0 else "ravdess"})
    pd.DataFrame(rows).to_csv(run / "split.csv", index=False)
    (run / "environment.json").write_text(json.dumps({"git_commit": "abc123"}))
    cfg = {"seed": 42, "model": {"backbone":
                                 "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"},
           "data": {"root": "/data/indonesian", "split": "group", "val_fraction": 0.2, "seed": 42}}
    metrics = {"validation": _block(10, 0.61), "test": _block(10, 0.55),
               "calibration": {"temperature": 1.7, "validation": {"ece_before": 0.2,
                                                                  "ece_after": 0.05},
                               "test": {"ece_before": 0.25, "ece_after": 0.08}}}
    card = write_model_card(run / "model", cfg, metrics, run)
    text = card.read_text()
    meta = _front_matter(text)
    assert meta["pipeline_tag"] == "audio-classification"
    assert meta["base_model"] == "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"
    assert {"datasets", "metrics", "language", "license", "tags"} <= set(meta)
    assert "fine-tuned **on RAVDESS**" in text  # the backbone's own training data
    assert "| train | 40 | 8 |" in text and "| val | 10 | 2 |" in text  # clips, speakers
    assert "| marah (anger) | 7 | 2 | 1 |" in text  # class balance per split
    assert "| validation | 10 | 0.610 | 0.620 | 0.600 | 0.200 | 0.050 |" in text
    assert "T = 1.700" in text and "Intended use and limits" in text
    assert "abc123" in text and "split.csv" in text and "whole speakers" in text
    assert text.rstrip().endswith(EVAL_MARK)


def test_evaluation_appends_scores_and_leakage_to_the_card(tmp_path):
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "README.md").write_text("---\npipeline_tag: audio-classification\n---\n# card\n")
    metrics = {"n": 50, "accuracy": 0.5, "ua": 0.45, "macro_f1": 0.4,
               "calibration": {"ece_before": 0.3, "ece_after": 0.1},
               "leakage": {"train_root": "train rows of split.csv", "summary":
                           "3 of 50 evaluation clips found in the training data", "clean_n": 47,
                           "clean_accuracy": 0.48, "clean_ua": 0.44, "clean_macro_f1": 0.39,
                           "held_out_overlap": 0}}
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    assert append_evaluation(ckpt, metrics, "ravdess", tmp_path / "report.md") == \
        model / "README.md"
    text = (model / "README.md").read_text()
    assert "### ravdess" in text and "| 50 | 0.450 | 0.500 | 0.400 | 0.300 | 0.100 |" in text
    assert "3 of 50 evaluation clips found in the training data" in text and "n=47" in text
    assert append_evaluation(tmp_path / "emotion_model.pth", metrics, "ravdess",
                             tmp_path / "r.md") is None


@pytest.mark.slow
def test_trained_model_folder_has_a_card_calibration_and_the_evaluation(demo_outputs):
    job = demo_outputs["sweep_dir"] / "0"
    metrics = json.loads((job / "metrics.json").read_text())
    cal = metrics["calibration"]
    assert cal["temperature"] > 0 and cal["fitted_on"] == "validation"
    for name in ("validation", "ravdess"):
        assert {"ece_before", "ece_after", "nll_before", "nll_after"} <= set(cal[name])
    assert cal["validation"]["nll_after"] <= cal["validation"]["nll_before"] + 1e-9
    assert (job / "figures" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((job / "model" / "config.json").read_text())
    assert config["calibration_temperature"] == pytest.approx(cal["temperature"])
    text = (job / "model" / "README.md").read_text()
    assert _front_matter(text)["pipeline_tag"] == "audio-classification"
    assert "| validation |" in text and "python train.py" in text
    evaluations = text.split(EVAL_MARK)[1]
    assert "### ravdess" in evaluations  # appended by the fixture's evaluate.py
    eval_metrics = json.loads((demo_outputs["eval_dir"] / "metrics.json").read_text())
    assert Path(eval_metrics["calibration"]["figure"]).name == "reliability.png"
    assert "### Calibration" in (demo_outputs["eval_dir"] / "report.md").read_text()
