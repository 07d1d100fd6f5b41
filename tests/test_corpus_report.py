"""``ser inspect``: exact counts on both layouts, every problem listed, figure written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.cli import main as cli_main
from ser.corpus_report import AUDIO_COLUMNS, audio_table, inspect_corpus

# (id, label, sample rate, seconds, channels)
TRAIN = [
    ("1_00001_marah_rendah.wav", "marah", 16000, 0.5, 1),
    ("1_00002_marah_sedang.wav", "marah", 16000, 1.0, 1),
    ("2_07442_marah_tinggi.wav", "marah", 48000, 2.0, 1),
    ("1_00003_jijik_no_data.wav", "jijik", 44100, 1.5, 2),
    ("1_00004_jijik_tidak_ditentukan.wav", "jijik", 16000, 0.75, 1),
    ("2_07443_takut_tinggi.wav", "takut", 48000, 1.25, 1),
    ("1_00005_bahagia_rendah.wav", "bahagia", 16000, 1.0, 1),
    ("1_00006_netral_no_data.wav", "netral", 44100, 0.5, 1),
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_wav(path: Path, sr: int = 16000, seconds: float = 0.5, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    data = (0.1 * rng.standard_normal((int(sr * seconds), channels))).astype(np.float32)
    sf.write(path, data, sr)


def make_kaggle(root: Path) -> Path:
    for file_id, _, sr, seconds, channels in TRAIN:
        write_wav(root / "train" / file_id, sr, seconds, channels)
    for i in (1, 2):
        write_wav(root / "test" / f"test{i}.wav", 16000, 1.0)
    pd.DataFrame([(t[0], t[1]) for t in TRAIN], columns=["id", "label"]).to_csv(
        root / "train.csv", index=False)
    pd.DataFrame({"id": ["test1.wav", "test2.wav"]}).to_csv(root / "test.csv", index=False)
    return root


def make_ravdess(root: Path) -> Path:
    """Actors 1 and 2: neutral, calm, happy, surprised (normal) and angry (strong), 48 kHz."""
    for actor in (1, 2):
        for emotion, intensity in ((1, 1), (2, 1), (3, 1), (8, 1), (5, 2)):
            file = f"03-01-{emotion:02d}-{intensity:02d}-01-01-{actor:02d}.wav"
            write_wav(root / f"Actor_{actor:02d}" / file, 48000, 0.5)
    return root


def row(text: str, key: str, count: int, pct: str) -> bool:
    """A table line 'key  count  pct%' is in the text."""
    pattern = rf"^\s+{re.escape(key)}\s+{count}\s+{re.escape(pct)}%$"
    return re.search(pattern, text, re.M) is not None


def test_kaggle_report_has_exact_counts(tmp_path):
    root = make_kaggle(tmp_path / "kaggle")
    report = inspect_corpus(root)
    text = report.to_text()
    assert not report.fatal
    assert "Layout: Kaggle" in text
    assert "train: 8 rows in train.csv, 8 files indexed" in text
    assert "test: 2 rows in test.csv, 2 files indexed" in text
    for label, count, pct in [("marah", 3, "37.50"), ("jijik", 2, "25.00"),
                              ("takut", 1, "12.50"), ("bahagia", 1, "12.50"),
                              ("netral", 1, "12.50"), ("sedih", 0, "0.00")]:
        assert row(text, label, count, pct), label
    for intensity, count, pct in [("rendah", 2, "25.00"), ("sedang", 1, "12.50"),
                                  ("tinggi", 2, "25.00"), ("no_data", 2, "25.00"),
                                  ("tidak_ditentukan", 1, "12.50")]:
        assert row(text, intensity, count, pct), intensity
    train = report.parts[0]
    assert train.audio.sample_rates == {16000: 4, 44100: 2, 48000: 2}
    assert train.audio.channels == {1: 7, 2: 1}
    assert row(text, "16000 Hz", 4, "50.00") and row(text, "44100 Hz", 2, "25.00")
    assert row(text, "1 (mono)", 7, "87.50") and row(text, "2 (stereo)", 1, "12.50")
    assert "duration: min 0.50 s, median 1.00 s, max 2.00 s, total 8.5 s" in text
    assert "Problems: none found" in text
    assert "Result: usable — 10 files" in text


def test_kaggle_problems_are_all_listed_and_unreadable_files_do_not_stop_the_report(tmp_path):
    root = make_kaggle(tmp_path / "kaggle")
    (root / "train" / "1_00007_sedih_rendah.wav").write_text("this is not audio\n")
    write_wav(root / "train" / "1_00008_sedih_rendah.wav", 16000, 0.005)  # 80 samples
    with open(root / "train.csv", "a") as fh:
        fh.write("1_00007_sedih_rendah.wav,sedih\n1_00008_sedih_rendah.wav,sedih\n")
        fh.write("1_00009_sedih_rendah.wav,sedih\n")  # no file
        fh.write("1_00001_marah_rendah.wav,marah\n")  # duplicate (same label: first row used)
    write_wav(root / "train" / "extra.wav")  # no row
    report = inspect_corpus(root)
    text = report.to_text()
    assert not report.fatal
    kinds = {p.kind for p in report.problems}
    assert kinds == {"unreadable_audio", "too_short", "missing_file", "duplicate_id", "orphan_file"}
    assert "1_00007_sedih_rendah.wav: not an audio file" in text
    assert "1_00009_sedih_rendah.wav" in text and "extra.wav" in text and "fix:" in text
    assert "Problems: 5 (4 errors, 1 warning)" in text
    # the unreadable file is counted as indexed but not readable; the rest are still described
    assert "train: 12 rows in train.csv, 10 files indexed (2 left out, see problems)" in text
    assert "readable headers: 9 of 10" in text
    assert row(text, "sedih", 2, "20.00")
    assert report.parts[0].audio.sample_rates == {16000: 5, 44100: 2, 48000: 2}


def test_ravdess_report_counts_every_emotion_and_mapped_class(tmp_path):
    root = make_ravdess(tmp_path / "rav")
    write_wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav", 48000, 0.5)  # song
    (root / "Actor_02" / "notes.wav").write_text("not audio, not a RAVDESS name")
    report = inspect_corpus(root)
    text = report.to_text()
    assert not report.fatal
    assert "Layout: RAVDESS" in text
    assert "speech: 10 files from 2 actors (1 male, 1 female)" in text
    assert "skipped 1 song file, 1 file with unparsed names" in text
    for key, count, pct in [("neutral -> netral", 2, "20.00"), ("calm -> no class", 2, "20.00"),
                            ("happy -> bahagia", 2, "20.00"), ("surprised -> no class", 2, "20.00"),
                            ("angry -> marah", 2, "20.00"), ("sad -> sedih", 0, "0.00"),
                            ("netral", 2, "20.00"), ("sedih", 0, "0.00"),
                            ("(no class: calm, surprised)", 4, "40.00"),
                            ("normal", 8, "80.00"), ("strong", 2, "20.00"),
                            ("actor01 (male)", 5, "50.00"), ("actor02 (female)", 5, "50.00"),
                            ("48000 Hz", 10, "100.00")]:
        assert row(text, key, count, pct), key
    kinds = sorted(p.kind for p in report.problems)
    assert kinds == ["song_files", "unparsed_name"]
    assert "notes.wav" in text


def test_figure_is_a_png_in_root_or_where_asked(tmp_path):
    root = make_kaggle(tmp_path / "kaggle")
    report = inspect_corpus(root)
    assert report.figure == (root / "class_distribution.png").resolve()
    data = report.figure.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert f"written to {report.figure}" in report.to_text()

    target = tmp_path / "figs" / "dist.png"
    report = inspect_corpus(make_ravdess(tmp_path / "rav"), figure=target)
    assert report.figure == target.resolve() and target.read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "rav" / "class_distribution.png").exists()


def test_figure_falls_back_to_current_folder_when_root_is_not_writable(tmp_path, monkeypatch):
    root = make_kaggle(tmp_path / "kaggle")
    (root / "class_distribution.png").mkdir()  # writing there fails, even as root
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    report = inspect_corpus(root)
    assert report.figure == (cwd / "class_distribution.png").resolve()
    assert report.figure.read_bytes().startswith(PNG_MAGIC)
    assert "wrote the figure to the current folder instead" in report.to_text()


def test_unrecognised_and_missing_roots_are_fatal_with_the_expected_layouts(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.wav").write_bytes(b"")
    for root in (tmp_path / "other", tmp_path / "missing"):
        report = inspect_corpus(root)
        text = report.to_text()
        assert report.fatal and "UNUSABLE" in text
        assert "train.csv" in text and "Actor_01" in text


def test_corpus_without_a_readable_file_is_fatal(tmp_path):
    root = tmp_path / "broken"
    (root / "train").mkdir(parents=True)
    for i in range(3):
        (root / "train" / f"1_0000{i}_marah_rendah.wav").write_text("garbage")
    pd.DataFrame({"id": [f"1_0000{i}_marah_rendah.wav" for i in range(3)],
                  "label": ["marah"] * 3}).to_csv(root / "train.csv", index=False)
    report = inspect_corpus(root)
    assert report.fatal
    assert [p.kind for p in report.problems] == ["unreadable_audio"] * 3 + ["missing_split"]
    assert "none of the 3 indexed files has a readable audio header" in report.to_text()


def test_cli_inspect_returns_0_for_a_usable_corpus_and_1_for_an_unusable_one(tmp_path, capsys):
    root = make_kaggle(tmp_path / "kaggle")
    assert cli_main(["inspect", str(root)]) == 0
    assert "Layout: Kaggle" in capsys.readouterr().out
    assert cli_main(["inspect", str(tmp_path / "missing")]) == 1


def test_python_dash_m_ser_cli_inspect_end_to_end(tmp_path):
    root = make_ravdess(tmp_path / "rav")
    result = subprocess.run([sys.executable, "-m", "ser.cli", "inspect", str(root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "speech: 10 files from 2 actors" in result.stdout
    assert (root / "class_distribution.png").is_file()


@pytest.mark.parametrize("problems", [60])
def test_long_problem_lists_are_capped_per_kind_in_text_but_kept_in_full(tmp_path, problems):
    root = make_kaggle(tmp_path / "kaggle")
    with open(root / "train.csv", "a") as fh:
        for i in range(problems):
            fh.write(f"1_{10000 + i}_sedih_rendah.wav,sedih\n")
    report = inspect_corpus(root)
    assert sum(p.kind == "missing_file" for p in report.problems) == problems
    assert f"... and {problems - 50} more missing_file problems not shown" in report.to_text()
    assert report.to_text(max_per_kind=None).count("missing_file:") == problems


def test_audio_table_has_one_row_per_file_in_order_with_header_facts_or_the_error(tmp_path):
    stereo, mono = tmp_path / "b_stereo.wav", tmp_path / "a_mono.wav"
    write_wav(stereo, sr=44100, seconds=1.5, channels=2)
    write_wav(mono, sr=16000, seconds=0.5)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    paths = [str(stereo), str(tmp_path / "missing.wav"), str(mono), str(broken)]

    table = audio_table(paths)

    assert list(table.columns) == list(AUDIO_COLUMNS)
    assert table["path"].tolist() == paths
    assert table["sample_rate"].tolist()[::2] == [44100, 16000]
    assert table["channels"].tolist()[::2] == [2, 1]
    assert table["frames"].tolist()[::2] == [66150, 8000]
    assert table["duration"].tolist()[::2] == pytest.approx([1.5, 0.5])
    assert table.loc[[0, 2], "error"].isna().all()
    assert "missing" in table.loc[1, "error"] and "not_audio" in table.loc[3, "error"]
    assert table.loc[[1, 3], ["sample_rate", "channels", "frames", "duration"]].isna().all().all()
    assert str(table["sample_rate"].dtype) == "Int64"
    assert audio_table([]).empty
