"""`ser serve`: a real uvicorn on loopback, a real HTTP client, the tiny model."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch

from ser.inference import EmotionRecognizer, Prediction
from ser.labels import LABELS
from ser.model import EmotionClassifier
from ser.serve import ServerThread, create_app

RATE = 16000
ORIGIN = "http://localhost:3000"


def speechlike(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """A pitched tone under a slow envelope plus noise: different seeds move the tiny model."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
    wave = envelope * (0.3 * np.sin(2 * np.pi * rng.uniform(90, 250) * t)
                       + rng.normal(0, rng.uniform(0.02, 0.3), t.size))
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def encode(wave: np.ndarray, fmt: str, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return EmotionClassifier("tiny").export(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def reference(model_dir) -> EmotionRecognizer:
    """A second recognizer, outside the server, to check the server's answers against."""
    return EmotionRecognizer.from_pretrained(model_dir, device="cpu", long_threshold=6.0,
                                             window=2.0, hop=1.0)


@pytest.fixture(scope="module")
def server(model_dir) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    app = create_app(model_dir, max_upload_mb=0.5, cors_origins=(ORIGIN,),
                     recognizer_options={"device": "cpu", "long_threshold": 6.0,
                                         "window": 2.0, "hop": 1.0})
    with ServerThread(app) as url:
        yield url
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


def assert_matches(body: dict, expected, tol: float = 1e-4) -> None:
    assert body["emotion"] == expected.label
    assert list(body["probabilities"]) == list(LABELS)
    assert body["confidence"] == pytest.approx(expected.confidence, abs=tol)
    for label in LABELS:
        assert body["probabilities"][label] == pytest.approx(expected.probabilities[label],
                                                             abs=tol)


def test_ping(client):
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_predict_matches_the_recognizer(client, reference, tmp_path, fmt):
    data = encode(speechlike(1.5, seed=3), fmt)
    path = tmp_path / f"clip.{fmt.lower()}"
    path.write_bytes(data)
    response = client.post("/predict", files={"file": ("../../etc/clip", data, "audio/x")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "windows" not in body
    assert_matches(body, reference.predict(path))


def test_long_upload_returns_windows(client, reference, tmp_path):
    wave = speechlike(8.0, seed=5)
    path = tmp_path / "long.wav"
    sf.write(path, wave, RATE)
    response = client.post("/predict", files={"file": ("long.wav", path.read_bytes())})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = reference.predict(path)
    assert len(body["windows"]) == len(expected.windows) > 1
    assert [w["start"] for w in body["windows"]] == [w.start for w in expected.windows]
    assert_matches(body, expected)


@pytest.mark.parametrize("fmt", ["WAV", "MP3"])
def test_a_cut_upload_is_answered_with_a_warning(client, fmt):
    """A file cut short of what its header declares is analysed as far as it goes, and the
    answer says so (as the `warning` column of ser predict does); a whole file has no warning."""
    whole = encode(speechlike(4.0, seed=3), fmt)
    cut = whole[: len(whole) // 2]
    answers = {name: client.post("/predict", files={"file": (f"{name}.{fmt.lower()}", data)})
               for name, data in (("whole", whole), ("cut", cut))}
    assert all(r.status_code == 200 for r in answers.values()), answers
    assert "warning" not in answers["whole"].json()
    assert answers["cut"].json()["warning"].startswith("truncated")


@pytest.mark.parametrize(
    ("files", "data", "status", "words"),
    [
        (None, None, 422, "no file uploaded"),
        ({"audio": ("a.wav", encode(speechlike(1, 0), "WAV"))}, None, 422, "field 'file'"),
        (None, {"file": "not a file"}, 422, "field 'file'"),
        ({"file": ("empty.wav", b"")}, None, 400, "empty"),
        ({"file": ("notes.txt", b"hello, this is text, not sound" * 10)}, None, 415,
         "not an audio file"),
        ({"file": ("cut.wav", encode(speechlike(1, 0), "WAV")[:30])}, None, 400, "corrupt"),
        ({"file": ("short.wav", encode(speechlike(0.01, 0), "WAV"))}, None, 400, "too short"),
    ],
    ids=["no-file", "wrong-field", "field-not-a-file", "empty", "not-audio", "truncated",
         "too-short"],
)
def test_bad_uploads_get_a_4xx_with_a_reason(client, files, data, status, words):
    response = client.post("/predict", files=files, data=data)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert words in body["detail"]
    assert client.get("/ping").json() == {"status": "ok"}


def test_not_multipart_gets_a_4xx(client):
    response = client.post("/predict", content=b'{"file": 1}',
                           headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert isinstance(response.json()["detail"], str)


def test_upload_above_the_limit_gets_413(client):
    big = encode(np.zeros(int(0.6 * 1024 * 1024 / 2), dtype=np.float32), "WAV")  # ~0.6 MB
    response = client.post("/predict", files={"file": ("big.wav", big)})
    assert response.status_code == 413
    assert "0.5 MB" in response.json()["detail"]


def test_chunked_upload_above_the_limit_gets_413(server):
    """No Content-Length: the limit still holds while the body streams in."""
    def chunks():  # a well-formed multipart head, then a file part that goes on and on
        yield (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
               b"Content-Type: audio/wav\r\n\r\n")
        for _ in range(40):
            yield b"\0" * 65536

    with httpx.Client(base_url=server, timeout=30) as c:
        response = c.post("/predict", content=chunks(),
                          headers={"content-type": "multipart/form-data; boundary=x"})
        assert response.status_code == 413
        assert c.get("/ping").status_code == 200


def test_just_under_the_limit_is_accepted(client):
    wave = speechlike(15.0, seed=1)  # 16-bit wav: ~0.46 MB, under the 0.5 MB limit
    data = encode(wave, "WAV")
    assert 0.4 * 1024 * 1024 < len(data) < 0.5 * 1024 * 1024
    assert client.post("/predict", files={"file": ("ok.wav", data)}).status_code == 200


def test_concurrent_requests_all_answered_correctly(server, reference):
    clips = [encode(speechlike(0.5 + 0.1 * (i % 5), seed=i), "WAV") for i in range(16)]
    expected = [reference.predict(speechlike(0.5 + 0.1 * (i % 5), seed=i), RATE)
                for i in range(16)]

    def post(i: int) -> dict:
        with httpx.Client(base_url=server, timeout=60) as c:
            response = c.post("/predict", files={"file": (f"c{i}.wav", clips[i])})
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(16)))
    for body, want in zip(answers, expected):
        assert_matches(body, want, tol=1e-3)  # PCM_16 quantisation of the upload


class SlowRecognizer:
    """Stands in for a big model: each prediction holds its thread until released."""

    sampling_rate = RATE
    source = "slow"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def predict(self, clip, sampling_rate=None, *, batch_size=8, gate=None):
        with gate():
            self.started.release()
            assert self.release.wait(timeout=30)
        probs = np.full(len(LABELS), 1 / len(LABELS))
        probs[2] += 0.1
        return Prediction.from_probabilities(probs / probs.sum(), duration=clip.size / RATE)


def test_slow_inference_blocks_neither_the_loop_nor_the_queue_bound():
    """While predictions run, /ping answers at once; past max_pending the server says 503."""
    slow = SlowRecognizer()
    data = encode(speechlike(0.5, seed=2), "WAV")
    app = create_app(slow, max_pending=2)
    with ServerThread(app) as url, ThreadPoolExecutor(4) as pool:
        posts = [pool.submit(httpx.post, url + "/predict", files={"file": ("x.wav", data)},
                             timeout=60) for _ in range(2)]
        assert slow.started.acquire(timeout=10)  # one prediction is running (model limit 1)
        start = time.perf_counter()
        assert httpx.get(url + "/ping", timeout=10).json() == {"status": "ok"}
        assert time.perf_counter() - start < 0.5
        deadline = time.monotonic() + 10
        while app.state.admission.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the second request is decoded and waits for the model
        busy = httpx.post(url + "/predict", files={"file": ("y.wav", data)}, timeout=10)
        assert busy.status_code == 503 and "busy" in busy.json()["detail"]
        slow.release.set()
        for future in posts:
            response = future.result()
            assert response.status_code == 200
            assert response.json()["emotion"] == LABELS[2]


class BrokenRecognizer:
    sampling_rate = RATE

    def predict(self, clip, sampling_rate=None, **options):
        raise RuntimeError("simulated model fault")


def test_a_model_fault_is_a_json_500_and_the_server_goes_on():
    with ServerThread(create_app(BrokenRecognizer())) as url:
        data = encode(speechlike(0.5, seed=4), "WAV")
        response = httpx.post(url + "/predict", files={"file": ("x.wav", data)}, timeout=30)
        assert response.status_code == 500
        assert "RuntimeError" in response.json()["detail"]
        assert httpx.get(url + "/ping", timeout=10).json() == {"status": "ok"}


def test_cors_header_for_the_allowed_origin_only(client):
    allowed = client.get("/ping", headers={"Origin": ORIGIN})
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    other = client.get("/ping", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options("/predict", headers={"Origin": ORIGIN,
                                                    "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


def test_upload_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert 'type="file"' in response.text and "predict" in response.text


def test_cli_serve_logs_ready_then_answers(model_dir):
    """The real command: `ser serve` starts, logs 'ready', answers /ping, stops on SIGTERM."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser.cli", "serve", "--model", str(model_dir), "--port",
         str(port), "--device", "cpu", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ready: http://127.0.0.1:" in line:
                break
        assert "ready: http://127.0.0.1:" in lines[-1], "".join(lines)
        assert not any("ready" in line for line in lines[:-1]), "".join(lines)
        assert httpx.get(f"http://127.0.0.1:{port}/ping", timeout=10).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cli_serve_with_a_missing_model_fails_with_a_reason(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ser.cli", "serve", "--model", str(tmp_path / "nope"),
         "--port", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "nope" in proc.stdout + proc.stderr
    assert "ready" not in proc.stdout + proc.stderr
