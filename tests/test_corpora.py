"""The corpus layer: layouts recognised the same way everywhere, files listed, headers read."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from ser.audio import AudioError
from ser.data.corpora import corpus_files, detect_layout, header_scan, read_headers


def test_corpus_layouts_are_recognised(tiny_corpora, tmp_path):
    layout, files = corpus_files(tiny_corpora["indonesian"])
    assert layout == "kaggle" and any("/test/" in f for f in files) and any(
        "/train/" in f for f in files)
    layout, files = corpus_files(tiny_corpora["indonesian"], training=True)
    assert layout == "kaggle" and files and not any("/test/" in f for f in files)
    layout, files = corpus_files(tiny_corpora["ravdess"])
    assert layout == "ravdess" and len(files) == 120
    with pytest.raises(FileNotFoundError, match="no audio files"):
        corpus_files(tmp_path)


def test_a_test_csv_alone_is_a_kaggle_root_to_inspect_but_not_one_to_list(tmp_path):
    """``ser inspect`` describes a folder with only test.csv; the audit lists such a folder's
    audio files as a plain folder (it has no training files to read through train.csv)."""
    (tmp_path / "test.csv").write_text("id\na.wav\n")
    (tmp_path / "test").mkdir()
    sf.write(tmp_path / "test" / "a.wav", np.zeros(1600, np.float32), 16000)
    assert detect_layout(tmp_path) == "kaggle"
    assert detect_layout(tmp_path, train_csv_only=True) is None
    assert corpus_files(tmp_path) == ("folder", [str(tmp_path.resolve() / "test" / "a.wav")])
    assert detect_layout(tmp_path / "nope") is None


def test_headers_are_read_in_order_and_a_bad_one_is_a_result(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(8000, np.float32), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    paths = [str(good), str(bad), str(good)]
    infos = read_headers(paths, workers=2)
    assert [type(i).__name__ for i in infos] == ["AudioInfo", "AudioError", "AudioInfo"]
    assert isinstance(infos[1], AudioError) and str(bad) in str(infos[1])
    durations, warnings = header_scan(paths)
    assert durations[0] == durations[2] == pytest.approx(0.5)
    assert math.isnan(durations[1]) and warnings == {}
    assert read_headers([]) == [] and header_scan([])[0].shape == (0,)
