"""Inference speed: EmotionRecognizer.predict_many against a loop over transformers.pipeline.

    python bench/inference.py                       # 200 files, 2 threads (about 8 minutes)
    python bench/inference.py --files 40            # a quick run
    python bench/inference.py --int8                # also time the int8 (--quantize) path
    python bench/inference.py --paths pipeline torch_fp32 onnx_fp32 onnx_int8 --size large

Paths (``--paths``; default: pipeline, torch_fp32, torch_fp32_plain, torch_int8, onnx_fp32,
onnx_int8): ``torch_fp32`` is EmotionRecognizer in PyTorch fp32 with the time-major encoder of
``ser/inference/speedups.py``, ``torch_fp32_plain`` the same without it, ``torch_int8``
``quantize=True``, ``torch_bf16`` bf16 autocast, ``onnx_fp32`` / ``onnx_int8`` ONNX Runtime on
the ``ser export --onnx --int8`` folder, ``default`` what ``ser predict --model FOLDER`` does with
no flags on that folder (runtime and precision "auto").

A wav2vec2-base-sized model (hidden 768, 12 layers, layer-norm feature encoder so attention
masks are valid; random weights), or with ``--size large`` the XLSR-large architecture of the
default backbone (hidden 1024, 24 layers, 16 heads, 4096 intermediate, layer-norm encoder,
stable layer norm; random weights, ~316 M parameters), is exported with EmotionClassifier.export
to a temporary folder, and N files of 2-6 s of seeded speech-like noise are written at 48 kHz.

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
model's useful FLOPs (analytic, padding excluded, checked against FlopCounterMode). With an
ONNX path, the model's Linear layers alone are also timed once, PyTorch fp32 against ONNX
Runtime's dynamic int8 (:func:`linear_ceiling`): what int8 gains on most of the model's work
on this CPU, to set the end-to-end figures against.
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


SIZES = {
    # wav2vec2-base sizes with the layer-norm ("stable") variant
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, conv_bias=False),
    # XLSR-53 / XLS-R 300M: the default backbone's architecture
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096, conv_bias=True),
}


def base_config(size: str = "base"):
    """The benchmark architecture, layer-norm feature encoder, six labels; built offline."""
    from transformers import Wav2Vec2Config

    from ser.labels import ID2LABEL, LABEL2ID

    return Wav2Vec2Config(
        **SIZES[size], feat_extract_norm="layer", do_stable_layer_norm=True,
        num_labels=6, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
        mask_time_prob=0.0, layerdrop=0.0,
    )


def export_model(directory: Path, seed: int, size: str = "base") -> Path:
    """A random backbone folder, then the project's own export of the classifier."""
    import torch
    from transformers import Wav2Vec2Model

    from ser.backbones import default_feature_extractor
    from ser.model import EmotionClassifier

    torch.manual_seed(seed)
    config = base_config(size)
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


def _linear_ceiling(conn, config_kwargs: dict, threads: int, frames: int, rounds: int) -> None:
    """In its own process, with OpenMP threads that sleep when idle: in one process, torch's
    spinning OpenMP workers halved ONNX Runtime's int8 rate (115 against 290 GMAC/s)."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    torch.set_num_threads(threads)
    hidden, inner = config_kwargs["hidden_size"], config_kwargs["intermediate_size"]
    shapes = [(hidden, hidden, 4), (hidden, inner, 1), (inner, hidden, 1)]  # QKV+out, FF in, out
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    rng = np.random.default_rng(0)
    sessions, weights = {}, {}
    for k, n, _ in shapes:
        node = helper.make_node("DynamicQuantizeMatMul", ["a", "w", "scale", "zero"], ["y"],
                                domain="com.microsoft")
        graph = helper.make_graph(
            [node], "linear", [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["m", k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
            initializer=[numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8),
                                                 "w"),
                         numpy_helper.from_array(np.array(0.01, np.float32), "scale"),
                         numpy_helper.from_array(np.array(0, np.int8), "zero")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                        helper.make_opsetid("com.microsoft", 1)])
        sessions[k, n] = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                              providers=["CPUExecutionProvider"])
        weights[k, n] = torch.randn(n, k)
    inputs = {k: rng.standard_normal((frames, k)).astype(np.float32) for k in (hidden, inner)}

    def int8_layer() -> None:
        for k, n, count in shapes:
            for _ in range(count):
                sessions[k, n].run(None, {"a": inputs[k]})

    def fp32_layer() -> None:
        with torch.inference_mode():
            for k, n, count in shapes:
                for _ in range(count):
                    torch.nn.functional.linear(torch.from_numpy(inputs[k]), weights[k, n])

    macs = frames * sum(k * n * count for k, n, count in shapes)
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for number in range(rounds + 1):  # round 0 warms up
        order = [("fp32", fp32_layer), ("int8", int8_layer)][:: 1 if number % 2 else -1]
        for name, layer in order:
            start = time.perf_counter()
            for _ in range(5):
                layer()
            if number:
                times[name].append((time.perf_counter() - start) / 5)
    fp32, int8 = np.array(times["fp32"]), np.array(times["int8"])
    conn.send({"frames": frames, "fp32_gmacs": macs / float(np.median(fp32)) / 1e9,
               "int8_gmacs": macs / float(np.median(int8)) / 1e9,
               "int8_vs_fp32": float(np.median(fp32 / int8))})


def linear_ceiling(size: str, threads: int, frames: int = 700, rounds: int = 7) -> dict:
    """How much faster ONNX Runtime's dynamic int8 runs this model's Linear layers (one
    transformer layer's shapes, ``frames`` rows: a batch of four 3.5 s clips) than PyTorch fp32
    on this CPU, paired rounds alternated. The Linear layers are most of the model's work, so
    an int8 path's end-to-end gain comes near this figure only if the rest of the model
    (attention, convolutions, element-wise work) gains as much (on the Zen 4 of
    bench/BENCHMARKS.md: 4.8x for the Linear layers, 3.65x end to end)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_linear_ceiling,
                          args=(child, SIZES[size], threads, frames, rounds))
    process.start()
    result = parent.recv()
    process.join(timeout=60)
    return result


# --------------------------------------------------------------------------------------------
# The two paths, each in its own process


def _peak_rss_mb() -> dict[str, float]:
    """This process's peak from /proc (VmHWM) where there is one: Linux carries ru_maxrss over
    fork and exec, so a path process spawned after the export (2.7 GB at the base size) would
    report the parent's peak as its own."""
    try:
        status = Path("/proc/self/status").read_text()
        self_kb = float(status.split("VmHWM:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"main": self_kb / 1024, "workers": children_kb / 1024}


def _quiet() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


# path name -> (which model folder, EmotionRecognizer.from_pretrained options)
OURS = {
    "torch_fp32": ("hf", {"runtime": "torch", "precision": "fp32"}),
    "torch_fp32_plain": ("hf", {"runtime": "torch", "precision": "fp32", "fast_encoder": False}),
    "torch_int8": ("hf", {"runtime": "torch", "quantize": True}),
    "torch_bf16": ("hf", {"runtime": "torch", "precision": "bf16"}),
    "onnx_fp32": ("onnx", {"runtime": "onnx", "precision": "fp32"}),
    "onnx_int8": ("onnx", {"runtime": "onnx", "quantize": True}),
    # one clip at a time on every core (the ONNX runtime before clips side by side)
    "onnx_int8_one_clip": ("onnx", {"runtime": "onnx", "quantize": True, "clips_at_once": 1}),
    "default": ("onnx", {}),
}
DEFAULT_PATHS = ["pipeline", "torch_fp32", "torch_fp32_plain", "torch_int8", "onnx_fp32",
                 "onnx_int8"]


def _ours(conn, model: str, threads: int, batch_size: int, workers: int,
          options: dict) -> None:
    import torch

    _quiet()

    from ser.inference import EmotionRecognizer

    recognizer = EmotionRecognizer.from_pretrained(model, threads=threads, **options)
    conn.send({"runtime": recognizer.runtime.description})
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
    parser.add_argument("--paths", nargs="+", default=None, choices=["pipeline", *OURS],
                        help="paths to time (default: %s)" % " ".join(DEFAULT_PATHS))
    parser.add_argument("--size", choices=sorted(SIZES), default="base",
                        help="base: wav2vec2-base sizes; large: the XLSR-large architecture")
    parser.add_argument("--exporter", choices=["legacy", "dynamo"], default="legacy")
    parser.add_argument("--reuse", type=Path, default=None, metavar="DIR",
                        help="a folder kept by an earlier run (--keep) of the same --size: its "
                             "model/ and onnx/ are used instead of exporting again")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the model and files")
    args = parser.parse_args(argv)

    import torch

    _quiet()
    torch.set_num_threads(args.threads)
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="ser-bench-"))
    try:
        return run(args, argv, tmp)
    finally:
        if args.keep or args.reuse:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, argv: list[str] | None, tmp: Path) -> int:
    import torch
    import transformers

    started = time.perf_counter()
    model = str(tmp / "model") if args.reuse else str(export_model(tmp, args.seed, args.size))
    names = list(args.paths or DEFAULT_PATHS)
    if args.int8 and "torch_int8" not in names:
        names.append("torch_int8")
    if "pipeline" not in names:
        names.insert(0, "pipeline")
    export_seconds = None
    onnx_dir = tmp / "onnx"
    if args.reuse and (onnx_dir / "onnx_export.json").is_file():
        record = json.loads((onnx_dir / "onnx_export.json").read_text())
        export_seconds = record.get("seconds")
        print(f"reusing {onnx_dir}; its export's parity {json.dumps(record['parity'])}")
    elif any(OURS[n][0] == "onnx" for n in names if n in OURS):
        from ser.inference.export import export_onnx
        from ser.inference.export_command import calibration_clips

        # The int8 convolutions' ranges: other files of the same kind as the timed ones.
        write_files(tmp / "calibration", 16, args.seed + 1)
        begin = time.perf_counter()
        exported = export_onnx(model, onnx_dir, int8=True, exporter=args.exporter,
                               calibration=calibration_clips(str(tmp / "calibration")),
                               calibration_source="16 files written like the timed ones, seed + 1")
        export_seconds = time.perf_counter() - begin
        print(f"ONNX export ({args.exporter}) and int8 quantization: {export_seconds:.0f} s; "
              f"parity {json.dumps(exported.parity)}", flush=True)
    folders = {"hf": model, "onnx": str(onnx_dir)}
    paths, audio_seconds = write_files(tmp / "clips", args.files, args.seed)
    config = base_config(args.size)
    lengths = [sf.info(p).frames * 16_000 // RATE for p in paths]
    useful = sum(wav2vec2_flops(config, n) for n in lengths)
    print(f"{args.files} files, {audio_seconds:.0f} s of audio, {useful / 1e12:.2f} TFLOP useful "
          f"work; model {model}", flush=True)

    ctx = mp.get_context("spawn")
    paths_spec = {"pipeline": (_pipeline, (model, args.threads))}
    for name in names:
        if name in OURS:
            folder, options = OURS[name]
            paths_spec[name] = (_ours, (folders[folder], args.threads, args.batch_size,
                                        args.workers, options))
    procs, conns, runtimes = {}, {}, {}
    for name, (target, extra) in paths_spec.items():  # one at a time: loading is memory-heavy
        parent, child = ctx.Pipe()
        procs[name] = ctx.Process(target=target, args=(child, *extra))
        procs[name].start()
        conns[name] = parent
        if name in OURS:
            runtimes[name] = parent.recv()["runtime"]
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

    ceiling = None
    if any(OURS[name][0] == "onnx" for name in conns if name in OURS):
        ceiling = linear_ceiling(args.size, args.threads)
        print(f"Linear layers alone ({ceiling['frames']} frames): PyTorch fp32 "
              f"{ceiling['fp32_gmacs']:.0f} GMAC/s, ONNX Runtime dynamic int8 "
              f"{ceiling['int8_gmacs']:.0f} GMAC/s: {ceiling['int8_vs_fp32']:.2f}x", flush=True)

    # FlopCounterMode does not count CPU scaled-dot-product attention: compare without it.
    probe = lengths[:3]
    counted = None
    if "torch_fp32" in conns:
        conns["torch_fp32"].send(("flops", probe))
        counted = conns["torch_fp32"].recv()["flops"]
    analytic = sum(wav2vec2_flops(config, n) - attention_flops(config, n) for n in probe)
    rss = {}
    for name, conn in conns.items():
        conn.send(("stop", None))
        rss[name] = conn.recv()["rss_mb"]
        procs[name].join(timeout=60)

    theirs = np.array(probs["pipeline"])
    reference = np.array(probs["torch_fp32"]) if "torch_fp32" in probs else theirs
    mean_rate = float(np.mean(rates))
    figures = {
        "date": dt.datetime.now().isoformat(timespec="minutes"),
        "command": "python bench/inference.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:]),
        "machine": machine(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "size": args.size, "parameters_m": _parameters_m(config),
        "files": args.files, "audio_seconds": audio_seconds, "threads": args.threads,
        "batch_size": args.batch_size, "workers": args.workers, "rounds": args.rounds,
        "onnx_export_seconds": export_seconds, "exporter": args.exporter,
        "useful_tflop": useful / 1e12,
        "flop_check": {"clips": len(probe), "flop_counter": counted,
                       "analytic_without_attention": analytic},
        "matmul_gflops": {"mean": mean_rate, "max": float(np.max(rates)),
                          "per_round": [round(r, 1) for r in rates]},
        "linear_ceiling": ceiling,
        "paths": {},
        "cpu_pressure_end": cpu_pressure(),
        "wall_seconds": time.perf_counter() - started,
    }
    for name in conns:
        gflops = useful / seconds[name] / 1e9
        mine = np.array(probs[name])
        figures["paths"][name] = {
            "runtime": runtimes.get(name, "transformers.pipeline, PyTorch fp32"),
            "seconds": seconds[name], "files_per_s": args.files / seconds[name],
            "speedup_vs_pipeline": seconds["pipeline"] / seconds[name],
            "rtf": seconds[name] / audio_seconds, "gflops": gflops,
            "share_of_matmul": gflops / mean_rate, "peak_rss_mb": rss[name],
            "failed": len(failed[name]),
            "labels_agree_with_pipeline": f"{int((mine.argmax(1) == theirs.argmax(1)).sum())}"
                                          f"/{args.files}",
            "labels_agree_with_torch_fp32": f"{int((mine.argmax(1) == reference.argmax(1)).sum())}"
                                            f"/{args.files}",
            "max_prob_diff_vs_pipeline": float(np.abs(mine - theirs).max()),
        }
    print(json.dumps(figures, indent=2))
    print(table(figures), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _parameters_m(config) -> float:
    """Parameters in millions, counted on a meta-device model (no memory)."""
    import torch
    from transformers import Wav2Vec2ForSequenceClassification

    with torch.device("meta"):
        model = Wav2Vec2ForSequenceClassification(config)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


def table(figures: dict) -> str:
    """The figures as the markdown table of BENCHMARKS.md."""
    lines = ["| path | runtime | time (s) | files/s | vs pipeline | GFLOP/s | peak RSS (MB) "
             "| labels = pipeline | labels = torch fp32 |", "|---" * 9 + "|"]
    for name, f in figures["paths"].items():
        lines.append(f"| {name} | {f['runtime']} | {f['seconds']:.1f} | {f['files_per_s']:.2f} "
                     f"| {f['speedup_vs_pipeline']:.2f}x | {f['gflops']:.0f} "
                     f"| {f['peak_rss_mb']['main']:.0f} | {f['labels_agree_with_pipeline']} "
                     f"| {f['labels_agree_with_torch_fp32']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
