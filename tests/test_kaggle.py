"""The Kaggle-layout index: names, columns, order, and validation that finds every problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.data.kaggle import (
    COLUMNS,
    KaggleName,
    load_kaggle,
    parse_kaggle_name,
    validate_kaggle,
)

TRAIN = [  # (id, label, sample rate)
    ("1_00001_marah_rendah.wav", "marah", 16000),
    ("1_00002_jijik_sedang.wav", "jijik", 44100),
    ("2_07442_takut_tinggi.wav", "takut", 48000),
    ("2_07502_bahagia_no_data.wav", "bahagia", 16000),
    ("1_00164_netral_tidak_ditentukan.wav", "netral", 48000),
    ("rekaman_sedih.wav", "sedih", 16000),
]
TEST = ["test1.wav", "test2.wav", "test3.wav"]


def write_wav(path: Path, sr: int = 16000, seconds: float = 0.25, channels: int = 1) -> None:
    t = np.arange(int(sr * seconds)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, sr)


def make_corpus(root: Path, train=TRAIN, test=TEST) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for file_id, _, sr in train:
        write_wav(root / "train" / file_id, sr)
    for file_id in test:
        write_wav(root / "test" / file_id)
    pd.DataFrame([(i, lab) for i, lab, _ in train], columns=["id", "label"]).to_csv(
        root / "train.csv", index=False)
    pd.DataFrame({"id": test}).to_csv(root / "test.csv", index=False)
    return root


@pytest.mark.parametrize("name, expected", [
    ("1_05420_sedih_no_data.wav", KaggleName(1, 5420, "sedih", "no_data")),
    ("2_07910_jijik_tinggi.wav", KaggleName(2, 7910, "jijik", "tinggi")),
    ("1_00003_marah_tidak_ditentukan.wav", KaggleName(1, 3, "marah", "tidak_ditentukan")),
    ("/some/dir/1_00004_takut_rendah.wav", KaggleName(1, 4, "takut", "rendah")),
])
def test_parse_good_names(name, expected):
    assert parse_kaggle_name(name) == expected


@pytest.mark.parametrize("name", [
    "test1.wav", "rekaman_sedih.wav", "1_00001_marah.wav", "1_00001_marah_rendah.mp3",
    "x_00001_marah_rendah.wav", "1_00001_marah_ekstrem.wav", "1_00001_marah_no_data.wav.bak",
])
def test_parse_bad_names_gives_none(name):
    assert parse_kaggle_name(name) is None


def test_load_train_columns_order_and_metadata(tmp_path):
    root = make_corpus(tmp_path / "kaggle")
    frame = load_kaggle(root, "train")
    assert list(frame.columns) == list(COLUMNS)
    assert frame["id"].tolist() == [i for i, _, _ in TRAIN]  # CSV order
    assert frame["label"].tolist() == [lab for _, lab, _ in TRAIN]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in frame["path"])
    assert str(frame["source"].dtype) == "Int64" and str(frame["file_id"].dtype) == "Int64"
    row = frame.set_index("id")
    assert row.loc["1_00164_netral_tidak_ditentukan.wav", "intensity"] == "tidak_ditentukan"
    assert row.loc["2_07502_bahagia_no_data.wav", "intensity"] == "no_data"
    assert row.loc["2_07502_bahagia_no_data.wav", "speaker"] == "ravdess-02"
    assert row.loc["2_07502_bahagia_no_data.wav", "gender"] == "female"
    assert row.loc["2_07502_bahagia_no_data.wav", "corpus"] == "ravdess"
    assert row.loc["2_07442_takut_tinggi.wav", "file_id"] == 7442
    # a name that does not parse keeps its row and label; metadata and speaker are unknown
    odd = row.loc["rekaman_sedih.wav"]
    assert odd["label"] == "sedih"
    assert odd["intensity"] is None and odd["name_emotion"] is None and pd.isna(odd["source"])
    assert odd["speaker"] is None and odd["gender"] is None


def test_load_test_split_has_no_labels_and_keeps_csv_order(tmp_path):
    root = make_corpus(tmp_path / "kaggle", test=["test10.wav", "test2.wav", "test1.wav"])
    frame = load_kaggle(root, "test")
    assert list(frame.columns) == list(COLUMNS)
    assert frame["id"].tolist() == ["test10.wav", "test2.wav", "test1.wav"]
    assert frame["label"].tolist() == [None, None, None]
    assert frame["speaker"].tolist() == [None, None, None]


def test_load_leaves_out_unusable_rows_and_logs(tmp_path, caplog):
    root = make_corpus(tmp_path / "kaggle")
    with open(root / "train.csv", "a") as fh:
        fh.write("1_00099_sedih_rendah.wav,sedih\n")  # no file
        fh.write("1_00001_marah_rendah.wav,marah\n")  # duplicate
    write_wav(root / "train" / "1_00098_sedih_rendah.wav")
    with open(root / "train.csv", "a") as fh:
        fh.write("1_00098_sedih_rendah.wav,sad\n")  # label outside the six
    frame = load_kaggle(root, "train")
    assert frame["id"].tolist() == [i for i, _, _ in TRAIN]
    assert "3 of 9 rows left out" in caplog.text


def test_validation_lists_every_problem_at_once(tmp_path):
    root = make_corpus(tmp_path / "kaggle")
    write_wav(root / "train" / "1_00010_sedih_rendah.wav")
    write_wav(root / "train" / "1_00011_takut_rendah.wav")
    write_wav(root / "train" / "1_00012_marah_rendah.wav")
    write_wav(root / "train" / "1_00013_marah_rendah.wav")
    write_wav(root / "test" / "test99.wav")
    with open(root / "train.csv", "a") as fh:
        fh.write("1_00010_sedih_rendah.wav,marah\n")   # name says sedih
        fh.write("1_00011_takut_rendah.wav,Takut\n")   # not one of the six
        fh.write("1_00077_jijik_rendah.wav,jijik\n")   # no file
        fh.write("1_00078_jijik_rendah.wav,jijik\n")   # no file
        fh.write("1_00012_marah_rendah.wav,marah\n")
        fh.write("1_00012_marah_rendah.wav,jijik\n")   # duplicate with another label
        # 1_00013 has a file but no row
    with open(root / "test.csv", "a") as fh:
        fh.write("test4.wav\n")                         # no file; test99.wav has no row

    problems = validate_kaggle(root)
    kinds = [p.kind for p in problems]
    assert sorted(set(kinds)) == sorted({
        "label_mismatch", "unknown_label", "missing_file", "duplicate_id", "orphan_file",
        "unparsed_name"})
    ids = {(p.kind, p.id) for p in problems}
    assert ("label_mismatch", "1_00010_sedih_rendah.wav") in ids
    assert ("unknown_label", "1_00011_takut_rendah.wav") in ids
    assert {("missing_file", "1_00077_jijik_rendah.wav"),
            ("missing_file", "1_00078_jijik_rendah.wav"), ("missing_file", "test4.wav")} <= ids
    assert ("duplicate_id", "1_00012_marah_rendah.wav") in ids
    assert {("orphan_file", "1_00013_marah_rendah.wav"), ("orphan_file", "test99.wav")} <= ids
    assert ("unparsed_name", "rekaman_sedih.wav") in ids
    assert kinds.count("missing_file") == 3 and kinds.count("duplicate_id") == 1
    # errors come first, and every problem says what to fix
    severities = [p.severity for p in problems]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert all(p.message and p.fix for p in problems)
    dup = next(p for p in problems if p.kind == "duplicate_id")
    assert "lines 12, 13" in dup.message and "'jijik'" in dup.message
    assert "line 9:" in next(p for p in problems if p.kind == "unknown_label").message


def test_validation_of_a_clean_corpus_only_warns_about_the_odd_name(tmp_path):
    root = make_corpus(tmp_path / "kaggle")
    problems = validate_kaggle(root)
    assert [(p.kind, p.severity) for p in problems] == [("unparsed_name", "warning")]


def test_missing_folder_is_one_problem_and_other_checks_still_run(tmp_path):
    root = make_corpus(tmp_path / "kaggle")
    for f in (root / "test").iterdir():
        f.unlink()
    (root / "test").rmdir()
    with open(root / "test.csv", "a") as fh:
        fh.write("test1.wav\n")
    kinds = [p.kind for p in validate_kaggle(root)]
    assert kinds.count("missing_folder") == 1
    assert "missing_file" not in kinds and "duplicate_id" in kinds
    with pytest.raises(FileNotFoundError, match="test/ not found"):
        load_kaggle(root, "test")


def test_missing_root_and_csv_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_kaggle(tmp_path / "nowhere")
    text = str(err.value)
    assert "nowhere" in text and "train.csv" in text
    assert "speech-emotion-recognition-dl-genap-2024-2025" in text and "Getting the data" in text

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train\.csv not found"):
        load_kaggle(tmp_path / "empty", "train")
    with pytest.raises(FileNotFoundError, match="neither train.csv nor test.csv"):
        validate_kaggle(tmp_path / "empty")


def test_nested_download_is_pointed_at(tmp_path):
    make_corpus(tmp_path / "download" / "inner")
    with pytest.raises(FileNotFoundError, match="did you mean ROOT=.*inner"):
        load_kaggle(tmp_path / "download")


def test_csv_without_label_column_is_a_clear_error(tmp_path):
    root = make_corpus(tmp_path / "kaggle")
    pd.DataFrame({"id": [i for i, _, _ in TRAIN]}).to_csv(root / "train.csv", index=False)
    with pytest.raises(ValueError, match="missing \\['label'\\]"):
        load_kaggle(root, "train")
    assert [p.kind for p in validate_kaggle(root)] == ["bad_csv"]


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_kaggle(make_corpus(tmp_path / "k"), "valid")
