"""HTTP serving throughput: N requests from C concurrent clients against a real `ser serve`.

    python bench/serve.py                          # tiny model, 200 requests, 8 clients
    python bench/serve.py --model outputs/run/model --requests 200 --clients 8

The server is the real command (``python -m ser.cli serve``) in its own process on a free
loopback port; the benchmark waits for its ``ready`` log line. The clients are threads, each
with its own ``httpx.Client`` (keep-alive), posting seeded speech-like wav files of 1-4 s
(16 kHz and 48 kHz mixed) round-robin. Every answer is checked against
``EmotionRecognizer.predict`` on the same file in this process (label equal, probabilities
within 1e-4); the figures are requests/s over the whole run and p50/p95/max latency per request.
Loopback only, a bounded number of requests, nothing left running afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_files(directory: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        rate = (16_000, 48_000)[i % 2]
        seconds = rng.uniform(1.0, 4.0)
        t = np.arange(int(seconds * rate)) / rate
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
        wave = envelope * (0.3 * np.sin(2 * np.pi * rng.uniform(90, 250) * t)
                           + rng.normal(0, rng.uniform(0.02, 0.3), t.size))
        path = directory / f"clip{i:03d}.wav"
        sf.write(path, (0.5 * wave / np.abs(wave).max()).astype(np.float32), rate)
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: str, port: int, threads: int | None,
                 timeout: float = 120.0) -> tuple[subprocess.Popen, list[str]]:
    command = [sys.executable, "-m", "ser.cli", "serve", "--model", model,
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    if threads:
        command += ["--threads", str(threads)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line == "":
            raise RuntimeError("the server exited during start-up:\n" + "".join(log))
        log.append(line)
        if "ready: http://" in line:
            return proc, log
    proc.terminate()
    raise TimeoutError("the server did not log 'ready' in time:\n" + "".join(log))


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="model to serve (default: the tiny model, exported to a temp dir)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--files", type=int, default=20, help="distinct files, sent round-robin")
    parser.add_argument("--threads", type=int, default=None, help="server's torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if not (0 < args.requests <= 100_000 and 0 < args.clients <= 256):
        parser.error("--requests must be 1..100000 and --clients 1..256")

    import httpx
    import torch

    from ser.inference import EmotionRecognizer

    with tempfile.TemporaryDirectory(prefix="ser-bench-serve-") as tmp:
        tmp_path = Path(tmp)
        model = args.model
        if model is None:
            os.environ.setdefault("SER_CACHE", str(tmp_path / "cache"))
            from ser.model import EmotionClassifier

            torch.manual_seed(args.seed)
            model = str(EmotionClassifier("tiny").export(tmp_path / "model"))
        files = write_files(tmp_path, args.files, args.seed)
        payloads = [(p.name, p.read_bytes()) for p in files]

        port = free_port()
        proc, _ = start_server(model, port, args.threads)
        url = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
        answers: list[tuple[int, int, dict]] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))

        def client() -> None:
            with httpx.Client(base_url=url, timeout=120) as c:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    name, data = payloads[i % len(payloads)]
                    start = time.perf_counter()
                    response = c.post("/predict", files={"file": (name, data, "audio/wav")})
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        answers.append((i, response.status_code, response.json()))

        try:
            httpx.get(url + "/ping", timeout=10).raise_for_status()
            wall = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                for future in [pool.submit(client) for _ in range(args.clients)]:
                    future.result()
            wall = time.perf_counter() - wall
        finally:
            proc.terminate()
            proc.wait(timeout=30)

        recognizer = EmotionRecognizer.from_pretrained(model, device="cpu")
        expected = [recognizer.predict(p) for p in files]
        wrong = []
        for i, status, body in answers:
            want = expected[i % len(files)]
            ok = (status == 200 and body.get("emotion") == want.label and max(
                abs(body["probabilities"][k] - v) for k, v in want.probabilities.items()) < 1e-4)
            if not ok:
                wrong.append((i, status, body))

    lat = np.array(latencies) * 1000
    figures = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "model": args.model or "tiny (random weights)",
        "requests": len(answers), "clients": args.clients, "wrong": len(wrong),
        "requests_per_s": round(len(answers) / wall, 1), "wall_s": round(wall, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "max_ms": round(float(lat.max()), 1),
        "command": "python bench/serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    for i, status, body in wrong[:5]:
        print(f"WRONG request {i}: HTTP {status} {body}", file=sys.stderr)
    return 1 if wrong or len(answers) != args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
