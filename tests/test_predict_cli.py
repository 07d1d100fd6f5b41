"""`ser predict` on a folder of good and broken files, with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from ser.cli import main
from ser.labels import LABELS
from ser.model import EmotionClassifier

CONTRACT = ["path", "pred", "confidence", *[f"p_{label}" for label in LABELS], "error"]




pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-model")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_CACHE", str(root / "cache"))
        torch.manual_seed(0)
        return EmotionClassifier("tiny").export(root / "model")


def noise(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


@pytest.fixture()
def corpus(tmp_path: Path) -> dict[str, list[Path]]:
    """Good files (Kaggle and RAVDESS names, a plain name, a nested flac, a long recording) and
    broken ones, plus a text file that a folder search must skip."""
    root = tmp_path / "clips"
    (root / "nested").mkdir(parents=True)
    good = [root / "1_00460_sedih_no_data.wav", root / "2_07910_jijik_tinggi.wav",
            root / "03-01-05-01-01-01-01.wav", root / "03-01-02-01-01-01-01.wav",
            root / "test51.wav", root / "nested" / "deep.flac", root / "long.wav"]
    for i, path in enumerate(good[:-1]):
        sf.write(path, noise(1.0 + 0.2 * i, seed=i), 16000)
    sf.write(good[-1], noise(22.0, seed=9), 16000)
    broken = [root / "empty.wav", root / "notes.mp3", root / "nested" / "nan.wav",
              root / "blip.ogg"]
    broken[0].write_bytes(b"")
    broken[1].write_text("not audio")
    bad = noise(1.0)
    bad[5] = np.inf
    sf.write(broken[2], bad, 16000, subtype="FLOAT")
    sf.write(broken[3], noise(0.01), 16000, format="OGG", subtype="VORBIS")
    (root / "readme.txt").write_text("skipped: not an audio extension")
    return {"root": [root], "good": good, "broken": broken}


def test_folder_with_broken_files(model_dir, corpus, tmp_path, capsys):
    out_csv, out_json = tmp_path / "pred.csv", tmp_path / "pred.json"
    code = main(["predict", "--model", str(model_dir), str(corpus["root"][0]),
                 "--out", str(out_csv), "--batch-size", "3", "--workers", "1"])
    printed = capsys.readouterr().out
    assert code == 1
    for path in corpus["good"]:
        assert f"File: {path.name} | " in printed and "Predicted: " in printed
    assert "File: 1_00460_sedih_no_data.wav | True: sedih | Predicted: " in printed
    assert "File: 03-01-05-01-01-01-01.wav | True: marah | Predicted: " in printed
    # calm has no class: no true label, no tick
    calm_line = next(line for line in printed.splitlines() if "03-01-02-01-01-01-01" in line)
    assert "True:" not in calm_line and "✓" not in calm_line and "✗" not in calm_line
    summary = printed[printed.index(f"{len(corpus['good']) + len(corpus['broken'])} files, "
                                    f"{len(corpus['broken'])} failed:"):]
    for path in corpus["broken"]:
        assert str(path) in summary
    assert "readme.txt" not in printed

    frame = pd.read_csv(out_csv, keep_default_na=False)
    assert list(frame.columns) == CONTRACT + ["warning", "true", "correct"]
    assert len(frame) == len(corpus["good"]) + len(corpus["broken"])
    rows = frame.set_index("path")
    for path in corpus["good"]:
        row = rows.loc[str(path)]
        assert row["pred"] in LABELS and row["error"] == ""
        probs = np.array([float(row[f"p_{label}"]) for label in LABELS])
        assert abs(probs.sum() - 1) < 1e-4
        assert float(row["confidence"]) == pytest.approx(probs.max())
    for path in corpus["broken"]:
        assert rows.loc[str(path), "pred"] == "" and str(path) in rows.loc[str(path), "error"]
    assert rows.loc[str(corpus["good"][0]), "true"] == "sedih"
    assert rows.loc[str(corpus["good"][0]), "correct"] in ("True", "False")

    code = main(["predict", "--model", str(model_dir), str(corpus["root"][0]),
                 "--out", str(out_json), "--workers", "0"])
    assert code == 1
    capsys.readouterr()
    payload = json.loads(out_json.read_text())
    assert payload["n_files"] == len(frame) and payload["n_failed"] == len(corpus["broken"])
    records = {r["path"]: r for r in payload["files"]}
    for record in records.values():
        assert set(CONTRACT) <= set(record) and {"true", "correct", "windows"} <= set(record)
    long_windows = records[str(corpus["good"][-1])]["windows"]
    assert len(long_windows) == 10 and long_windows[-1]["end"] == pytest.approx(22.0)
    assert records[str(corpus["good"][0])]["windows"] == []
    # CSV and JSON agree on every prediction.
    for path, record in records.items():
        assert record["pred"] == rows.loc[path, "pred"]


def test_all_good_exits_zero_with_globs_and_windows_csv(model_dir, corpus, tmp_path, capsys):
    root = corpus["root"][0]
    windows = tmp_path / "windows.csv"
    code = main(["predict", "--model", str(model_dir), str(root / "1_*.wav"),
                 str(root / "long.wav"), "--windows-out", str(windows), "--window", "5",
                 "--hop", "5", "--threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "2 files, 0 failed" in printed
    assert "| 5 windows" in printed
    frame = pd.read_csv(windows)
    assert list(frame["start"]) == [0.0, 5.0, 10.0, 15.0, 17.0]
    assert (frame["path"] == str(root / "long.wav")).all()


def test_inputs_that_match_nothing_are_reported(model_dir, tmp_path, capsys):
    (tmp_path / "empty-folder").mkdir()
    code = main(["predict", "--model", str(model_dir), str(tmp_path / "missing.wav"),
                 str(tmp_path / "*.flac"), str(tmp_path / "empty-folder")])
    printed = capsys.readouterr().out
    assert code == 1
    assert "3 files, 3 failed:" in printed
    assert "file not found" in printed and "no file matches" in printed
    assert "holds no audio files" in printed


def test_bad_model_path_exits_two(tmp_path, capsys):
    code = main(["predict", "--model", str(tmp_path / "nope"), str(tmp_path)])
    assert code == 2
    assert "cannot load the model" in capsys.readouterr().err


def test_bad_window_settings_exit_two(model_dir, tmp_path, capsys):
    code = main(["predict", "--model", str(model_dir), str(tmp_path), "--window", "4",
                 "--hop", "6"])
    assert code == 2
    assert "hop" in capsys.readouterr().err
