"""Live recognition and timelines: latency, real-time factor and memory.

    python bench/stream.py latency [--models tiny base] [--streams 1 4 16] [--seconds 20]
    python bench/stream.py memory [--minutes 1 60]

latency: N streams (threads) each feed a recording of sentences and pauses to a
LiveSession in 100 ms chunks at real-time pace; the model runs one call at a time (a lock,
as the server's model limiter does). For each final segment: end-of-speech to event latency
= wall time when the event exists minus the wall time at which the audio up to the true end
of that sentence had been fed (the silence wait is included). RTF = seconds spent analysing
(VAD + model, all streams) / seconds of audio of one stream: below 1 the machine keeps up.
Reported with ``keeping_up`` off (no partial updates, no early scoring of a pending segment:
what the server does for a stream behind real time) and on (what it does otherwise). With
``--runtime onnx`` each model is first exported to ONNX with int8 (``ser export --int8``, what
training now does at its end) and loaded as ``ser predict`` would (runtime and precision auto).

memory: peak RSS of `recognizer.timeline` in a fresh process, 1-minute vs 60-minute file
(sentences with pauses, 16 kHz), tiny model; and the same file predicted with 4 s windows
(`recognizer.predict`, what `ser predict` did before timelines: silence scored too), whose
time is the comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RATE = 16000


def recording(directory: Path, seconds: float, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Synthetic sentences (trimmed), 0.6-1.5 s pauses, until ``seconds``."""
    from live_audio import trimmed
    from ser.data.synthetic import write_synthetic_corpora

    roots = write_synthetic_corpora(directory / "synth", seed=seed, size="tiny")
    clips = [trimmed(p) for p in sorted(roots["ravdess"].rglob("*.wav"))[:24]]
    rng = np.random.default_rng(seed)
    parts, truth, t = [], [], 0.0
    k = 0
    while t < seconds:
        gap = float(rng.uniform(0.6, 1.5))
        parts.append(np.zeros(int(gap * RATE), np.float32))
        t += gap
        clip = clips[k % len(clips)]
        k += 1
        parts.append(clip)
        truth.append((t, t + clip.size / RATE))
        t += clip.size / RATE
    parts.append(np.zeros(RATE, np.float32))
    return np.concatenate(parts), truth


def build_model(kind: str, directory: Path) -> Path:
    import torch

    from ser.model import EmotionClassifier

    if kind == "tiny":
        torch.manual_seed(0)
        return EmotionClassifier("tiny").export(directory / "tiny")
    from inference import export_model  # bench/inference.py: wav2vec2-base config, random

    return export_model(directory / "base", seed=0)


def run_streams(recognizer, audio: np.ndarray, truth, streams: int, keeping_up: bool) -> dict:
    from ser.inference.live import LiveSession

    lock = threading.Lock()
    latencies: list[float] = []
    busy = [0.0]
    chunk = RATE // 10
    barrier = threading.Barrier(streams)
    sessions: list = []

    def one(index: int) -> None:
        session = LiveSession(recognizer, partial_hop=1.0)
        sessions.append(session)
        ends = [end for _, end in truth]
        barrier.wait()
        began = time.perf_counter()
        for first in range(0, audio.size, chunk):
            fed = (first + chunk) / RATE
            delay = began + fed - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with lock:
                t0 = time.perf_counter()
                events = session.feed(audio[first:first + chunk], keeping_up=keeping_up)
                done = time.perf_counter()
                busy[0] += done - t0
            for e in events:
                if e.kind != "segment":
                    continue
                speech_end = min(ends, key=lambda x: abs(x - e.end))
                latencies.append(done - (began + speech_end))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = np.array(latencies)
    return {"streams": streams, "keeping_up": keeping_up, "segments": int(lat.size),
            "early_scored": sum(x.early_scored for x in sessions),
            "early_used": sum(x.early_used for x in sessions),
            "p50_ms": round(float(np.percentile(lat, 50)) * 1000),
            "p95_ms": round(float(np.percentile(lat, 95)) * 1000),
            "rtf": round(busy[0] / (audio.size / RATE), 3)}


def latency(args: argparse.Namespace) -> int:
    import torch

    from inference import cpu_pressure, machine
    from ser.inference import EmotionRecognizer

    torch.set_num_threads(args.threads)
    print(json.dumps(machine()))
    with tempfile.TemporaryDirectory() as tmp:
        audio, truth = recording(Path(tmp), args.seconds)
        print(f"recording: {audio.size / RATE:.1f} s, {len(truth)} sentences; "
              f"threads {args.threads}; cpu pressure {cpu_pressure()}")
        for kind in args.models:
            folder = build_model(kind, Path(tmp))
            if args.runtime == "onnx":
                from ser.inference.export import export_onnx

                folder = export_onnx(folder, Path(tmp) / f"{kind}-onnx", int8=True).folder
            recognizer = EmotionRecognizer.from_pretrained(folder, device="cpu")
            print(f"{kind}: {recognizer.runtime.description}", flush=True)
            recognizer.probabilities([audio[:RATE * 2]])  # warm-up
            for streams in args.streams:
                for keeping_up in (False, True):
                    row = run_streams(recognizer, audio, truth, streams, keeping_up)
                    print(json.dumps({"model": kind, **row}), flush=True)
    return 0


def _measure(mode: str, model: str, path: str) -> None:
    """In a child process: run one pass, print seconds and peak RSS."""
    import torch

    from ser.inference import EmotionRecognizer

    torch.set_num_threads(2)
    recognizer = EmotionRecognizer.from_pretrained(model, device="cpu")
    t0 = time.perf_counter()
    if mode == "timeline":
        result = recognizer.timeline(path)
        extra = {"segments": len(result.segments), "speech_s": round(result.speech_seconds, 1)}
    else:
        result = recognizer.predict(path)
        extra = {"windows": len(result.windows)}
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "seconds": round(seconds, 1), "peak_rss_mb": round(rss),
                      **extra}))


def memory(args: argparse.Namespace) -> int:
    import soundfile as sf

    from inference import machine

    print(json.dumps(machine()))
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model("tiny", Path(tmp))
        audio, _ = recording(Path(tmp), 60.0)
        for minutes in args.minutes:
            path = Path(tmp) / f"{minutes}min.wav"
            with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as out:
                for _ in range(int(minutes)):
                    out.write(audio[: 60 * RATE])
            for mode in args.modes:
                out = subprocess.run([sys.executable, __file__, "_measure", mode, str(model),
                                      str(path)], capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                print(json.dumps({"minutes": minutes, **row}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_measure":
        _measure(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--models", nargs="+", default=["tiny", "base"])
    lat.add_argument("--streams", nargs="+", type=int, default=[1, 4, 16])
    lat.add_argument("--seconds", type=float, default=20.0)
    lat.add_argument("--threads", type=int, default=2)
    lat.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                     help="onnx: export each model (int8) and run what ser predict runs")
    mem = sub.add_parser("memory")
    mem.add_argument("--minutes", nargs="+", type=int, default=[1, 60])
    mem.add_argument("--modes", nargs="+", default=["timeline", "windows"])
    args = parser.parse_args(argv)
    return latency(args) if args.what == "latency" else memory(args)


if __name__ == "__main__":
    sys.exit(main())
