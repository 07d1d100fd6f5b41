"""int8 on an x86 CPU without VNNI: does ONNX Runtime's u8 x s8 saturation change the labels?

    python bench/int8_without_vnni.py --model RUN/model --audio data/demo/ravdess
    python bench/int8_without_vnni.py --model EXPORT --audio DIR --every 10 --cpu Haswell

``model.int8.onnx`` multiplies u8 activations by s8 weights. With AVX-512 VNNI (or AVX-VNNI,
AMX) each product is accumulated in int32. Without it (AVX2 and plain AVX-512: Zen 1-3,
Haswell to Skylake), ONNX Runtime's kernels use ``VPMADDUBSW``, which adds two neighbouring
products into an int16 *with saturation*: 255 x 127 + 255 x 127 comes out as 32,767, not 64,770.
The usual guard is 7-bit weights (``reduce_range``), which cost accuracy on every CPU. Whether
the guard is needed is a question for a trained model's real activations, answered here.

This machine may well have VNNI. ``qemu-x86_64 -cpu CPU`` (qemu-user, 7.2 or later for AVX2)
runs the same Python and the same wheels on an emulated CPU without it, so ONNX Runtime picks
its non-VNNI kernels there. A probe shows it did: a u8 x s8 product that fits natively comes out
saturated under emulation. The script then scores the folder with the toolkit's own path
(``EmotionRecognizer``, ONNX runtime): fp32 and int8 natively, int8 under emulation, and prints
how often each int8 run's top label agrees with fp32, and how far its probabilities move.

Emulation is slow (~50x): ``--every N`` takes every N-th file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.inference import machine  # noqa: E402

PROBE_K = 64  # products per output of the probe: 32 pairs, each 2 x 255 x 127 > 32,767


def saturation_probe() -> dict[str, int]:
    """All-255 u8 activations times all-127 s8 weights through ONNX Runtime's MatMulInteger."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, PROBE_K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 16])],
        initializer=[numpy_helper.from_array(np.full((PROBE_K, 16), 127, np.int8), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": np.full((4, PROBE_K), 255, np.uint8)})[0]
    return {"exact": 255 * 127 * PROBE_K, "got": int(got[0, 0])}


def score(model: str, files: list[str], int8: bool) -> dict:
    """Probabilities of the toolkit's ONNX path, one thread, in input order."""
    from ser.inference import EmotionRecognizer

    start = time.perf_counter()
    recognizer = EmotionRecognizer.from_pretrained(model, runtime="onnx", threads=1,
                                                   **({"quantize": True} if int8
                                                      else {"precision": "fp32"}))
    results = list(recognizer.predict_many(files, num_workers=0))
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} file(s) could not be scored, e.g. {failed[0]}")
    return {"runtime": recognizer.runtime.description,
            "probs": [list(r.prediction.probabilities.values()) for r in results],
            "seconds": time.perf_counter() - start}


def _worker(args: argparse.Namespace) -> int:
    """One scoring run, written as JSON (an int8 run with the probe of the CPU it ran on):
    run natively or under qemu."""
    files = json.loads(Path(args.files).read_text())
    out = {"probe": saturation_probe()} if args.int8 else {}
    out.update(score(args.model, files, args.int8))
    Path(args.out).write_text(json.dumps(out))
    return 0


def _run(emulate: str | None, qemu: str | None, work: Path, name: str, *extra: str) -> dict:
    out = work / f"{name}.json"
    command = [sys.executable, __file__, "--worker", "--out", str(out), *extra]
    if emulate:
        command = [qemu, "-cpu", emulate, *command]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:  # qemu warns about every CPU feature TCG lacks: show only the rest
        tail = [line for line in done.stderr.splitlines() if "TCG doesn't support" not in line]
        raise SystemExit(f"{name} failed ({done.returncode}): " + "\n".join(tail[-20:]))
    return json.loads(out.read_text())


def compare(reference: list, other: list) -> dict:
    a, b = np.array(reference), np.array(other)
    return {"labels_agree": f"{int((a.argmax(1) == b.argmax(1)).sum())}/{len(a)}",
            "agreement": float((a.argmax(1) == b.argmax(1)).mean()),
            "max_prob_diff": float(np.abs(a - b).max()),
            "mean_prob_diff": float(np.abs(a - b).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model folder with model.onnx and model.int8.onnx")
    parser.add_argument("--audio", help="folder of recordings to score")
    parser.add_argument("--every", type=int, default=1, help="take every N-th file")
    parser.add_argument("--cpu", default="EPYC-Milan",
                        help="qemu CPU model without VNNI (default EPYC-Milan: Zen 3, AVX2)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--int8", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    if not args.model or not args.audio:
        parser.error("--model and --audio are required")
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        parser.error("needs qemu-user (apt-get install qemu-user; 7.2 or later for AVX2)")
    from ser.inference.files import expand_inputs

    files = expand_inputs([args.audio]).files[:: args.every]
    if not files:
        parser.error(f"--audio {args.audio}: no audio files there")
    with tempfile.TemporaryDirectory(prefix="ser-vnni-") as tmp:
        work = Path(tmp)
        (work / "files.json").write_text(json.dumps(files))
        common = ["--model", args.model, "--files", str(work / "files.json")]
        fp32 = _run(None, qemu, work, "native-fp32", *common)
        native = _run(None, qemu, work, "native-int8", *common, "--int8")
        every = f", every {args.every}th" if args.every > 1 else ""
        print(f"{len(files)} files of {args.audio}{every}; top labels and probabilities of "
              f"int8 against fp32 (agreement, not accuracy); native int8 "
              f"{native['seconds']:.0f} s; emulating "
              f"{args.cpu} ...", flush=True)
        emulated = _run(args.cpu, qemu, work, "emulated-int8", *common, "--int8")
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout
    figures = {
        "model": args.model, "audio": args.audio, "files": len(files), "every": args.every,
        "machine": machine(), "qemu": version.splitlines()[0] if version else "?",
        "emulated_cpu": args.cpu,
        "probe": {"native": native["probe"], "emulated": emulated["probe"]},
        "runtime": native["runtime"],
        "native_int8_vs_fp32": compare(fp32["probs"], native["probs"]),
        "emulated_int8_vs_fp32": compare(fp32["probs"], emulated["probs"]),
        "emulated_vs_native_int8": compare(native["probs"], emulated["probs"]),
        "seconds": {"native_int8": native["seconds"], "emulated_int8": emulated["seconds"]},
    }
    for where in ("native", "emulated"):
        probe = figures["probe"][where]
        state = "saturated" if probe["got"] != probe["exact"] else "exact"
        print(f"probe {where}: {probe['got']} for {probe['exact']} ({state})")
    for name in ("native_int8_vs_fp32", "emulated_int8_vs_fp32", "emulated_vs_native_int8"):
        c = figures[name]
        print(f"{name}: top labels agree {c['labels_agree']} ({100 * c['agreement']:.1f} %), "
              f"max |prob diff| {c['max_prob_diff']:.3f}, mean {c['mean_prob_diff']:.4f}")
    if figures["probe"]["emulated"]["got"] == figures["probe"]["emulated"]["exact"]:
        print(f"warning: the emulated {args.cpu} did not saturate: ONNX Runtime found a VNNI "
              "kernel there, so this run says nothing about CPUs without one")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
