"""`ser serve` under hostile uploads and connections (issue 14, item 1): each refusal comes
before the cost it prevents (decoding, reading the body, holding a socket), and short
uploads are not starved by long ones. The hostile files are made here, small."""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf

from ser.inference import Prediction
from ser.labels import LABELS
from ser.serve import DEFAULT_CORS_ORIGINS, ServerThread, cors_origins_with, create_app
from ser.serve.schedule import PriorityGate, PrioritySlots

RATE = 16000


def silence(seconds: float, rate: int, channels: int, fmt: str) -> bytes:
    """Silence encoded block by block: an hour of FLAC is a few hundred KB."""
    buf = io.BytesIO()
    left = int(seconds * rate)
    block = np.zeros((min(left, 1 << 16), channels), np.int16)
    with sf.SoundFile(buf, "w", rate, channels, format=fmt, subtype="PCM_16") as out:
        while left > 0:
            out.write(block[:left])
            left -= len(block)
    return buf.getvalue()


def speech(seconds: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * 150 * t) + rng.normal(0, 0.05, t.size)
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), RATE, format="WAV")
    return buf.getvalue()


class WindowedRecognizer:
    """A stand-in model that costs ``step`` seconds per 4-second window, taking the gate once
    per window as the real recognizer does, and logs when each prediction ends."""

    sampling_rate = RATE

    def __init__(self, step: float = 0.0) -> None:
        self.step = step
        self.finished: list[float] = []  # durations, in the order their predictions ended
        self.calls = 0
        self.running = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def predict(self, clip, sampling_rate=None, *, batch_size=8, gate=None):
        self.calls += 1
        for _ in range(max(1, int(np.ceil(clip.size / RATE / 4)))):
            with gate():
                self.running.set()
                assert self.release.wait(timeout=30)
                time.sleep(self.step)
        self.finished.append(clip.size / RATE)
        probs = np.full(len(LABELS), 1 / len(LABELS))
        probs[0] += 0.1
        return Prediction.from_probabilities(probs / probs.sum(), duration=clip.size / RATE)


@pytest.fixture(scope="module")
def fake():
    return WindowedRecognizer()


@pytest.fixture(scope="module")
def server(fake) -> str:
    with ServerThread(create_app(fake)) as url:
        yield url


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (silence(3600, 8000, 1, "FLAC"), 413, "too long: 60 min 0 s of audio; at most 10 min"),
        (silence(2, 8000, 9, "WAV"), 413, "9 channels: at most 8"),
        (silence(60, 100, 1, "WAV"), 415, "unsupported sample rate 100 Hz"),
        (b"\x89PNG\r\n\x1a\n" + bytes(5000), 415, "not an audio file: it looks like a PNG image"),
        (bytes(range(256)) * 40, 415, "its first bytes match no audio format"),
    ],
    ids=["1-hour-flac", "9-channels", "100-Hz-wav", "png", "garbage"],
)
def test_hostile_uploads_are_refused_from_the_header(server, fake, data, status, words):
    calls = fake.calls
    start = time.perf_counter()
    response = httpx.post(server + "/predict", files={"file": ("x.flac", data)}, timeout=30)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "b'" not in detail and "\\x" not in detail
    assert time.perf_counter() - start < 5
    assert fake.calls == calls  # the model never saw it
    assert httpx.get(server + "/ping", timeout=10).json() == {"status": "ok"}


def test_a_long_wide_upload_within_the_limits_is_answered(server):
    """Two minutes of 8-channel 48 kHz silence (a few dozen KB of FLAC) is within the limits:
    decoded (streamed, see test_audio) and answered."""
    data = silence(120, 48000, 8, "FLAC")
    assert len(data) < 100_000
    response = httpx.post(server + "/predict", files={"file": ("wide.flac", data)}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(120)


def test_the_limits_are_options():
    from ser.audio import AudioLimits

    app = create_app(WindowedRecognizer(), limits=AudioLimits(max_seconds=5, max_channels=1))
    with ServerThread(app) as url:
        long = httpx.post(url + "/predict", files={"file": ("a.wav", speech(6))}, timeout=30)
        assert long.status_code == 413 and "at most 5.0 s" in long.json()["detail"]
        stereo = httpx.post(url + "/predict", files={"file": ("b.wav", silence(1, RATE, 2, "WAV"))},
                            timeout=30)
        assert stereo.status_code == 413 and "2 channels" in stereo.json()["detail"]
        assert httpx.post(url + "/predict", files={"file": ("c.wav", speech(4))},
                          timeout=30).status_code == 200


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_busy_is_said_before_the_body_is_read():
    """max_pending requests in progress: the next one gets 503 on its headers alone (the 5 MB
    it announces are never sent, so reading them would hang the test)."""
    model = WindowedRecognizer()
    model.release.clear()
    app = create_app(model, max_pending=1)
    with ServerThread(app) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, url + "/predict",
                            files={"file": ("a.wav", speech(1))}, timeout=30)
        assert model.running.wait(timeout=10)
        with _raw(url) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
                         b"Content-Type: multipart/form-data; boundary=x\r\n\r\n")
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"server busy" in answer
        model.release.set()
        assert first.result().status_code == 200


def test_a_connection_that_stops_mid_header_is_closed():
    with ServerThread(create_app(WindowedRecognizer()), header_timeout=0.5) as url:
        for sent in (b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty"):
            with _raw(url) as sock:
                sock.sendall(sent)
                start = time.perf_counter()
                assert _read_all(sock) == b""  # closed by the server, nothing answered
                assert time.perf_counter() - start < 5
        # A client that sends its headers in time is not affected.
        assert httpx.get(url + "/ping", timeout=10).json() == {"status": "ok"}


def test_a_body_that_stops_gets_408():
    with ServerThread(create_app(WindowedRecognizer(), body_timeout=0.5)) as url:
        with _raw(url) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                         b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
            start = time.perf_counter()
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"not received within 0.5 s" in answer
        assert time.perf_counter() - start < 5


def test_a_short_upload_overtakes_long_ones():
    """Four 60 s uploads (15 windows of 0.05 s each) queue; a 2 s upload sent after them is
    answered while the first long one is still running, not after all four."""
    model = WindowedRecognizer(step=0.05)
    long_data = silence(60, RATE, 1, "FLAC")
    with ServerThread(create_app(model)) as url, ThreadPoolExecutor(5) as pool:
        longs = [pool.submit(httpx.post, url + "/predict",
                             files={"file": (f"long{i}.flac", long_data)}, timeout=60)
                 for i in range(4)]
        assert model.running.wait(timeout=10)
        start = time.perf_counter()
        short = httpx.post(url + "/predict", files={"file": ("short.wav", speech(2))},
                           timeout=60)
        latency = time.perf_counter() - start
        assert short.status_code == 200
        assert all(f.result().status_code == 200 for f in longs)
    assert model.finished.index(2.0) == 0, model.finished
    assert latency < 15 * 0.05, latency


def test_priority_gate_lets_the_cheapest_in_first():
    gate = PriorityGate(1)
    entered: list[float] = []
    ready = threading.Barrier(4)

    def worker(cost: float) -> None:
        ready.wait()
        with gate.hold(cost):
            entered.append(cost)

    with gate.hold(0):
        threads = [threading.Thread(target=worker, args=(c,)) for c in (600.0, 2.0, 60.0)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(0.2)  # all three are waiting for the gate
    for t in threads:
        t.join(timeout=10)
    assert entered == [2.0, 60.0, 600.0]


async def _slots_order() -> list[float]:
    import anyio

    slots = PrioritySlots(2, long_cost=30)
    granted: list[float] = []

    async def job(cost: float, hold: anyio.Event) -> None:
        async with slots.hold(cost):
            granted.append(cost)
            await hold.wait()

    first, rest = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(job, 600.0, first)  # a long one takes one slot
        await anyio.sleep(0.05)
        tg.start_soon(job, 300.0, rest)   # a second long one may not take the last slot
        await anyio.sleep(0.05)
        tg.start_soon(job, 2.0, rest)     # a short one does
        await anyio.sleep(0.05)
        assert granted == [600.0, 2.0]
        first.set()
        await anyio.sleep(0.05)
        rest.set()
    return granted


def test_priority_slots_keep_one_for_short_uploads():
    import anyio

    assert anyio.run(_slots_order) == [600.0, 2.0, 300.0]


# -- ageing: cheapest first, but a long upload is overtaken for a bounded time only --------------


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _gate_order(arrivals: list[tuple[float, float]], ageing: float = 10.0) -> list[float]:
    """Costs in the order a one-place gate lets them in, each waiter arriving (on a fake clock)
    at its time while the gate is held, then the gate released."""
    clock = FakeClock()
    gate = PriorityGate(1, ageing=ageing, clock=clock)
    entered: list[float] = []

    def worker(cost: float) -> None:
        with gate.hold(cost):
            entered.append(cost)

    threads = []
    with gate.hold(0):
        for when, cost in arrivals:
            clock.now = 1000.0 + when
            threads.append(threading.Thread(target=worker, args=(cost,)))
            threads[-1].start()
            _wait_for(lambda: gate.waiting == len(threads))  # it has taken its rank
    for t in threads:
        t.join(timeout=10)
    return entered


def test_a_long_waiter_is_overtaken_only_until_its_bound():
    """A 600 s upload with ageing 10 may be overtaken for 60 s: a 2 s upload arriving 30 s
    after it goes first, one arriving 70 s after it goes after it."""
    assert _gate_order([(0, 600.0), (30, 2.0), (70, 2.0), (75, 1.0)]) == [2.0, 600.0, 2.0, 1.0]
    # The bound is the waiter's cost / ageing: a 60 s upload is overtaken for 5.8 s by 2 s ones.
    assert _gate_order([(0, 60.0), (5, 2.0), (6, 2.0)]) == [2.0, 60.0, 2.0]
    # Without ageing, cheapest first, however long the wait (the starvation it prevents).
    assert _gate_order([(0, 600.0), (30, 2.0), (700, 2.0)], ageing=0) == [2.0, 2.0, 600.0]


def test_simultaneous_arrivals_stay_cheapest_first_then_first_come():
    assert _gate_order([(0, 600.0), (0, 2.0), (0, 60.0), (0, 2.0)]) == [2.0, 2.0, 60.0, 600.0]
    # Equal keys keep arrival order: 2 s at t=1 and 12 s at t=0 both rank 12 (ageing 10).
    order = _gate_order([(0, 12.0), (1, 2.0)])
    assert order == [12.0, 2.0]


async def _slots_ageing_order(clock: FakeClock, arrivals: list[tuple[float, float]]) -> list:
    import anyio

    slots = PrioritySlots(1, long_cost=30, clock=clock)
    granted: list[float] = []

    async def job(cost: float) -> None:
        async with slots.hold(cost):
            granted.append(cost)

    release = anyio.Event()

    async def first() -> None:
        async with slots.hold(0):
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await anyio.sleep(0.01)
        for when, cost in arrivals:
            clock.now = 1000.0 + when
            tg.start_soon(job, cost)
            await anyio.sleep(0.01)
        assert slots.waiting == len(arrivals)
        release.set()
    return granted


def test_priority_slots_age_the_same_way():
    import anyio

    order = anyio.run(_slots_ageing_order, FakeClock(),
                      [(0, 600.0), (30, 2.0), (70, 2.0), (70, 1.0)])
    assert order == [2.0, 600.0, 1.0, 2.0]
    assert anyio.run(_slots_ageing_order, FakeClock(),
                     [(0, 600.0), (0, 60.0), (0, 2.0)]) == [2.0, 60.0, 600.0]


def test_a_request_keeps_its_rank_across_windows():
    """The windows of a long recording rank by the request's arrival (``arrived=``), not by
    the moment each window asks: after its bound, later short ones no longer cut in."""
    clock = FakeClock()
    gate = PriorityGate(1, clock=clock)
    entered: list[str] = []

    def worker(name: str, cost: float, arrived: float | None) -> None:
        with gate.hold(cost, arrived=arrived):
            entered.append(name)

    with gate.hold(0):
        clock.now = 1100.0
        threads = [threading.Thread(target=worker, args=("window", 600.0, 1000.0)),
                   threading.Thread(target=worker, args=("short", 2.0, None))]
        for t in threads:
            t.start()
            _wait_for(lambda: gate.waiting == threads.index(t) + 1)
    for t in threads:
        t.join(timeout=10)
    assert entered == ["window", "short"]


def test_ageing_is_an_option_of_ser_serve(monkeypatch):
    import ser.serve
    from ser.cli import main

    seen: dict = {}
    monkeypatch.setattr(ser.serve, "run_server", lambda model, **kw: seen.update(kw) or 0)
    assert main(["serve", "--model", "m", "--store", "none", "--ageing", "2.5"]) == 0
    assert seen["ageing"] == 2.5
    assert main(["serve", "--model", "m", "--store", "none"]) == 0
    assert seen["ageing"] == 10.0
    with pytest.raises(SystemExit):
        main(["serve", "--model", "m", "--ageing", "-1"])
    with pytest.raises(ValueError, match="ageing"):
        create_app(WindowedRecognizer(), ageing=-1)


def test_a_client_resending_a_refused_upload_is_held_back_and_good_requests_are_not():
    """A refused upload is answered after --refusal-delay, so a client resending a bad file in a
    loop costs one parse per delay; a good upload is answered at once; the option reaches
    create_app from ser serve."""
    import ser.serve
    from ser.cli import main

    with ServerThread(create_app(WindowedRecognizer(), refusal_delay=0.4)) as url:
        started = time.perf_counter()
        bad = httpx.post(url + "/predict", files={"file": ("x.wav", b"not audio at all" * 64)},
                         timeout=30)
        held = time.perf_counter() - started
        started = time.perf_counter()
        good = httpx.post(url + "/predict", files={"file": ("c.wav", speech(1))}, timeout=30)
        answered = time.perf_counter() - started
    assert bad.status_code == 415 and held >= 0.4
    assert good.status_code == 200 and answered < held
    seen: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ser.serve, "run_server", lambda model, **kw: seen.update(kw) or 0)
        assert main(["serve", "--model", "m", "--store", "none", "--refusal-delay", "0"]) == 0
        assert seen["refusal_delay"] == 0
        assert main(["serve", "--model", "m", "--store", "none"]) == 0
        assert seen["refusal_delay"] == 0.5


def test_cors_defaults_and_additions():
    assert set(DEFAULT_CORS_ORIGINS) == {"http://localhost:3000", "http://127.0.0.1:3000"}
    assert cors_origins_with(["http://example.org", "http://localhost:3000"]) == (
        "http://localhost:3000", "http://127.0.0.1:3000", "http://example.org")
    with ServerThread(create_app(WindowedRecognizer(),
                                 cors_origins=cors_origins_with(["http://example.org"]))) as url:
        for origin in (*DEFAULT_CORS_ORIGINS, "http://example.org"):
            answer = httpx.options(url + "/predict", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST"}, timeout=10)
            assert answer.headers.get("access-control-allow-origin") == origin
        other = httpx.get(url + "/ping", headers={"Origin": "http://evil.example"}, timeout=10)
        assert "access-control-allow-origin" not in other.headers
