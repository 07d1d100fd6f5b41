"""Training throughput on this machine: clips/s and padded fraction, length-grouped vs random.

    python bench/train.py                     # tiny and base-size, CPU, 2 threads
    python bench/train.py --models base --clips 48
    python bench/train.py --xlsr-cpu --steps 2 --batch-size 1   # XLSR-large on the CPU

Each step is what Lightning runs per batch (forward, loss, backward, AdamW step) on clips of
2-6 s drawn like the real corpora's durations, batched by the training sampler with and without
length grouping. Random weights: speed does not depend on them. On a CUDA machine it also
measures the XLSR-large architecture at bf16, batch 8, and extrapolates seconds per epoch of
6,798 clips of 3-4 s with the peak GPU memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from ser.audio import TARGET_SR
from ser.data.batching import LengthGroupedBatchSampler, collate_clips, padded_fraction
from ser.model import EmotionClassifier

LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
             intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True)
BASE = dict(feat_extract_norm="layer", do_stable_layer_norm=True)

def durations(n: int, seed: int, low: float = 2.0, high: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(3.5), 0.3, n), low, high)

def random_backbone(directory: Path, **config) -> str:
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**config)).save_pretrained(directory)
    return str(directory)

def make_items(lengths: np.ndarray, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"input_values": rng.standard_normal(int(s * TARGET_SR)).astype(np.float32) * 0.1,
             "label": int(i % 6), "index": i, "error": None} for i, s in enumerate(lengths)]

def measure(module: EmotionClassifier, items: list[dict], batches: list[list[int]],
            device: torch.device, autocast: torch.dtype | None) -> float:
    """Seconds for one pass of training steps over ``batches`` (after one warm-up step)."""
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5)
    module.train().to(device)

    def step(batch_ids: list[int]) -> None:
        batch = collate_clips([items[i] for i in batch_ids])
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            loss, _, _ = module._step(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch_ids in batches:
        step(batch_ids)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start

def bench_cpu(name: str, backbone: str, clips: int, batch_size: int, seed: int) -> None:
    lengths = durations(clips, seed)
    items = make_items(lengths, seed)
    module = EmotionClassifier(backbone, freeze_feature_encoder=name != "tiny")
    results = {}
    for grouped in (True, False):
        sampler = LengthGroupedBatchSampler(lengths, batch_size, seed=seed, group=grouped)
        batches = sampler.batches(0)
        seconds = measure(module, items, batches, torch.device("cpu"), None)
        results[grouped] = (clips / seconds, padded_fraction(lengths, batches),
                            lengths.sum() / seconds)
    for grouped, (cps, pad, audio_rate) in results.items():
        print(f"{name:<6} {'grouped' if grouped else 'random':<8} batch {batch_size:<3} "
              f"{clips:>5} clips  {cps:7.2f} clips/s  {audio_rate:7.2f} s audio/s  "
              f"padded {pad:6.1%}")
    print(f"{name:<6} grouped / random speed: {results[True][0] / results[False][0]:.2f}x")

def bench_gpu(directory: Path, seed: int, steps: int = 20) -> None:
    device = torch.device("cuda")
    lengths = np.random.default_rng(seed).uniform(3.0, 4.0, 8 * (steps + 1))
    items = make_items(lengths, seed)
    module = EmotionClassifier(random_backbone(directory / "large", **LARGE))
    batches = LengthGroupedBatchSampler(lengths, 8, seed=seed).batches(0)[:steps]
    torch.cuda.reset_peak_memory_stats()
    seconds = measure(module, items, batches, device, torch.bfloat16)
    per_clip = seconds / (len(batches) * 8)
    print(f"xlsr-large bf16 batch 8: {len(batches) * 8 / seconds:.1f} clips/s, "
          f"{per_clip * 6798:.0f} s per epoch of 6,798 clips (3-4 s), "
          f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB "
          f"({torch.cuda.get_device_name()})")

XLSR_MODES = {
    # mode: EmotionClassifier options (each mode runs in its own process: peak RSS is per process)
    "full": {},
    "checkpointing": {"gradient_checkpointing": True},
    "frozen": {"freeze_backbone": True},
}


def xlsr_cpu_child(folder: str, mode: str, steps: int, batch_size: int, seconds: float) -> None:
    """One mode in this process: s/step (after one warm-up step) and the process's peak RSS."""
    import resource

    module = EmotionClassifier(folder, **XLSR_MODES[mode])
    items = make_items(np.full(batch_size * (steps + 1), seconds), 0)
    batches = [list(range(i * batch_size, (i + 1) * batch_size)) for i in range(steps + 1)]
    seconds_total = measure(module, items, batches[1:], torch.device("cpu"), None)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    print(f"RESULT {mode} {seconds_total / steps:.2f} {rss:.2f} {trainable}", flush=True)


def bench_xlsr_cpu(directory: Path, steps: int, batch_size: int, seconds: float,
                   threads: int) -> None:
    """XLSR-large (the default checkpoint's shape, random weights) on the CPU, per mode."""
    import subprocess
    import sys

    folder = random_backbone(directory / "xlsr-large", **LARGE)
    results = {}
    for mode in XLSR_MODES:
        done = subprocess.run(
            [sys.executable, __file__, "--xlsr-child", folder, mode, "--steps", str(steps),
             "--batch-size", str(batch_size), "--seconds", str(seconds),
             "--threads", str(threads)], capture_output=True, text=True)
        line = [x for x in done.stdout.splitlines() if x.startswith("RESULT")]
        if done.returncode != 0 or not line:
            print(f"xlsr-large {mode}: failed\n{done.stderr[-2000:]}")
            continue
        _, _, per_step, rss, trainable = line[0].split()
        results[mode] = (float(per_step), float(rss), int(trainable))
    full = results.get("full")
    for mode, (per_step, rss, trainable) in results.items():
        ratio = f"{per_step / full[0]:.2f}x the time, {rss / full[1]:.2f}x the RSS of full" \
            if full else ""
        print(f"xlsr-large CPU {mode:<13} batch {batch_size} x {seconds:g} s: "
              f"{per_step:6.1f} s/step, peak RSS {rss:5.1f} GiB, "
              f"{trainable / 1e6:6.1f} M trainable  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "base"], choices=["tiny", "base"])
    parser.add_argument("--clips", type=int, default=None,
                        help="clips per pass (default: 256 tiny, 48 base)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--xlsr-cpu", action="store_true",
                        help="XLSR-large on the CPU: full fine-tuning, gradient checkpointing, "
                             "frozen backbone (s/step, peak RSS), instead of the default runs")
    parser.add_argument("--steps", type=int, default=2, help="--xlsr-cpu: timed steps per mode")
    parser.add_argument("--seconds", type=float, default=2.0, help="--xlsr-cpu: clip length")
    parser.add_argument("--xlsr-child", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.xlsr_child:
        xlsr_cpu_child(*args.xlsr_child, args.steps, args.batch_size, args.seconds)
        return
    if args.xlsr_cpu:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        with tempfile.TemporaryDirectory() as tmp:
            bench_xlsr_cpu(Path(tmp), args.steps, args.batch_size, args.seconds, args.threads)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for name in args.models:
            backbone = "tiny" if name == "tiny" else random_backbone(tmp_path / name, **BASE)
            clips = args.clips or (256 if name == "tiny" else 48)
            bench_cpu(name, backbone, clips, args.batch_size, args.seed)
        if torch.cuda.is_available():
            bench_gpu(tmp_path, args.seed)
        else:
            print("no CUDA device: the XLSR-large bf16 figure needs a GPU")

if __name__ == "__main__":
    main()
