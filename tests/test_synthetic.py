"""The synthetic corpora: layouts and names, determinism, formats, and prosody a model can learn."""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import load_audio
from ser.data.synthetic import MARKER, write_synthetic_corpora
from ser.labels import LABELS, RAVDESS_EMOTIONS

# Own patterns, independent of ser.data.kaggle / ser.data.ravdess, so that the two sides check
# each other.
KAGGLE_NAME = re.compile(
    r"^(?P<source>[12])_(?P<id>\d{5})_(?P<label>[a-z]+)_"
    r"(?P<intensity>rendah|sedang|tinggi|no_data|tidak_ditentukan)\.wav$")
RAVDESS_NAME = re.compile(r"^03-01-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.wav$")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_synthetic_corpora(tmp_path_factory.mktemp("synth") / "out", seed=0, size="tiny")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _f0(x: np.ndarray, sr: int = 16000) -> float:
    """Median f0 of the loud, clearly periodic frames, by autocorrelation."""
    frame, hop = 800, 160
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
    rms = np.sqrt((frames**2).mean(axis=1))
    frames = frames[rms > 0.3 * rms.max()]
    frames = frames - frames.mean(axis=1, keepdims=True)
    window = np.hanning(frame)

    def autocorr(v: np.ndarray) -> np.ndarray:
        return np.fft.irfft(np.abs(np.fft.rfft(v, 2 * frame)) ** 2, 2 * frame)[..., :frame]

    r = autocorr(frames * window) / autocorr(window)  # Boersma (1993): undo the window's decay
    lo, hi = sr // 500, sr // 60
    lag = lo + r[:, lo:hi].argmax(axis=1)
    periodic = r[np.arange(len(r)), lag] > 0.5 * r[:, 0]
    return float(np.median(sr / lag[periodic]))


def _rms_db(x: np.ndarray) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    rms = np.sqrt((frames**2).mean(axis=1))
    return float(20 * np.log10(rms[rms > 0.3 * rms.max()].mean()))


def test_kaggle_layout_names_and_labels(corpus: dict[str, Path]) -> None:
    root = corpus["indonesian"]
    train = _read_csv(root / "train.csv")
    assert list(train[0]) == ["id", "label"]
    assert {row["label"] for row in train} == set(LABELS)
    assert len({row["id"] for row in train}) == len(train)
    for row in train:
        m = KAGGLE_NAME.match(row["id"])
        assert m, row["id"]
        assert m["label"] == row["label"]
        assert (root / "train" / row["id"]).is_file()
        file_id = int(m["id"])
        assert (file_id < 7442) == (m["source"] == "1"), row["id"]
        if m["label"] == "netral":
            assert m["intensity"] in ("no_data", "sedang"), row["id"]
    # every file has a row, and the real data's one odd intensity word is there
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(r["id"] for r in train)
    assert sum(r["id"].endswith("_tidak_ditentukan.wav") for r in train) == 1

    test = _read_csv(root / "test.csv")
    assert list(test[0]) == ["id"]
    assert [r["id"] for r in test] == [f"test{i}.wav" for i in range(1, len(test) + 1)]
    assert sorted(p.name for p in (root / "test").iterdir()) == sorted(r["id"] for r in test)


def test_ravdess_layout_is_the_real_one(corpus: dict[str, Path]) -> None:
    root = corpus["ravdess"]
    assert sorted(p.name for p in root.iterdir()) == ["Actor_01", "Actor_02"]
    for actor_dir in root.iterdir():
        names = sorted(p.name for p in actor_dir.iterdir())
        assert len(names) == 60
        parsed = [RAVDESS_NAME.match(n) for n in names]
        assert all(parsed), names
        assert {int(m[5]) for m in parsed} == {int(actor_dir.name[-2:])}
        per_emotion = Counter(int(m[1]) for m in parsed)
        assert per_emotion == {1: 4, **{e: 8 for e in range(2, 9)}}
        assert not [n for n, m in zip(names, parsed) if m[1] == "01" and m[2] == "02"]


def test_formats_like_the_real_data(corpus: dict[str, Path]) -> None:
    kaggle = [sf.info(str(p)) for p in sorted(corpus["indonesian"].rglob("*.wav"))]
    rates = Counter(i.samplerate for i in kaggle)
    assert {16000, 48000, 44100} <= set(rates)
    assert any(i.channels == 2 for i in kaggle)
    assert {i.subtype for i in kaggle} == {"PCM_16"}
    for p in (corpus["indonesian"] / "train").iterdir():
        m = KAGGLE_NAME.match(p.name)
        info = sf.info(str(p))
        assert info.samplerate in ((16000, 44100) if m["source"] == "1" else (48000, 44100))
    rav = [sf.info(str(p)) for p in sorted(corpus["ravdess"].rglob("*.wav"))]
    assert {(i.samplerate, i.channels, i.subtype) for i in rav} == {(48000, 1, "PCM_16")}
    durations = [i.duration for i in kaggle + rav]
    assert min(durations) > 1.0 and max(durations) < 6.0


def test_every_file_loads(corpus: dict[str, Path]) -> None:
    paths = sorted(corpus["indonesian"].rglob("*.wav")) + sorted(corpus["ravdess"].rglob("*.wav"))
    for path in paths:
        x = load_audio(path)
        assert x.size > 16000 and np.abs(x).max() > 0.01, path


def test_repetitions_are_different_takes(corpus: dict[str, Path]) -> None:
    actor = corpus["ravdess"] / "Actor_01"
    for first in sorted(actor.glob("03-01-*-*-*-01-01.wav")):
        second = first.with_name(first.name.replace("-01-01.wav", "-02-01.wav"))
        a, b = load_audio(first), load_audio(second)
        n = min(a.size, b.size)
        assert a.size != b.size or not np.allclose(a[:n], b[:n], atol=1e-3), first.name


def test_emotions_differ_in_the_expected_direction(corpus: dict[str, Path]) -> None:
    """Anger is higher and louder than sadness, per RAVDESS actor and across the Kaggle set."""
    for actor_dir in sorted(corpus["ravdess"].iterdir()):
        f0 = {code: np.mean([_f0(load_audio(p)) for p in actor_dir.glob(f"03-01-{code}-*.wav")])
              for code in ("05", "04", "01")}  # angry, sad, neutral
        assert f0["05"] > f0["01"] > f0["04"], (actor_dir.name, f0)
    train = _read_csv(corpus["indonesian"] / "train.csv")
    loud = {label: np.median([_rms_db(load_audio(corpus["indonesian"] / "train" / r["id"]))
                              for r in train if r["label"] == label])
            for label in ("marah", "sedih")}
    assert loud["marah"] > loud["sedih"] + 6.0, loud
    assert RAVDESS_EMOTIONS[5][1] == "marah" and RAVDESS_EMOTIONS[4][1] == "sedih"


def test_same_seed_same_bytes_any_workers_other_seed_differs(corpus: dict[str, Path],
                                                             tmp_path: Path) -> None:
    first = corpus["indonesian"].parent
    again = write_synthetic_corpora(tmp_path / "again", seed=0, size="tiny", workers=2)
    assert _tree_bytes(again["indonesian"].parent) == _tree_bytes(first)

    other = write_synthetic_corpora(tmp_path / "other", seed=1, size="tiny")
    a, b = _tree_bytes(first), _tree_bytes(other["indonesian"].parent)
    ravdess = [k for k in a if k.startswith("ravdess/")]
    assert ravdess and set(ravdess) <= set(b)  # the RAVDESS names are fixed by its layout ...
    assert all(a[k] != b[k] for k in ravdess)  # ... their sound is not
    assert a["indonesian/train.csv"] != b["indonesian/train.csv"]


def test_second_call_is_skipped_and_an_incomplete_corpus_rewritten(corpus: dict[str, Path]) -> None:
    out = corpus["indonesian"].parent
    before = _tree_bytes(out)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    started = time.perf_counter()
    assert write_synthetic_corpora(out, seed=0, size="tiny") == corpus
    assert time.perf_counter() - started < 1.0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == stamp

    # a deleted file makes the corpus incomplete: it is all written again, to the same bytes
    # (this leaves the shared corpus as it was)
    victim = next((out / "ravdess" / "Actor_01").iterdir())
    victim.unlink()
    write_synthetic_corpora(out, seed=0, size="tiny")
    assert _tree_bytes(out) == before
    assert '"seed": 0' in (out / MARKER).read_text()


def test_refuses_to_overwrite_folders_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "ravdess" / "Actor_01").mkdir(parents=True)
    (tmp_path / "ravdess" / "Actor_01" / "real.wav").write_bytes(b"RIFF")
    with pytest.raises(FileExistsError, match="not written by write_synthetic_corpora"):
        write_synthetic_corpora(tmp_path, size="tiny")
    assert (tmp_path / "ravdess" / "Actor_01" / "real.wav").is_file()


def test_unknown_size_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny, demo, full"):
        write_synthetic_corpora(tmp_path, size="huge")


def test_speakers_follow_the_file_names_and_sexes(corpus: dict[str, Path]) -> None:
    """Each Kaggle file is voiced by the speaker its name maps to (CREMA-D actor / RAVDESS
    actor), and the voices differ by sex as the speakers do."""
    from ser.data.speakers import kaggle_speaker
    from ser.data.synthetic.layouts import kaggle_jobs

    specs, train, _ = kaggle_jobs(0, "tiny")
    by_path = {s.relpath: s for s in specs}
    pitch = {"male": [], "female": []}
    for item in train:
        spec = by_path[f"train/{item.name}"]
        who = kaggle_speaker(item.source, item.file_id)
        assert (spec.speaker, spec.gender) == (who.speaker, who.gender), item.name
        if item.label == "netral" or item.intensity == "rendah":
            continue
        pitch[who.gender].append(_f0(load_audio(corpus["indonesian"] / "train" / item.name)))
    assert pitch["male"] and pitch["female"]
    assert np.median(pitch["male"]) < np.median(pitch["female"]), pitch


@pytest.mark.parametrize("size", ["tiny", "demo"])
def test_enough_speakers_of_both_sexes_for_a_speaker_split(size: str) -> None:
    from ser.data.synthetic.layouts import kaggle_jobs, ravdess_jobs

    specs, _, _ = kaggle_jobs(0, size)
    kaggle = {(s.speaker, s.gender) for s in specs}
    ravdess = {(s.speaker, s.gender) for s in ravdess_jobs(size)}
    need = 10 if size == "tiny" else 20
    assert len(kaggle) >= need and {g for _, g in kaggle} == {"male", "female"}
    if size == "demo":
        assert len(ravdess) >= need and {g for _, g in ravdess} == {"male", "female"}


def test_concurrent_writers_on_a_fresh_folder_both_succeed(tmp_path: Path,
                                                          corpus: dict[str, Path]) -> None:
    """Two processes started together (two demos on a fresh data folder): one writes, the other
    waits and finds the complete corpus; neither sees or deletes a half-written one."""
    import subprocess
    import sys

    out = tmp_path / "shared"
    code = ("import sys; from ser.data.synthetic import write_synthetic_corpora as w; "
            "r = w(sys.argv[1], seed=0, size='tiny'); "
            "import pathlib; print(len(list(pathlib.Path(r['ravdess']).rglob('*.wav'))))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-2000:]
        assert stdout.strip() == "120", stdout  # each saw the whole corpus when it returned
    assert _tree_bytes(out / "indonesian") == _tree_bytes(corpus["indonesian"])
    assert not [p for p in out.iterdir() if p.name.startswith(".synthetic-")]  # no leftovers


def test_a_failed_write_leaves_no_partial_corpus(tmp_path: Path, monkeypatch) -> None:
    import ser.data.synthetic.writer as writer

    calls = []
    real = writer.write_clip

    def failing(job):
        calls.append(job)
        if len(calls) > 5:
            raise OSError("disk full (simulated)")
        return real(job)

    monkeypatch.setattr(writer, "write_clip", failing)
    with pytest.raises(OSError, match="disk full"):
        write_synthetic_corpora(tmp_path, seed=0, size="tiny", workers=1)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".synthetic.lock"], left  # no corpus folders, no marker, no temporary folder
