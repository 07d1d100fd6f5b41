"""What verifying checksums.json costs when a model folder is loaded (issue 14, item 7).

A folder with one ``model.safetensors`` of ``--mb`` MB of float32 weights (the default 1,270 MB
is XLSR-large's size) is read the way loading reads it, with and without the SHA-256
verification, in alternating rounds (the file stays in the page cache, as on a second load).

    python bench/checksums.py [--mb 1270] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ser.checksums import verify_checksums, write_checksums


def load(path: Path) -> None:
    """What from_pretrained does with the file: map it and copy the tensors into parameters."""
    for tensor in load_file(str(path)).values():
        tensor.clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1270)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_file({"w": torch.zeros(args.mb * 2**20 // 4)}, str(folder / "model.safetensors"))
        write_checksums(folder)
        plain, verified = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            load(folder / "model.safetensors")
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            verify_checksums(folder)
            load(folder / "model.safetensors")
            verified.append(time.perf_counter() - start)
    a, b = statistics.median(plain), statistics.median(verified)
    print(f"cpu: {platform.processor() or platform.machine()}, weights: {args.mb} MB, "
          f"rounds: {args.rounds} (median)")
    print(f"load (map + copy) only:            {a:.3f} s")
    print(f"verify sha256 + load (map + copy): {b:.3f} s  ({b / a:.2f}x; verification adds {b - a:.3f} s, "
          f"{args.mb / max(b - a, 1e-9):.0f} MB/s)")


if __name__ == "__main__":
    main()
