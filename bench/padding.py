"""Padding in one training epoch: length-grouped batches vs plain random batches.

Every padded sample costs the same compute in Wav2Vec2 as a real one, so the padded fraction is
the share of a training epoch's forward/backward work that is wasted.

    python bench/padding.py                      # 6,798 clips, durations drawn like the corpus
    python bench/padding.py --root data/demo/indonesian   # header durations of a real corpus

Exits 1 when grouping leaves more than --limit (10 %) padding at any batch size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.data.batching import (  # noqa: E402
    LengthGroupedBatchSampler,
    effective_lengths,
    length_sorted_batches,
    padded_fraction,
    random_batches,
)

N_TRAIN = 6798  # the Kaggle training set


def drawn_durations(n: int, seed: int) -> np.ndarray:
    """Clip lengths like the corpus's: lognormal around 3.5 s, kept within 2-6 s."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(mean=np.log(3.5), sigma=0.3, size=n), 2.0, 6.0)


def corpus_durations(root: Path) -> np.ndarray:
    """Header durations of the files a model would train on: train/ of a Kaggle root, the speech
    files of a RAVDESS root, or every audio file of another folder."""
    from ser.data.corpora import corpus_files, header_durations

    try:
        paths = corpus_files(root, training=True)[1]
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None
    durations = header_durations(paths)
    unreadable = int(np.isnan(durations).sum())
    if unreadable:
        print(f"note: {unreadable} unreadable headers counted as length 0")
    return durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="corpus folder to take durations from (default: drawn)")
    parser.add_argument("--n", type=int, default=N_TRAIN, help="clips to draw (no --root)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--max-seconds", type=float, default=6.0,
                        help="training crop length (the data module's max_train_seconds)")
    parser.add_argument("--bucket-size-multiplier", type=int, default=50)
    parser.add_argument("--limit", type=float, default=0.10,
                        help="largest padded fraction accepted with grouping")
    args = parser.parse_args(argv)

    raw = corpus_durations(args.root) if args.root else drawn_durations(args.n, args.seed)
    durations = effective_lengths(raw, args.max_seconds)
    known = raw[~np.isnan(raw)]
    source = str(args.root) if args.root else f"drawn (lognormal ~3.5 s, seed {args.seed})"
    print(f"clips: {len(raw)}  source: {source}")
    print(f"duration s: min {known.min():.2f}  median {np.median(known):.2f}  "
          f"mean {known.mean():.2f}  max {known.max():.2f}  (cropped at {args.max_seconds:g} s)")
    print()
    print(f"{'batch':>5}  {'random':>8}  {'grouped':>8}  {'ratio':>6}  {'eval sorted':>11}")
    worst = 0.0
    for batch_size in args.batch_sizes:
        random = padded_fraction(durations, random_batches(len(durations), batch_size,
                                                           seed=args.seed))
        grouped = padded_fraction(durations, LengthGroupedBatchSampler(
            durations, batch_size, seed=args.seed,
            bucket_size_multiplier=args.bucket_size_multiplier))
        evaluation = padded_fraction(durations, length_sorted_batches(
            range(len(durations)), durations, batch_size))
        ratio = random / grouped if grouped > 0 else float("inf")
        print(f"{batch_size:>5}  {random:>8.2%}  {grouped:>8.2%}  {ratio:>5.1f}x  "
              f"{evaluation:>11.2%}")
        worst = max(worst, grouped)
    print()
    print("padded fraction = padding samples / samples in the padded batch tensors, one epoch")
    if worst > args.limit:
        print(f"FAIL: grouped padding {worst:.2%} is above {args.limit:.0%}")
        return 1
    print(f"ok: grouped padding at most {worst:.2%} (limit {args.limit:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
