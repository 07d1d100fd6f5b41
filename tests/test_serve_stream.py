"""`/stream` (WebSocket) and `POST /timeline` on a real uvicorn, the tiny model."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch

from live_audio import layout, trimmed
from ser.inference import EmotionRecognizer
from ser.model import EmotionClassifier
from ser.serve import ServerThread, create_app
from ser.serve.live import StreamLimits

websocket = pytest.importorskip("websocket")  # websocket-client

LIMITS = StreamLimits(max_streams=3, max_session_seconds=20.0, max_buffer_seconds=30.0,
                      idle_timeout=1.5, max_frame_seconds=0.5)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return EmotionClassifier("tiny").export(tmp_path_factory.mktemp("stream") / "model")


@pytest.fixture(scope="module")
def recording(tiny_corpora, tmp_path_factory):
    files = sorted(tiny_corpora["ravdess"].rglob("*.wav"))
    clips = [trimmed(f) for f in files[2:5]]
    return layout(clips, [0.6, 1.5, 1.2, 0.6], tmp_path_factory.mktemp("rec") / "three.wav")


@pytest.fixture(scope="module")
def server(model_dir, one_thread) -> str:
    app = create_app(model_dir, recognizer_options={"device": "cpu"}, stream_limits=LIMITS)
    with ServerThread(app) as url:
        yield url


def connect(server: str, query: str = "") -> websocket.WebSocket:
    ws = websocket.create_connection(server.replace("http://", "ws://") + "/stream" + query,
                                     timeout=30)
    return ws


def read_all(ws) -> tuple[list[dict], int | None]:
    """Messages until the server closes; and the close code."""
    messages = []
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            return messages, code
        messages.append(json.loads(data))


def send_file(ws, path: Path, *, chunk: float = 0.1, pace: float = 0.0) -> None:
    audio, rate = sf.read(path, dtype="int16")
    size = int(chunk * rate)
    for i in range(0, audio.size, size):
        ws.send_binary(audio[i:i + size].tobytes())
        if pace:
            time.sleep(pace)
    ws.send(json.dumps({"type": "stop"}))


def test_stream_gives_the_segments_of_the_timeline(server, model_dir, recording):
    path, truth = recording
    ws = connect(server)
    ready = json.loads(ws.recv())
    assert ready["type"] == "ready" and ready["rate"] == 16000 and ready["format"] == "s16le"
    send_file(ws, path)
    messages, code = read_all(ws)
    assert code == 1000 and messages[-1]["type"] == "end"
    finals = [m for m in messages if m["type"] == "segment"]
    reference = EmotionRecognizer.from_pretrained(model_dir, device="cpu").timeline(path)
    assert [(m["start"], m["end"], m["emotion"]) for m in finals] == \
        [(s.start, s.end, s.label) for s in reference.segments]
    assert len(finals) == 3
    for m, (start, end) in zip(finals, truth):
        assert m["start"] == pytest.approx(start, abs=0.1)
        assert set(m) >= {"start", "end", "emotion", "confidence", "probabilities"}


def test_browser_rate_is_resampled(server, model_dir, recording, tmp_path):
    path, _ = recording
    reference = EmotionRecognizer.from_pretrained(model_dir, device="cpu").timeline(path)
    audio, _ = sf.read(path, dtype="float32")
    import soxr
    path48 = tmp_path / "48k.wav"
    sf.write(path48, soxr.resample(audio, 16000, 48000), 48000, subtype="PCM_16")
    ws = connect(server, "?rate=48000")
    assert json.loads(ws.recv())["rate"] == 48000
    send_file(ws, path48)
    messages, code = read_all(ws)
    finals = [m for m in messages if m["type"] == "segment"]
    assert code == 1000 and len(finals) == len(reference.segments) == 3
    for m, s in zip(finals, reference.segments):  # within two VAD frames of the 16 kHz file's
        assert m["start"] == pytest.approx(s.start, abs=0.065)
        assert m["end"] == pytest.approx(s.end, abs=0.065)


def test_partial_updates_while_speaking_in_real_time(server, recording):
    path, _ = recording
    ws = connect(server)
    ws.recv()
    send_file(ws, path, chunk=0.1, pace=0.05)  # twice real time: the server keeps up
    messages, _ = read_all(ws)
    partials = [m for m in messages if m["type"] == "partial"]
    assert partials, [m["type"] for m in messages]
    first_final = next(m for m in messages if m["type"] == "segment")
    assert any(p["start"] == first_final["start"] and p["end"] < first_final["end"]
               for p in partials)


def _abuse(server: str, action: str) -> tuple[list[dict], int | None]:
    ws = connect(server, "?rate=3" if action == "bad_rate" else "")
    if action != "bad_rate":
        assert json.loads(ws.recv())["type"] == "ready"
    if action == "oversized":
        ws.send_binary(np.zeros(16000, np.int16).tobytes())  # 1 s > max_frame_seconds 0.5
    elif action == "too_long":  # 21 s of audio, faster than real time but within the buffer
        for _ in range(int(21 / 0.4)):
            ws.send_binary(np.zeros(6400, np.int16).tobytes())
            time.sleep(0.02)
    elif action == "text":
        ws.send("hello")
    # "silent": send nothing; the idle timeout ends the stream
    return read_all(ws)


@pytest.mark.parametrize("action, code, words", [
    ("oversized", 1009, "larger than 0.5 s"),
    ("silent", 1008, "no audio for 1.5 s"),
    ("too_long", 1008, "longer than the limit of 20 s"),
    ("text", 1008, "unknown text message"),
    ("bad_rate", 1008, "outside 8000-192000 Hz"),
])
def test_an_abusive_client_gets_an_error_and_is_closed_while_another_goes_on(
        server, recording, action, code, words):
    path, _ = recording
    good: dict = {}

    def honest() -> None:
        ws = connect(server)
        ws.recv()
        send_file(ws, path, pace=0.02)
        good["messages"], good["code"] = read_all(ws)

    thread = threading.Thread(target=honest)
    thread.start()
    messages, got = _abuse(server, action)
    thread.join(60)
    assert got == code
    assert messages[-1]["type"] == "error" and words in messages[-1]["detail"]
    assert good["code"] == 1000
    assert len([m for m in good["messages"] if m["type"] == "segment"]) == 3


def test_a_client_sending_faster_than_the_server_analyses_is_stopped(model_dir, recording):
    path, _ = recording
    limits = StreamLimits(max_buffer_seconds=1.0, max_session_seconds=600.0)
    app = create_app(model_dir, recognizer_options={"device": "cpu"}, stream_limits=limits)
    audio, _ = sf.read(path, dtype="int16")
    with ServerThread(app) as url:
        ws = connect(url)
        ws.recv()
        try:
            for _ in range(20):  # the recording 20 times over, as fast as the socket takes it
                for i in range(0, audio.size, 1600):
                    ws.send_binary(audio[i:i + 1600].tobytes())
        except (websocket.WebSocketException, OSError):
            pass  # the server closed while we were still sending
        messages, code = read_all(ws)
    assert code == 1008 and "waiting to be analysed" in messages[-1]["detail"]


def test_more_streams_than_the_limit_are_refused(server):
    open_ones = [connect(server) for _ in range(LIMITS.max_streams)]
    for ws in open_ones:
        assert json.loads(ws.recv())["type"] == "ready"
    messages, code = read_all(connect(server))
    assert code == 1013 and "retry later" in messages[-1]["detail"]
    for ws in open_ones:
        ws.close()
    time.sleep(0.5)
    ws = connect(server)
    assert json.loads(ws.recv())["type"] == "ready"  # the slots came back
    ws.close()


def test_a_page_from_another_origin_may_not_stream(server):
    ws = websocket.create_connection(server.replace("http://", "ws://") + "/stream", timeout=30,
                                     origin="http://evil.example")
    messages, code = read_all(ws)
    assert code == 1008 and "origin" in messages[-1]["detail"]


def test_timeline_upload_and_static_files(server, model_dir, recording):
    path, _ = recording
    body = httpx.post(server + "/timeline", files={"file": (path.name, path.read_bytes())},
                      timeout=60).json()
    reference = EmotionRecognizer.from_pretrained(model_dir, device="cpu").timeline(path)
    assert [(s["start"], s["end"], s["emotion"]) for s in body["segments"]] == \
        [(s.start, s.end, s.label) for s in reference.segments]
    bad = httpx.post(server + "/timeline", files={"file": ("x.wav", b"not audio at all")},
                     timeout=30)
    assert bad.status_code == 415 and "x.wav" in bad.json()["detail"]
    for name in ("live.js", "live.css", "pcm-worklet.js"):
        assert httpx.get(f"{server}/static/{name}", timeout=10).status_code == 200
    assert 'src="static/live.js"' in httpx.get(server + "/", timeout=10).text
