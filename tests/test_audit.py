"""Leakage audit: copies of a clip are found whatever was done to them; other takes never are."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from ser.audit import audit
from ser.cli import main

extract_module = importlib.import_module("ser.audit.extract")


def _take(root: Path, emotion: int, statement: int, repetition: int, actor: int = 1) -> Path:
    return root / f"Actor_{actor:02d}" / (
        f"03-01-{emotion:02d}-01-{statement:02d}-{repetition:02d}-{actor:02d}.wav")


def _variants(src: Path, out: Path) -> dict[str, Path]:
    """The clip as another corpus might hold it: each transform the audit must see through."""
    out.mkdir(parents=True, exist_ok=True)
    x, sr = sf.read(src, dtype="float64")
    files: dict[str, tuple[np.ndarray, int, dict, str]] = {}
    for rate in (16000, 22050, 44100, 48000):
        files[f"rate{rate}"] = (soxr.resample(x, sr, rate), rate, {}, "wav")
    files["gain-6dB"] = (x * 10 ** (-6 / 20), sr, {}, "wav")
    files["gain+6dB"] = (np.clip(x * 10 ** (6 / 20), -1, 1), sr, {}, "wav")
    files["flac"] = (x, sr, {"format": "FLAC"}, "flac")
    files["ogg"] = (x, sr, {"format": "OGG", "subtype": "VORBIS"}, "ogg")
    files["mp3"] = (x, sr, {"format": "MP3", "subtype": "MPEG_LAYER_III"}, "mp3")
    files["pcm24"] = (x, sr, {"subtype": "PCM_24"}, "wav")
    files["float"] = (x, sr, {"subtype": "FLOAT"}, "wav")
    files["stereo"] = (np.stack([x, 0.8 * x], axis=1), sr, {}, "wav")
    pad = np.zeros(int(0.5 * sr))
    files["silence+0.5s"] = (np.concatenate([pad, x, pad]), sr, {}, "wav")
    cut = int(0.3 * sr)
    files["trim-0.3s"] = (x[cut:-cut], sr, {}, "wav")
    paths = {}
    for name, (data, rate, kw, ext) in files.items():
        paths[name] = out / f"{name}.{ext}"
        sf.write(paths[name], data, rate, **kw)
    return paths


@pytest.fixture(scope="module")
def planted(tiny_corpora, tmp_path_factory) -> dict:
    """Train: 14 transformed copies of one take + the first take of 6 more clips; eval: the
    original, its other repetition, and the second takes of those 6 (hard negatives)."""
    rav = tiny_corpora["ravdess"]
    tmp = tmp_path_factory.mktemp("audit")
    original = _take(rav, 5, 1, 1)
    variants = _variants(original, tmp / "copies")
    pairs = [(e, s) for e in (1, 3, 4) for s in (1, 2)]
    firsts = [_take(rav, e, s, 1, actor=2) for e, s in pairs]
    seconds = [_take(rav, e, s, 2, actor=2) for e, s in pairs]
    result = audit([*variants.values(), *firsts], [original, _take(rav, 5, 1, 2), *seconds],
                   cache_dir=tmp / "cache", workers=1)
    return {"result": result, "original": original, "variants": variants, "tmp": tmp,
            "other_take": _take(rav, 5, 1, 2), "seconds": seconds}


def test_every_transformed_copy_is_found(planted):
    m = planted["result"].matches
    found = set(m.loc[m["eval_path"] == str(planted["original"]), "train_path"])
    missing = [name for name, p in planted["variants"].items() if str(p) not in found]
    assert not missing, f"copies not found: {missing}\n{m}"
    assert (m["score"] >= planted["result"].threshold).all()


def test_other_takes_of_the_same_sentence_are_never_matched(planted):
    m = planted["result"].matches
    wrong = m[m["eval_path"] != str(planted["original"])]
    assert wrong.empty, f"different takes matched:\n{wrong}"
    assert planted["result"].summary() == "1 of 8 evaluation clips found in the training data"


def test_second_audit_takes_every_fingerprint_from_the_cache(planted, monkeypatch):
    decoded = []
    real = extract_module.load_audio
    monkeypatch.setattr(extract_module, "load_audio",
                        lambda *a, **k: decoded.append(k.get("name")) or real(*a, **k))
    first = planted["result"]
    again = audit(first.matches["train_path"].unique(), [planted["original"]],
                  cache_dir=planted["tmp"] / "cache", workers=1)
    assert decoded == []
    assert again.computed == 0 and again.cache_hits == len(planted["variants"]) + 1
    pd.testing.assert_frame_equal(again.matches, first.matches)
    # a new cache folder decodes again: the hits above came from the cache, not from memory
    audit([planted["original"]], [planted["original"]], cache_dir=planted["tmp"] / "new", workers=1)
    assert decoded == [str(planted["original"])]


def test_cli_reports_matches_lists_broken_files_and_writes_csv(tiny_corpora, tmp_path, capsys):
    rav = tiny_corpora["ravdess"]
    kaggle = tmp_path / "kaggle"
    shutil.copytree(tiny_corpora["indonesian"], kaggle)
    # one training file replaced by a resampled RAVDESS take, under its Kaggle name
    victim = sorted((kaggle / "train").glob("2_*.wav"))[0]
    x, sr = sf.read(_take(rav, 3, 2, 1), dtype="float64")
    victim.unlink()
    sf.write(victim, soxr.resample(x, sr, 16000), 16000)
    evals = tmp_path / "eval"
    (evals / "sub").mkdir(parents=True)
    for e, s, r in ((3, 2, 1), (3, 2, 2), (4, 1, 1)):
        shutil.copy(_take(rav, e, s, r), evals / "sub")
    (evals / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    (evals / "empty.flac").write_bytes(b"")
    out = tmp_path / "out" / "matches.csv"

    status = main(["audit", "--train", str(kaggle), "--eval", str(evals), "--out", str(out),
                   "--cache-dir", str(tmp_path / "cache"), "--workers", "1"])

    text = capsys.readouterr().out
    assert status == 0
    assert text.strip().splitlines()[-1] == "1 of 5 evaluation clips found in the training data"
    assert f"failed: {evals / 'broken.wav'}:" in text and f"failed: {evals / 'empty.flac'}:" in text
    table = pd.read_csv(out)
    assert list(table.columns) == ["eval_path", "train_path", "score", "coarse", "part"]
    assert len(table) == 1
    assert table.loc[0, "eval_path"].endswith("03-01-03-01-02-01-01.wav")
    assert table.loc[0, "train_path"] == str(victim)


def test_cli_names_an_unusable_folder(tmp_path, capsys):
    status = main(["audit", "--train", str(tmp_path / "nope"), "--eval", str(tmp_path)])
    assert status == 2
    assert "does not exist" in capsys.readouterr().out


def test_cache_lives_under_ser_cache_and_a_damaged_entry_is_recomputed(tiny_corpora):
    clip = _take(tiny_corpora["ravdess"], 6, 2, 1)
    first = audit([clip], [clip], workers=1)  # default cache folder: $SER_CACHE/fingerprints
    entries = list((Path(os.environ["SER_CACHE"]) / "fingerprints").rglob("*.npy"))
    assert first.summary() == "1 of 1 evaluation clips found in the training data"
    assert len(entries) >= 1
    for entry in entries:
        entry.write_bytes(b"not a fingerprint")
    again = audit([clip], [clip], workers=1)
    assert again.computed == 1 and again.cache_hits == 0
    assert again.summary() == first.summary()


def _run_with_planted_split(tiny_corpora, tmp_path, columns: str) -> dict:
    """A training run over a Kaggle copy where one RAVDESS take sits in a train row, another in
    a val row and a third in test/ (the Kaggle test set)."""
    rav = tiny_corpora["ravdess"]
    kaggle = tmp_path / "kaggle"
    shutil.copytree(tiny_corpora["indonesian"], kaggle)
    ids = pd.read_csv(kaggle / "train.csv")["id"].tolist()
    planted = {"train": (ids[0], _take(rav, 3, 1, 1)), "val": (ids[1], _take(rav, 4, 2, 1))}
    for file, src in planted.values():
        x, sr = sf.read(src, dtype="float64")
        sf.write(kaggle / "train" / file, soxr.resample(x, sr, 16000), 16000)
    test_id = pd.read_csv(kaggle / "test.csv")["id"].tolist()[0]
    shutil.copy(_take(rav, 5, 2, 2), kaggle / "test" / test_id)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data:\n  root: {kaggle}\n")
    rows = [(f, "val" if f == ids[1] else ("test" if i % 7 == 3 else "train")) for i, f in
            enumerate(ids)]
    split = pd.DataFrame(rows, columns=["file", "split"])
    if columns == "issue12":
        split["label"], split["speaker"], split["gender"], split["corpus"] = "marah", "x", "m", "c"
    split.to_csv(run / "split.csv", index=False)
    evals = tmp_path / "eval"
    evals.mkdir()
    for e, s_, r in ((3, 1, 1), (4, 2, 1), (5, 2, 2), (6, 1, 1)):
        shutil.copy(_take(rav, e, s_, r), evals)
    return {"run": run, "kaggle": kaggle, "evals": evals, "train_file": ids[0]}


@pytest.mark.parametrize("columns", ["file,split", "issue12"])
def test_split_csv_audits_train_rows_and_reports_held_out_apart(tiny_corpora, tmp_path, capsys,
                                                                columns):
    setup = _run_with_planted_split(tiny_corpora, tmp_path, columns)
    out = tmp_path / "matches.csv"
    status = main(["audit", "--train", str(setup["run"] / "split.csv"), "--eval",
                   str(setup["evals"]), "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                   "--workers", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 0
    assert lines[-1] == "1 of 4 evaluation clips found in the training data"
    assert lines[-2] == ("also found in held-out data (not trained on, not leakage): 2 of 4 "
                         "evaluation clips")
    table = pd.read_csv(out)
    leak = table[table["part"] == "train"]
    assert leak["eval_path"].str.endswith("03-01-03-01-01-01-01.wav").tolist() == [True]
    assert leak["train_path"].tolist() == [str(setup["kaggle"] / "train" / setup["train_file"])]
    assert sorted(table.loc[table["part"] != "train", "part"]) == ["kaggle-test", "val"]


def test_a_held_out_file_is_not_an_overlap_with_itself(tiny_corpora, tmp_path):
    clip = _take(tiny_corpora["ravdess"], 6, 2, 1)
    copy = tmp_path / "copy.flac"
    x, sr = sf.read(clip, dtype="float64")
    sf.write(copy, x, sr, format="FLAC")
    # evaluating the validation split itself: each val clip is listed as held out too
    result = audit([], [clip], held_out={str(clip): "val", str(copy): "val"},
                   cache_dir=tmp_path / "c", workers=1)
    assert result.leaked == [] and result.in_held_out == [str(clip)]
    assert result.matches["train_path"].tolist() == [str(copy)]
