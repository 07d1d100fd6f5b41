"""Leakage-audit calibration on text-to-speech: copies must match, other readings never.

    python bench/audit_tts.py                          # espeak-ng must be installed (Debian)
    python bench/audit_tts.py --voices 6 --append bench/BENCHMARKS.md

Why text-to-speech: it makes the hardest negatives cheaply. espeak-ng reads RAVDESS's two
sentences in several voices and eight "emotions" (pitch, speed, range and loudness settings),
each twice: the second take differs only by ~3 % of speed and pitch. The audit's coarse stage
(band energies) scores such readings up to ~0.98, since the words and their timing are the same.
Positives: the first take under every transform the README lists (bench/audit.py's TRANSFORMS).
Negatives: every other pair of readings of the same sentence (other voice, other emotion, the
other take). Prints the coarse and fine score distributions of both and the threshold margin.
Exits 1 if a copy scores below the audit's threshold or a negative at or above it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.audit import TRANSFORMS, plant  # noqa: E402
from ser.audio import load_audio  # noqa: E402
from ser.audit.fingerprint import fingerprint  # noqa: E402
from ser.audit.match import COARSE_MIN, DEFAULT_THRESHOLD, score_pairs  # noqa: E402

SENTENCES = ("Kids are talking by the door", "Dogs are sitting by the door")
VOICES = ("en-us+m1", "en-us+f2", "en-gb+m3", "en-gb-scotland+f4", "en-029+m7", "en-gb-x-rp+f1",
          "en-us+m4", "en-gb+f3")
# emotion -> (pitch 0-99, speed words/min, pitch range % of the voice's, amplitude 0-200)
EMOTIONS = {"neutral": (50, 160, 100, 100), "calm": (45, 140, 60, 90),
            "happy": (65, 180, 160, 110), "sad": (35, 120, 40, 80),
            "angry": (55, 190, 140, 160), "fearful": (75, 200, 180, 100),
            "disgust": (40, 150, 80, 110), "surprised": (80, 170, 200, 120)}
TAKE2 = (1.03, 3)  # the second take: speed x1.03, pitch +3 (of 0-99, ~3 %)


def espeak(text: str, voice: str, pitch: int, speed: int, range_: int, amp: int,
           out: Path) -> Path:
    ssml = f'<speak><prosody range="{range_}%">{text}</prosody></speak>'
    subprocess.run(["espeak-ng", "-m", "-v", voice, "-p", str(pitch), "-s", str(speed),
                    "-a", str(amp), "-w", str(out), ssml], check=True, capture_output=True)
    if not out.is_file():  # espeak-ng exits 0 on some bad options
        raise RuntimeError(f"espeak-ng wrote no {out} for voice {voice}")
    return out


def readings(out: Path, n_voices: int) -> dict[tuple[int, str, str, int], Path]:
    """(sentence, voice, emotion, take) -> wav, each written by espeak-ng at 22.05 kHz."""
    out.mkdir(parents=True, exist_ok=True)
    clips = {}
    for (s, text), voice, (emo, (p, sp, r, a)), take in itertools.product(
            enumerate(SENTENCES), VOICES[:n_voices], EMOTIONS.items(), (1, 2)):
        if take == 2:
            sp, p = int(round(sp * TAKE2[0])), min(99, p + TAKE2[1])
        name = f"s{s + 1}_{voice.replace('+', '-')}_{emo}_take{take}.wav"
        clips[(s, voice, emo, take)] = espeak(text, voice, p, sp, r, a, out / name)
    return clips


def describe(name: str, x: np.ndarray, high: bool) -> str:
    if not x.size:
        return f"{name}: none"
    pct = np.percentile(x, 99 if high else 1)
    return (f"{name} ({x.size}): min {x.min():.3f}, {'99th' if high else '1st'} pct {pct:.3f}, "
            f"median {np.median(x):.3f}, max {x.max():.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=int, default=6, help=f"voices used (max {len(VOICES)})")
    ap.add_argument("--append", type=Path, default=None, metavar="BENCHMARKS.md")
    args = ap.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("error: espeak-ng is not installed (apt-get install espeak-ng)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ser-audit-tts-"))
    t0 = time.perf_counter()
    clips = readings(work / "tts", args.voices)
    fps = {k: fingerprint(load_audio(p)) for k, p in clips.items()}
    pos_c: dict[str, list[float]] = {t: [] for t in TRANSFORMS}
    pos_f: dict[str, list[float]] = {t: [] for t in TRANSFORMS}
    neg: dict[str, list[tuple[float, float]]] = {"other voice": [], "same voice, other emotion":
                                                 [], "same voice and emotion, other take": []}
    for key, fp in fps.items():
        s, voice, emo, take = key
        if take == 1:
            out = work / "copies" / clips[key].stem
            out.mkdir(parents=True)
            copies = [fingerprint(load_audio(plant(str(clips[key]), t, out))) for t in TRANSFORMS]
            for t, c, f in zip(TRANSFORMS, *score_pairs(fp, copies)):
                pos_c[t].append(float(c))
                pos_f[t].append(float(f))
        others = [k for k in fps if k[0] == s and k > key]  # each unordered pair once
        for k, c, f in zip(others, *score_pairs(fp, [fps[k] for k in others])):
            kind = ("other voice" if k[1] != voice else "same voice, other emotion"
                    if k[2] != emo else "same voice and emotion, other take")
            neg[kind].append((float(c), float(f)))
    seconds = time.perf_counter() - t0
    all_pf = np.concatenate([np.array(v) for v in pos_f.values()])
    all_pc = np.concatenate([np.array(v) for v in pos_c.values()])
    all_n = np.array([x for v in neg.values() for x in v])
    lines = [f"espeak-ng {len(SENTENCES)} sentences x {args.voices} voices x {len(EMOTIONS)} "
             f"emotions x 2 takes = {len(clips)} readings; {len(TRANSFORMS)} transformed copies "
             f"of each first take ({seconds:.0f} s)",
             describe("copies, coarse score", all_pc, high=False),
             describe("copies, fine score", all_pf, high=False),
             "copies, fine score by transform (min): "
             + ", ".join(f"{t} {min(v):.3f}" for t, v in pos_f.items())]
    for kind, v in neg.items():
        arr = np.array(v).reshape(-1, 2)
        lines.append(describe(f"{kind}, coarse score", arr[:, 0], high=True))
        lines.append(describe(f"{kind}, fine score", arr[:, 1], high=True))
    verified = all_n[all_n[:, 0] >= COARSE_MIN]
    false = int((verified[:, 1] >= DEFAULT_THRESHOLD).sum())
    missed = int(((all_pf < DEFAULT_THRESHOLD) | (all_pc < COARSE_MIN)).sum())
    lines.append(f"negatives with coarse >= {COARSE_MIN} (verified): {len(verified)} of "
                 f"{len(all_n)}; false matches at threshold {DEFAULT_THRESHOLD}: {false}; copies "
                 f"missed: {missed} of {all_pf.size}; margin: lowest copy {all_pf.min():.3f} vs "
                 f"highest negative {all_n[:, 1].max():.3f} (fine)")
    print("\n".join(lines))
    if args.append:
        cmd = "python bench/audit_tts.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with args.append.open("a") as fh:
            fh.write(f"\n### Leakage audit calibration on text-to-speech\n\n"
                     f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}"
                     f", {os.cpu_count()} CPUs.\n\n`{cmd.strip()}`\n\n"
                     + "\n".join(f"- {line}" for line in lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if false or missed else 0


if __name__ == "__main__":
    sys.exit(main())
