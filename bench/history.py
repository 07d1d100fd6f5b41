"""What the prediction history costs an answer: ``POST /predict`` latency and throughput with
``--store none`` (what a user had before), the default SQLite file, and PostgreSQL.

    python bench/history.py [--requests 100] [--rounds 3] [--clients 8]

One process: the real app (``create_app``) with the tiny model on one torch thread, served by
uvicorn on a loopback port (``ServerThread``); C client threads, each with its own keep-alive
``httpx.Client``, post seeded 1-3 s 16 kHz wav files. The stores take turns round by round
(none, sqlite, postgresql, none, ...), so a busy neighbour hits all of them alike. PostgreSQL is
a throw-away cluster from ``tests/pg_cluster.py`` (skipped when PostgreSQL is not installed).
After each round the bench waits until every record is written and checks the row count: the
figures include no record that was not stored. Nothing is left running afterwards.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def clips(count: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        t = np.arange(int(rng.uniform(1, 3) * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(90, 250) * t) + rng.normal(0, 0.05, t.size)
        buf = io.BytesIO()
        sf.write(buf, wave.astype(np.float32), 16000, format="WAV")
        out.append(buf.getvalue())
    return out


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def one_round(model: Path, store: str, data: list[bytes], clients: int) -> dict:
    import httpx

    from ser.history.service import HistoryOptions
    from ser.history.store import HistoryStore
    from ser.serve import ServerThread, create_app

    app = create_app(model, recognizer_options={"device": "cpu"},
                     history=HistoryOptions(store=store))
    latencies: list[float] = []
    with ServerThread(app) as url:
        def worker(w: int) -> list[float]:
            times = []
            with httpx.Client(base_url=url, timeout=60) as c:
                for i in range(w, len(data), clients):
                    start = time.perf_counter()
                    r = c.post("/predict", files={"file": (f"c{i}.wav", data[i])})
                    times.append(time.perf_counter() - start)
                    assert r.status_code == 200, r.text
            return times

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            for part in pool.map(worker, range(clients)):
                latencies += part
        wall = time.perf_counter() - start
        assert app.state.history.flush(60)
    if store != "none":
        counted = HistoryStore.open(store)
        rows = counted.count()
        counted.close()
    else:
        rows = 0
    return {"wall": wall, "latencies": latencies, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ser.model import EmotionClassifier

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="ser-bench-history-"))
    os.environ["SER_CACHE"] = str(work / "cache")
    torch.manual_seed(0)
    model = EmotionClassifier("tiny").export(work / "model")
    stores = {"none": "none", "sqlite": f"sqlite:///{work / 'history.db'}"}
    cluster = None
    from pg_cluster import PostgresCluster, missing

    reason = missing()
    if reason is None:
        cluster = PostgresCluster()
        cluster.start()
        stores["postgresql"] = cluster.new_database()
    else:
        print(f"postgresql: skipped ({reason})")
    data = clips(args.requests)
    results: dict[str, list[dict]] = {name: [] for name in stores}
    try:
        for _ in range(args.rounds):
            for name, url in stores.items():
                results[name].append(one_round(model, url, data, args.clients))
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; torch threads 1; "
          f"{args.requests} requests x {args.rounds} rounds, {args.clients} clients")
    print("| store | requests/s | p50 ms | p95 ms | rows stored (all rounds) | req/s vs none |")
    print("|---|---|---|---|---|---|")
    base = None
    for name, rounds in results.items():
        lat = sorted(x for r in rounds for x in r["latencies"])
        rate = args.requests * len(rounds) / sum(r["wall"] for r in rounds)
        base = base or rate
        p50 = 1000 * statistics.median(lat)
        p95 = 1000 * lat[int(0.95 * (len(lat) - 1))]
        print(f"| {name} | {rate:.1f} | {p50:.1f} | {p95:.1f} | {rounds[-1]['rows']} | "
              f"{rate / base:.2f}x |")


if __name__ == "__main__":
    main()
