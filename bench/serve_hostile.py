"""`ser serve` under hostile uploads: memory, a good request's latency, /ping.

    python bench/serve_hostile.py                       # tiny model, 32 uploads of each kind
    python bench/serve_hostile.py --kinds garbage --uploads 32 --phase-seconds 60

For each kind of hostile upload (issue 14, item 1) a fresh real server (``python -m ser.cli
serve``) is started and measured twice, in the same run:

* idle: its RSS, and the latency of ``--good`` sequential good requests (a 2 s speech-like
  16 kHz WAV; the median is the idle figure);
* under load: for ``--phase-seconds``, ``--uploads`` clients each post the hostile upload
  again and again (all start at once), while one client keeps posting the good request, one
  pings ``/ping`` every 0.25 s, and the server's RSS is sampled every 50 ms. The server is then
  stopped, with whatever is still queued.

Reported per kind: peak RSS over idle (goal: at most +300 MB), the good request's median and
worst latency under load over its idle median (goal: median at most 2x), the slowest /ping,
and the hostile answers by status. Kinds: ``wide`` 10 min of 48 kHz 8-channel silence as FLAC
(237 KB, within the default limits: decoded and predicted), ``hour`` 1 h of FLAC silence
(refused from its header), ``slow-rate`` a 2 MB WAV at 100 Hz (refused from its header),
``garbage`` 9.9 MB of random bytes (refused as not audio). Loopback only, nothing left running.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import io
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import free_port, machine, start_server  # noqa: E402  (bench/serve.py)

KINDS = ("wide", "hour", "slow-rate", "garbage")


def silence(seconds: float, rate: int, channels: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    left = int(seconds * rate)
    block = np.zeros((min(left, 1 << 16), channels), np.int16)
    with sf.SoundFile(buf, "w", rate, channels, format=fmt, subtype="PCM_16") as out:
        while left > 0:
            out.write(block[:left])
            left -= len(block)
    return buf.getvalue()


def hostile(kind: str, seed: int) -> tuple[str, bytes]:
    if kind == "wide":
        return "wide.flac", silence(600, 48000, 8, "FLAC")
    if kind == "hour":
        return "hour.flac", silence(3600, 16000, 1, "FLAC")
    if kind == "slow-rate":
        return "slow.wav", silence(10_000, 100, 1, "WAV")  # 1 M samples: 2 MB
    if kind == "garbage":
        return "garbage.wav", np.random.default_rng(seed).bytes(int(9.9 * 1024 * 1024))
    raise ValueError(kind)


def good_clip(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(2 * 16000) / 16000
    wave = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * (0.3 * np.sin(2 * np.pi * 160 * t)
                                                       + rng.normal(0, 0.05, t.size))
    buf = io.BytesIO()
    sf.write(buf, (0.5 * wave / np.abs(wave).max()).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


def multipart(name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """The request body, built once: the attackers spend no CPU encoding it again."""
    boundary = "ser-bench-hostile-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
            f"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return (head + data + f"\r\n--{boundary}--\r\n".encode(),
            {"content-type": f"multipart/form-data; boundary={boundary}"})


def stop_server(proc) -> None:
    """SIGTERM; uvicorn waits for requests in flight (hostile ones may still be queued), so
    after 10 s the server is killed."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def measure(kind: str, model: str, args: argparse.Namespace, good: bytes) -> dict:
    import httpx
    import psutil

    name, data = hostile(kind, args.seed)
    body, headers = multipart(name, data)
    port = free_port()
    proc, _ = start_server(model, port, args.threads)
    url = f"http://127.0.0.1:{port}"
    server = psutil.Process(proc.pid)
    try:
        with httpx.Client(base_url=url, timeout=300) as c:
            for _ in range(3):  # warm-up
                c.post("/predict", files={"file": ("good.wav", good)}).raise_for_status()
            time.sleep(0.5)
            idle_rss = server.memory_info().rss
            idle = []
            for _ in range(args.good):
                start = time.perf_counter()
                c.post("/predict", files={"file": ("good.wav", good)}).raise_for_status()
                idle.append(time.perf_counter() - start)

        stop = threading.Event()
        rss: list[int] = []
        pings: list[float] = []
        loaded: list[float] = []
        failures: list[str] = []

        def sampler() -> None:
            while not stop.is_set():
                rss.append(server.memory_info().rss)
                time.sleep(0.05)

        def pinger() -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                while not stop.is_set():
                    start = time.perf_counter()
                    try:
                        ok = c.get("/ping").json() == {"status": "ok"}
                    except httpx.HTTPError as exc:
                        ok = False
                        failures.append(f"ping: {exc!r}")
                    pings.append(time.perf_counter() - start if ok else float("inf"))
                    time.sleep(0.25)

        def good_client() -> None:
            with httpx.Client(base_url=url, timeout=300) as c:
                while not stop.is_set():
                    start = time.perf_counter()
                    try:
                        response = c.post("/predict", files={"file": ("good.wav", good)})
                    except httpx.HTTPError as exc:
                        failures.append(f"good: {exc!r}")
                        continue
                    if response.status_code == 200:
                        loaded.append(time.perf_counter() - start)
                    else:
                        failures.append(f"good: HTTP {response.status_code}")

        # Clients made beforehand (making one costs CPU in this process: TLS context), and
        # released together.
        clients = [httpx.Client(base_url=url, timeout=args.phase_seconds + 60)
                   for _ in range(args.uploads)]
        go = threading.Barrier(args.uploads + 1)

        def attacker(i: int) -> list[str]:
            """Posts the upload again and again until the phase ends (a sustained attack)."""
            go.wait()
            statuses = []
            while not stop.is_set():
                try:
                    response = clients[i].post("/predict", content=body, headers=headers)
                    statuses.append(str(response.status_code))
                except httpx.ReadTimeout:
                    statuses.append("no answer within the client timeout (queued)")
                except httpx.HTTPError as exc:
                    statuses.append(type(exc).__name__)
            return statuses

        helpers = [threading.Thread(target=f, daemon=True) for f in (sampler, pinger, good_client)]
        for t in helpers:
            t.start()
        time.sleep(0.3)
        pool = ThreadPoolExecutor(args.uploads)
        futures = [pool.submit(attacker, i) for i in range(args.uploads)]
        go.wait()
        phase = time.perf_counter()
        time.sleep(args.phase_seconds)
        phase = time.perf_counter() - phase
        stop.set()
        for t in helpers:
            t.join(timeout=330)
        answers: collections.Counter[str] = collections.Counter()
        for f in futures:
            try:
                answers.update(f.result(timeout=15))
            except Exception:  # noqa: BLE001 - still queued when the phase ended
                answers["in progress when the phase ended"] += 1
    finally:
        stop_server(proc)
    pool.shutdown(wait=False, cancel_futures=True)
    for client in clients:
        client.close()

    idle_ms = float(np.median(idle) * 1000)
    loaded_ms = np.array(loaded) * 1000
    return {
        "kind": kind, "upload": name, "upload_bytes": len(data), "uploads": args.uploads,
        "phase_s": round(phase, 1), "hostile_answers": dict(answers),
        "idle_rss_mb": round(idle_rss / 1e6), "peak_rss_over_idle_mb": round((max(rss) - idle_rss) / 1e6),
        "good_idle_p50_ms": round(idle_ms, 1),
        "good_loaded_requests": len(loaded),
        "good_loaded_p50_ms": round(float(np.median(loaded_ms)), 1) if loaded else None,
        "good_loaded_max_ms": round(float(loaded_ms.max()), 1) if loaded else None,
        "good_p50_ratio": round(float(np.median(loaded_ms)) / idle_ms, 2) if loaded else None,
        "ping_max_ms": round(max(pings) * 1000, 1) if pings else None,
        "failures": failures[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model to serve (default: tiny, random)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--uploads", type=int, default=32, help="concurrent hostile uploads")
    parser.add_argument("--good", type=int, default=10, help="idle good requests (median)")
    parser.add_argument("--phase-seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=None, help="server's torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (0 < args.uploads <= 256 and 0 < args.good <= 1000 and args.phase_seconds > 0):
        parser.error("--uploads 1..256, --good 1..1000, --phase-seconds > 0")

    import torch

    results = []
    with tempfile.TemporaryDirectory(prefix="ser-bench-hostile-") as tmp:
        model = args.model
        if model is None:
            os.environ.setdefault("SER_CACHE", str(Path(tmp) / "cache"))
            from ser.model import EmotionClassifier

            torch.manual_seed(args.seed)
            model = str(EmotionClassifier("tiny").export(Path(tmp) / "model"))
        good = good_clip(args.seed)
        for kind in args.kinds:
            result = measure(kind, model, args, good)
            print(json.dumps(result), flush=True)
            results.append(result)
    figures = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "load_average": os.getloadavg(),
        "model": args.model or "tiny (random weights)", "results": results,
        "command": "python bench/serve_hostile.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:]),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    bad = [r["kind"] for r in results
           if r["peak_rss_over_idle_mb"] > 300 or r["failures"]
           or (r["ping_max_ms"] or float("inf")) == float("inf")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
