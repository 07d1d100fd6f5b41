"""Leakage audit speed: 1,440 RAVDESS clips against 6,798 Kaggle training clips, cold and warm.

    python bench/audit.py                       # writes the full synthetic corpora (~2-4 min)
    python bench/audit.py --root /tmp/synth     # reuses corpora written there before
    python bench/audit.py --root DIR --eval-limit 300 --train-limit 1500   # a subset

The synthetic Kaggle corpus holds no RAVDESS clip, so --plant copies are made of RAVDESS clips,
each with one transform (rate, gain, codec, channels, silence), and swapped in for as many
training files. Cold: an empty fingerprint cache; warm: the same audit again. The naive figure
scores a sample of all pairs exactly (what the audit does for its candidates only) and scales
it to every pair. Exits 1 if a planted copy is missed or anything else is matched.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.audit import audit  # noqa: E402
from ser.audit.cache import FingerprintCache  # noqa: E402
from ser.audit.extract import extract  # noqa: E402
from ser.audit.match import best_scores, find_matches, score_pairs  # noqa: E402
from ser.data.corpora import corpus_files  # noqa: E402
from ser.data.kaggle import load_kaggle  # noqa: E402
from ser.data.synthetic import write_synthetic_corpora  # noqa: E402

TRANSFORMS = ("rate16000", "rate22050", "rate44100", "gain-6", "gain+6", "flac", "ogg", "mp3",
              "pcm24", "float", "stereo", "pad0.5", "trim0.2", "trim0.3")


def plant(src: str, kind: str, out: Path) -> Path:
    """Write ``src`` transformed by ``kind`` under ``out``; returns the new file."""
    x, sr = sf.read(src, dtype="float64")
    ext, kw = "wav", {}
    if kind.startswith("rate"):
        rate = int(kind[4:])
        x, sr = soxr.resample(x, sr, rate), rate
    elif kind.startswith("gain"):
        x = np.clip(x * 10 ** (float(kind[4:]) / 20), -1, 1)
    elif kind in ("flac", "ogg", "mp3"):
        ext = kind
        kw = {"flac": {"format": "FLAC"}, "ogg": {"format": "OGG", "subtype": "VORBIS"},
              "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III"}}[kind]
    elif kind == "pcm24":
        kw = {"subtype": "PCM_24"}
    elif kind == "float":
        kw = {"subtype": "FLOAT"}
    elif kind == "stereo":
        x = np.stack([x, 0.8 * x], axis=1)
    elif kind == "pad0.5":
        z = np.zeros(int(0.5 * sr))
        x = np.concatenate([z, x, z])
    elif kind.startswith("trim"):
        cut = int(float(kind[4:]) * sr)
        x = x[cut:-cut]
    path = out / f"{Path(src).stem}_{kind}.{ext}"
    sf.write(path, x, sr, **kw)
    return path


def calibrate(n: int, seed: int) -> list[str]:
    """Score distributions (coarse and fine) on the tiny corpora: each of ``n`` RAVDESS takes
    against its transformed copies (positives) and against every other take of the same actor
    and sentence (negatives: the other repetition, other emotions and intensities)."""
    from ser.audio import load_audio
    from ser.audit.fingerprint import fingerprint

    work = Path(tempfile.mkdtemp(prefix="ser-audit-calib-"))
    rav = sorted(Path(write_synthetic_corpora(work / "corpora", seed=0, size="tiny")["ravdess"])
                 .rglob("*.wav"))
    rng = np.random.default_rng(seed)
    pos: dict[str, list[float]] = {k: [] for k in TRANSFORMS}
    pos_coarse: list[float] = []
    neg: list[tuple[float, float]] = []
    other_rep: list[float] = []
    for src in [rav[i] for i in rng.choice(len(rav), min(n, len(rav)), replace=False)]:
        fp = fingerprint(load_audio(src))
        out = work / src.stem
        out.mkdir()
        copies = [fingerprint(load_audio(plant(str(src), kind, out))) for kind in TRANSFORMS]
        coarse, fine = score_pairs(fp, copies)
        pos_coarse += coarse.tolist()
        for kind, score in zip(TRANSFORMS, fine):
            pos[kind].append(float(score))
        parts = src.stem.split("-")
        siblings = [p for p in rav if p.parent == src.parent and p != src
                    and p.stem.split("-")[4] == parts[4]]
        coarse, fine = score_pairs(fp, [fingerprint(load_audio(p)) for p in siblings])
        neg += list(zip(coarse.tolist(), fine.tolist()))
        other_rep += [float(s) for p, s in zip(siblings, fine)
                      if p.stem.split("-")[:5] == parts[:5]]
    all_pos = np.concatenate([np.array(v) for v in pos.values()])
    neg_a = np.array(neg)
    lines = [f"calibration: {min(n, len(rav))} takes of the tiny synthetic RAVDESS, "
             f"{len(TRANSFORMS)} transforms each"]
    lines += [f"copies ({len(all_pos)}): coarse min {min(pos_coarse):.3f}; fine min "
              f"{all_pos.min():.3f}, 1st pct {np.percentile(all_pos, 1):.3f}, median "
              f"{np.median(all_pos):.3f}; fine by transform (min): "
              + ", ".join(f"{k} {min(v):.3f}" for k, v in pos.items())]
    lines += [f"other takes, same actor and sentence ({len(neg_a)}): coarse max "
              f"{neg_a[:, 0].max():.3f}; fine max {neg_a[:, 1].max():.3f}, 99th pct "
              f"{np.percentile(neg_a[:, 1], 99):.3f}, median {np.median(neg_a[:, 1]):.3f}; the "
              f"other repetition of the same emotion+intensity ({len(other_rep)}): fine max "
              f"{max(other_rep):.3f}"]
    return lines


def naive_seconds(fps: dict, evals: list[str], train: list[str], n_eval: int, n_train: int,
                  seed: int) -> float:
    """Seconds to score all n_eval x n_train pairs exactly, scaled from a random sample."""
    rng = np.random.default_rng(seed)
    e = [evals[i] for i in rng.choice(len(evals), min(20, len(evals)), replace=False)]
    t = [train[i] for i in rng.choice(len(train), min(200, len(train)), replace=False)]
    started = time.perf_counter()
    for p in e:
        best_scores(fps[p].frames, [fps[q].frames for q in t])
    per_pair = (time.perf_counter() - started) / (len(e) * len(t))
    return per_pair * n_eval * n_train


def fine_stage_cost(fps: dict, evals: list[str], train: list[str], rounds: int = 3) -> list[str]:
    """What the fine verification adds, measured in this run in alternating rounds: fingerprint
    time per clip with and without the harmonic structure, and the matching stage with and
    without verifying candidates (COARSE_MIN above 1: nothing verified, the old audit)."""
    import ser.audit.match as match_module
    from ser.audio import load_audio
    from ser.audit.fingerprint import band_energies, harmonic_structure, trim_silence

    clips = [trim_silence(load_audio(p)) for p in evals[:60]]
    e = {p: fps[p] for p in evals if p in fps}
    t = {p: fps[p] for p in train if p in fps}
    coarse_s, fine_s, plain_s, verified_s = [], [], [], []
    saved = match_module.COARSE_MIN
    for _ in range(rounds):
        t0 = time.perf_counter()
        frames = [band_energies(c) for c in clips]
        coarse_s.append((time.perf_counter() - t0) / len(clips))
        t0 = time.perf_counter()
        for c, f in zip(clips, frames):
            harmonic_structure(c, f.shape[0])
        fine_s.append((time.perf_counter() - t0) / len(clips))
        try:
            match_module.COARSE_MIN = 2.0
            t0 = time.perf_counter()
            match_module.find_matches(e, t)
            plain_s.append(time.perf_counter() - t0)
        finally:
            match_module.COARSE_MIN = saved
        t0 = time.perf_counter()
        match_module.find_matches(e, t)
        verified_s.append(time.perf_counter() - t0)
    c, f = min(coarse_s) * 1e3, min(fine_s) * 1e3
    p, v = min(plain_s), min(verified_s)
    return [f"fingerprint per clip (best of {rounds}, decoded audio): band energies {c:.1f} ms, "
            f"harmonic structure {f:.1f} ms (+{100 * f / c:.0f} %)",
            f"matching stage (best of {rounds}): coarse only {p:.2f} s, with fine verification "
            f"{v:.2f} s ({v / max(p, 1e-9):.2f}x)"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None,
                    help="folder for the full synthetic corpora (reused if already there)")
    ap.add_argument("--plant", type=int, default=26, help="transformed copies planted")
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", choices=["tiny", "demo", "full"], default="full",
                    help="synthetic corpus size (tiny/demo only to try the script)")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="first print score distributions measured on N takes (tiny corpora)")
    ap.add_argument("--append", type=Path, default=None, metavar="BENCHMARKS.md",
                    help="append the figures as a section to this file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    calibration = calibrate(args.calibrate, args.seed) if args.calibrate else []
    print("\n".join(calibration))
    work = Path(tempfile.mkdtemp(prefix="ser-audit-bench-"))
    root = args.root or work / "corpora"
    t0 = time.perf_counter()
    roots = write_synthetic_corpora(root, seed=0, size=args.size)
    print(f"corpora ready in {time.perf_counter() - t0:.0f} s: {root}")
    evals = corpus_files(roots["ravdess"])[1][: args.eval_limit]
    train = list(load_kaggle(roots["indonesian"], "train")["path"])[: args.train_limit]
    rng = np.random.default_rng(args.seed)
    planted_dir = work / "planted"
    planted_dir.mkdir()
    sources = [evals[i] for i in rng.choice(len(evals), min(args.plant, len(evals)), replace=False)]
    planted = {str(plant(s, TRANSFORMS[i % len(TRANSFORMS)], planted_dir)): s
               for i, s in enumerate(sources)}
    train = list(planted) + train[len(planted):]  # swapped in: the training set keeps its size

    cache_dir = work / "cache"
    t0 = time.perf_counter()
    cold = audit(train, evals, cache_dir=cache_dir, workers=args.workers)
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = audit(train, evals, cache_dir=cache_dir, workers=args.workers)
    warm_s = time.perf_counter() - t0
    got = extract(train + evals, FingerprintCache(cache_dir), workers=args.workers)
    t0 = time.perf_counter()
    find_matches({p: got.fingerprints[p] for p in evals if p in got.fingerprints},
                 {p: got.fingerprints[p] for p in train if p in got.fingerprints})
    match_s = time.perf_counter() - t0
    naive_s = naive_seconds(got.fingerprints, evals, train, len(evals), len(train), args.seed)
    overhead = fine_stage_cost(got.fingerprints, evals, train)

    pairs = set(zip(cold.matches["train_path"], cold.matches["eval_path"]))
    missed = [p for p, s in planted.items() if (p, s) not in pairs]
    extra = [(t, e) for t, e in pairs if planted.get(t) != e]
    planted_scores = cold.matches[cold.matches["train_path"].isin(list(planted))]["score"]
    lines = [
        f"eval clips {cold.n_eval}, train clips {cold.n_train}, planted {len(planted)}, "
        f"failed {len(cold.failed)}",
        f"cold audit {cold_s:.1f} s (computed {cold.computed}), warm audit {warm_s:.1f} s "
        f"(cache hits {warm.cache_hits}, computed {warm.computed})",
        f"matching stage {match_s:.2f} s; naive all-pairs matching estimated {naive_s:.0f} s "
        f"({naive_s / max(match_s, 1e-9):.0f}x the matching stage, "
        f"{(naive_s + cold_s - match_s) / cold_s:.1f}x the cold audit)",
        f"planted found {len(planted) - len(missed)}/{len(planted)} (scores min "
        f"{planted_scores.min() if len(planted_scores) else float('nan'):.3f}), "
        f"other matches {len(extra)}",
        warm.summary(),
        *overhead,
        *calibration,
    ]
    print("\n".join(lines))
    if args.append:
        cmd = "python bench/audit.py " + " ".join(argv if argv is not None else sys.argv[1:])
        section = (
            f"\n## Leakage audit (`ser audit`)\n\n"
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()} "
            f"{os.cpu_count()} CPUs (shared with other jobs), Python "
            f"{platform.python_version()}.\n\n`{cmd.strip()}`\n\n"
            + "\n".join(f"- {line}" for line in lines) + "\n")
        with args.append.open("a") as fh:
            fh.write(section)
    return 1 if missed or extra else 0


if __name__ == "__main__":
    sys.exit(main())
