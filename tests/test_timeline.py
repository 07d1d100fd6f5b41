"""Voice-activity segments, timelines (API and ``ser predict --timeline``) and live sessions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from live_audio import layout, trimmed
from ser.inference import EmotionRecognizer
from ser.inference.live import LiveSession
from ser.inference.vad import SpeechSegmenter, VadConfig, load_vad_model
from ser.labels import LABELS
from ser.model import EmotionClassifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return EmotionClassifier("tiny").export(tmp_path_factory.mktemp("timeline") / "model")


@pytest.fixture(scope="module")
def recognizer(model_dir, one_thread) -> EmotionRecognizer:
    return EmotionRecognizer.from_pretrained(model_dir, device="cpu")


@pytest.fixture(scope="module")
def clips(tiny_corpora) -> list[np.ndarray]:
    files = sorted((tiny_corpora["ravdess"]).rglob("*.wav"))
    return [trimmed(f) for f in files[:6]]


@pytest.fixture(scope="module")
def two_sentences(clips, tmp_path_factory):
    """speech - 2 s silence - speech, with 0.7 s of silence around."""
    return layout(clips[:2], [0.7, 2.0, 0.7], tmp_path_factory.mktemp("sss") / "two.wav")


def test_speech_silence_speech_gives_two_segments_at_the_right_times(recognizer, two_sentences):
    path, truth = two_sentences
    timeline = recognizer.timeline(path)
    assert len(timeline.segments) == 2, timeline.segments
    for segment, (start, end) in zip(timeline.segments, truth):
        assert segment.start == pytest.approx(start, abs=0.1)
        assert segment.end == pytest.approx(end, abs=0.1)
        assert list(segment.probabilities) == list(LABELS)
    assert timeline.speech_seconds < timeline.duration - 3.0  # the silences were not scored


def test_silence_only_has_no_segment(recognizer):
    noise = np.random.default_rng(0).normal(0, 1e-4, 16000 * 5).astype(np.float32)
    timeline = recognizer.timeline(noise, 16000)
    assert timeline.segments == () and timeline.overall() is None


def test_a_segment_is_scored_as_the_clip_alone(recognizer, clips, two_sentences):
    path, _ = two_sentences
    first = recognizer.timeline(path).segments[0]
    audio, _ = sf.read(path, dtype="float32")
    alone = recognizer.predict(audio[int(first.start * 16000):int(round(first.end * 16000))],
                               16000)
    assert alone.label == first.label
    for label in LABELS:
        assert alone.probabilities[label] == pytest.approx(first.probabilities[label], abs=1e-4)


def test_long_speech_is_cut_at_pauses_below_max_segment(recognizer, clips, tmp_path):
    # Six sentences 0.15 s apart: too short a silence to end a segment, long enough a pause.
    path, truth = layout(clips, [0.5] + [0.15] * 5 + [0.5], tmp_path / "long.wav")
    config = VadConfig(max_segment=4.0)
    segmenter = SpeechSegmenter(config)
    audio, _ = sf.read(path, dtype="float32")
    segments = segmenter.feed(audio) + segmenter.finish()
    assert len(segments) >= 3
    assert all(s.end - s.start <= 4.0 + 2 * config.pad + 1e-6 for s in segments)
    peaks = np.abs(audio[: audio.size // 160 * 160]).reshape(-1, 160).max(axis=1)  # 10 ms
    for s in segments[:-1]:  # each cut lies in a pause (between or inside sentences)
        near = peaks[int(s.end * 100) - 10:int(s.end * 100) + 10]
        assert near.min() < 0.05 * peaks.max(), (s.end, near.round(3))
    assert segments[-1].end == pytest.approx(truth[-1][1], abs=0.1)


def test_stream_gives_the_timeline_segments_whatever_the_chunk_size(recognizer, two_sentences):
    path, _ = two_sentences
    timeline = recognizer.timeline(path)
    audio, _ = sf.read(path, dtype="int16")
    for size in (160, 1234, 16000):
        chunks = [audio[i:i + size] for i in range(0, audio.size, size)]
        events = list(recognizer.stream(chunks, 16000))
        finals = [e for e in events if e.kind == "segment"]
        assert [(e.start, e.end, e.label) for e in finals] == \
            [(s.start, s.end, s.label) for s in timeline.segments]
        for event, segment in zip(finals, timeline.segments):
            assert event.confidence == pytest.approx(segment.confidence, abs=1e-4)
        partials = [e for e in events if e.kind == "partial"]
        assert partials and all(p.end - p.start > 0.25 for p in partials)
        assert events[-1].kind == "segment"


def test_a_segment_is_scored_while_its_closing_silence_is_confirmed(recognizer, two_sentences,
                                                                    monkeypatch):
    """The feed that makes a segment final calls no model: the segment was scored as soon as
    its closing quiet began (the half of the latency that scoring costs is hidden in the
    0.25 s silence wait), with the same result as the timeline; a caller behind real time
    (keeping_up=False) scores only when the segment is final."""
    path, _ = two_sentences
    timeline = recognizer.timeline(path)
    audio, _ = sf.read(path, dtype="float32")
    calls = []
    real = recognizer.probabilities
    monkeypatch.setattr(recognizer, "probabilities",
                        lambda clips: calls.append(len(clips)) or real(clips))

    for keeping_up in (True, False):
        session = LiveSession(recognizer, partial_hop=None)
        finals = []
        for i in range(0, audio.size, 1600):  # 100 ms chunks, as a browser sends them
            before = len(calls)
            segments = [e for e in session.feed(audio[i:i + 1600], keeping_up=keeping_up)
                        if e.kind == "segment"]
            if segments:
                made_calls = len(calls) - before
                assert made_calls == (0 if keeping_up else 1), (keeping_up, made_calls)
            finals += segments
        finals += session.finish()
        assert [(e.start, e.end, e.label) for e in finals] == \
            [(s.start, s.end, s.label) for s in timeline.segments]
        for event, segment in zip(finals, timeline.segments):
            assert event.confidence == pytest.approx(segment.confidence, abs=1e-4)
        if keeping_up:
            assert session.early_used == len(timeline.segments) == 2
        else:
            assert session.early_scored == session.early_used == 0


def test_stream_at_48k_is_resampled(recognizer, clips, tmp_path):
    path16, truth = layout(clips[:2], [0.7, 2.0, 0.7], tmp_path / "a16.wav")
    path48, _ = layout(clips[:2], [0.7, 2.0, 0.7], tmp_path / "a48.wav", rate=48000)
    audio48, rate = sf.read(path48, dtype="float32")
    assert rate == 48000
    events = [e for e in recognizer.stream([audio48[i:i + 4800] for i in
                                            range(0, audio48.size, 4800)], 48000)
              if e.kind == "segment"]
    assert len(events) == 2
    for event, (start, end) in zip(events, truth):
        assert event.start == pytest.approx(start, abs=0.1)
        assert event.end == pytest.approx(end, abs=0.1)


def test_loading_the_vad_keeps_torch_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        load_vad_model("jit")
        assert torch.get_num_threads() == 2  # `import silero_vad` sets it to 1
    finally:
        torch.set_num_threads(threads)


def test_jit_and_onnx_detectors_agree(two_sentences):
    pytest.importorskip("onnxruntime")
    path, _ = two_sentences
    audio, _ = sf.read(path, dtype="float32")
    found = {}
    for backend in ("jit", "onnx"):
        segmenter = SpeechSegmenter(VadConfig(backend=backend))
        found[backend] = [(s.start, s.end) for s in segmenter.feed(audio) + segmenter.finish()]
    assert found["jit"] == found["onnx"]


def test_live_session_rejects_a_model_at_another_rate(recognizer):
    class Other:
        sampling_rate = 8000
    with pytest.raises(ValueError, match="16000 Hz"):
        LiveSession(Other())  # type: ignore[arg-type]


@pytest.mark.slow
def test_predict_timeline_cli_writes_csv_json_and_plots(model_dir, two_sentences, tmp_path):
    path, truth = two_sentences
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    base = [sys.executable, "-m", "ser.cli", "predict", "--timeline", "--model", str(model_dir),
            str(path), str(broken), "--threads", "1"]
    env = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin",
           "SER_PRECISION": "fp32", "PYTHONPATH": str(REPO)}
    csv = subprocess.run(base + ["--out", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "p")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert csv.returncode == 1, csv.stderr  # the broken file failed, and is named
    assert "broken.wav" in csv.stdout and "2 files, 1 failed" in csv.stdout
    frame = pd.read_csv(tmp_path / "t.csv")
    assert list(frame.columns) == ["path", "start", "end", "pred", "confidence",
                                   *[f"p_{label}" for label in LABELS]]
    assert len(frame) == 2 and set(frame["path"]) == {str(path)}
    assert frame["start"].tolist() == pytest.approx([t[0] for t in truth], abs=0.1)
    pngs = sorted((tmp_path / "p").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"
    js = subprocess.run(base[:-3] + ["--out", str(tmp_path / "t.json")], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
    assert js.returncode == 0, js.stderr
    record = json.loads((tmp_path / "t.json").read_text())["files"][0]
    assert [(s["start"], s["end"], s["pred"]) for s in record["segments"]] == \
        list(zip(frame["start"], frame["end"], frame["pred"]))
