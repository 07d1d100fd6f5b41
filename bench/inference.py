"""Inference speed: EmotionRecognizer.predict_many against a loop over transformers.pipeline.

    python bench/inference.py                       # 200 files, 2 threads (about 8 minutes)
    python bench/inference.py --files 40            # a quick run
    python bench/inference.py --int8                # also time the int8 (--quantize) path

A wav2vec2-base-sized model (hidden 768, 12 layers, layer-norm feature encoder so attention
masks are valid; random weights) is exported with EmotionClassifier.export to a temporary
folder, and N files of 2-6 s of seeded speech-like noise are written at 48 kHz.

The alternative a user would otherwise write is a loop over
``transformers.pipeline("audio-classification", model=folder)``. Fed a path, the pipeline
decodes with ffmpeg; fed ``{"raw": array, "sampling_rate": 48000}`` it resamples with torchaudio.
Neither is installed here (and the registry's torchaudio is a CUDA build), so the loop decodes
with soundfile and resamples with soxr exactly as our path does, then calls the pipeline on the
16 kHz array: the comparison isolates batching and the model-side work.

Each path runs in its own spawned process (so peak RSS is its own), both with the same thread
count. The files are split into rounds and the two paths alternate round by round, so a busy
neighbour on a shared machine slows both alike. The fp32 matmul rate is measured in the parent
in every round, under the same conditions; the share of it that our path achieves counts the
model's useful FLOPs (analytic, padding excluded, checked against FlopCounterMode).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RATE = 48_000


# --------------------------------------------------------------------------------------------
# Model and data


def base_config():
    """wav2vec2-base sizes with the layer-norm ("stable") variant, six labels."""
    from transformers import Wav2Vec2Config

    from ser.labels import ID2LABEL, LABEL2ID

    return Wav2Vec2Config(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=False,
        num_labels=6, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
        mask_time_prob=0.0, layerdrop=0.0,
    )


def export_model(directory: Path, seed: int) -> Path:
    """A random base-size backbone folder, then the project's own export of the classifier."""
    import torch
    from transformers import Wav2Vec2Model

    from ser.backbones import default_feature_extractor
    from ser.model import EmotionClassifier

    torch.manual_seed(seed)
    config = base_config()
    backbone = directory / "backbone"
    Wav2Vec2Model(config).save_pretrained(backbone)
    default_feature_extractor(config).save_pretrained(backbone)
    torch.manual_seed(seed + 1)
    return EmotionClassifier(str(backbone)).export(directory / "model")


def write_files(directory: Path, count: int, seed: int) -> tuple[list[str], float]:
    """Speech-like noise: a pitched buzz and noise under a syllable-rate envelope, 2-6 s."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths, total = [], 0.0
    for i in range(count):
        seconds = float(rng.uniform(2.0, 6.0))
        t = np.arange(int(seconds * RATE)) / RATE
        f0 = rng.uniform(90, 250)
        voiced = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6)), 0, None)
        wave = envelope * (0.5 * voiced + rng.normal(0, 0.3, t.size))
        path = directory / f"clip{i:04d}.wav"
        sf.write(path, (0.4 * wave / np.abs(wave).max()).astype(np.float32), RATE,
                 subtype="PCM_16")
        paths.append(str(path))
        total += seconds
    return paths, total


# --------------------------------------------------------------------------------------------
# FLOPs and the matmul rate


def wav2vec2_flops(config, samples: int) -> float:
    """Forward FLOPs (2 per multiply-add) of a Wav2Vec2ForSequenceClassification on one clip:
    convolutions, linear layers and the attention products; norms and activations left out."""
    flops, length, channels = 0.0, samples, 1
    for out, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride):
        length = (length - kernel) // stride + 1
        flops += 2 * length * out * channels * kernel
        channels = out
    frames, hidden = length, config.hidden_size
    flops += 2 * frames * channels * hidden  # feature projection
    kernel, groups = config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups
    flops += 2 * (frames + 1 - kernel % 2) * hidden * (hidden // groups) * kernel  # positional conv
    per_layer = (2 * frames * hidden * hidden * 4 + 2 * 2 * frames * frames * hidden
                 + 2 * 2 * frames * hidden * config.intermediate_size)
    flops += config.num_hidden_layers * per_layer
    flops += 2 * frames * hidden * config.classifier_proj_size + 2 * config.classifier_proj_size * 6
    return float(flops)


def attention_flops(config, samples: int) -> float:
    length = samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        length = (length - kernel) // stride + 1
    return float(config.num_hidden_layers * 2 * 2 * length * length * config.hidden_size)


def matmul_rate(threads: int, seconds: float = 1.5, size: int = 4096) -> float:
    """fp32 GFLOP/s of a large square matmul loop (best of the repeats within ``seconds``)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


# --------------------------------------------------------------------------------------------
# The two paths, each in its own process


def _peak_rss_mb() -> dict[str, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"main": self_kb / 1024, "workers": children_kb / 1024}


def _quiet() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _ours(conn, model: str, threads: int, batch_size: int, workers: int, quantize: bool) -> None:
    import torch

    _quiet()

    from ser.inference import EmotionRecognizer

    recognizer = EmotionRecognizer.from_pretrained(model, threads=threads, quantize=quantize)
    while True:
        command, payload = conn.recv()
        if command == "run":
            start = time.perf_counter()
            results = list(recognizer.predict_many(payload, batch_size=batch_size,
                                                   num_workers=workers))
            elapsed = time.perf_counter() - start
            failed = [r.error for r in results if not r.ok]
            probs = [list(r.prediction.probabilities.values()) for r in results if r.ok]
            conn.send({"seconds": elapsed, "probs": probs, "failed": failed})
        elif command == "flops":  # FlopCounterMode on clips of the given lengths, unpadded
            from torch.utils.flop_counter import FlopCounterMode

            total = 0.0
            for i, n in enumerate(payload):
                clip = torch.from_numpy(np.random.default_rng(i).standard_normal(n)
                                        .astype(np.float32))[None]
                # inference_mode trips FlopCounterMode on the weight-norm parametrization.
                with FlopCounterMode(display=False) as counter, torch.no_grad():
                    recognizer.model(input_values=clip,
                                     attention_mask=torch.ones_like(clip, dtype=torch.long))
                total += counter.get_total_flops()
            conn.send({"flops": float(total)})
        else:
            conn.send({"rss_mb": _peak_rss_mb()})
            return


def _pipeline(conn, model: str, threads: int) -> None:
    import soxr
    import torch
    from transformers import pipeline

    _quiet()
    torch.set_num_threads(threads)
    classify = pipeline("audio-classification", model=model, device="cpu")
    order = list(classify.model.config.id2label.values())
    while True:
        command, payload = conn.recv()
        if command == "run":
            start = time.perf_counter()
            probs = []
            for path in payload:
                audio, rate = sf.read(path, dtype="float32")
                if audio.ndim > 1:
                    audio = audio.mean(axis=1)
                audio = soxr.resample(audio, rate, 16_000, quality="HQ").astype(np.float32)
                scores = {d["label"]: d["score"] for d in classify(audio, top_k=len(order))}
                probs.append([scores[label] for label in order])
            conn.send({"seconds": time.perf_counter() - start, "probs": probs, "failed": []})
        else:
            conn.send({"rss_mb": _peak_rss_mb()})
            return


# --------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    info = {"python": platform.python_version(), "cores": str(os.cpu_count())}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Core(s) per socket", "Socket(s)", "Flags"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = info.pop("Flags", "").split()
    info["isa"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                        "amx_bf16") if f in flags)
    return info


def cpu_pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes for our path (default: as ser predict)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--int8", action="store_true", help="also time quantize=True")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the model and files")
    args = parser.parse_args(argv)

    import torch

    _quiet()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="ser-bench-"))
    try:
        return run(args, argv, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, argv: list[str] | None, tmp: Path) -> int:
    import torch
    import transformers

    started = time.perf_counter()
    model = str(export_model(tmp, args.seed))
    paths, audio_seconds = write_files(tmp / "clips", args.files, args.seed)
    config = base_config()
    lengths = [sf.info(p).frames * 16_000 // RATE for p in paths]
    useful = sum(wav2vec2_flops(config, n) for n in lengths)
    print(f"{args.files} files, {audio_seconds:.0f} s of audio, {useful / 1e12:.2f} TFLOP useful "
          f"work; model {model}", flush=True)

    ctx = mp.get_context("spawn")
    paths_spec = {"ours": (_ours, (model, args.threads, args.batch_size, args.workers, False)),
                  "pipeline": (_pipeline, (model, args.threads))}
    if args.int8:
        paths_spec["ours_int8"] = (_ours, (model, args.threads, args.batch_size, args.workers,
                                           True))
    procs, conns = {}, {}
    for name, (target, extra) in paths_spec.items():
        parent, child = ctx.Pipe()
        procs[name] = ctx.Process(target=target, args=(child, *extra))
        procs[name].start()
        conns[name] = parent
    for name, conn in conns.items():  # warm-up: load, first-call allocations
        conn.send(("run", paths[:2]))
        conn.recv()

    rounds = np.array_split(np.arange(args.files), args.rounds)
    seconds = {name: 0.0 for name in conns}
    probs: dict[str, list] = {name: [None] * args.files for name in conns}
    failed: dict[str, list] = {name: [] for name in conns}
    rates = []
    for number, chunk in enumerate(rounds):
        names = list(conns) if number % 2 == 0 else list(reversed(conns))
        rates.append(matmul_rate(args.threads))
        for name in names:
            conns[name].send(("run", [paths[i] for i in chunk]))
            reply = conns[name].recv()
            seconds[name] += reply["seconds"]
            failed[name] += reply["failed"]
            for i, p in zip(chunk, reply["probs"]):
                probs[name][i] = p
        print(f"round {number + 1}/{len(rounds)}: " + ", ".join(
            f"{n} {seconds[n]:.1f} s" for n in conns) + f"; matmul {rates[-1]:.0f} GFLOP/s; "
            f"{cpu_pressure()}", flush=True)
    rates.append(matmul_rate(args.threads))

    # FlopCounterMode does not count CPU scaled-dot-product attention: compare without it.
    probe = lengths[:3]
    conns["ours"].send(("flops", probe))
    counted = conns["ours"].recv()["flops"]
    analytic = sum(wav2vec2_flops(config, n) - attention_flops(config, n) for n in probe)
    rss = {}
    for name, conn in conns.items():
        conn.send(("stop", None))
        rss[name] = conn.recv()["rss_mb"]
        procs[name].join(timeout=60)

    ours = np.array(probs["ours"])
    theirs = np.array(probs["pipeline"])
    agree = int((ours.argmax(1) == theirs.argmax(1)).sum())
    mean_rate = float(np.mean(rates))
    figures = {
        "date": dt.datetime.now().isoformat(timespec="minutes"),
        "command": "python bench/inference.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:]),
        "machine": machine(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "files": args.files, "audio_seconds": audio_seconds, "threads": args.threads,
        "batch_size": args.batch_size, "workers": args.workers,
        "useful_tflop": useful / 1e12,
        "flop_check": {"clips": len(probe), "flop_counter": counted,
                       "analytic_without_attention": analytic},
        "matmul_gflops": {"mean": mean_rate, "max": float(np.max(rates)),
                          "per_round": [round(r, 1) for r in rates]},
        "labels_agree": f"{agree}/{args.files}",
        "max_prob_diff": float(np.abs(ours - theirs).max()),
        "paths": {},
        "cpu_pressure_end": cpu_pressure(),
        "wall_seconds": time.perf_counter() - started,
    }
    for name in conns:
        gflops = useful / seconds[name] / 1e9
        figures["paths"][name] = {
            "seconds": seconds[name], "files_per_s": args.files / seconds[name],
            "rtf": seconds[name] / audio_seconds, "gflops": gflops,
            "share_of_matmul": gflops / mean_rate, "peak_rss_mb": rss[name],
            "failed": len(failed[name]),
        }
    figures["speedup_vs_pipeline"] = seconds["pipeline"] / seconds["ours"]
    if "ours_int8" in conns:
        q = np.array(probs["ours_int8"])
        figures["int8_labels_agree_with_fp32"] = f"{int((q.argmax(1) == ours.argmax(1)).sum())}" \
                                                 f"/{args.files}"
        figures["int8_max_prob_diff"] = float(np.abs(q - ours).max())
        figures["speedup_int8_vs_pipeline"] = seconds["pipeline"] / seconds["ours_int8"]
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
