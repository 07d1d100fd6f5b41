"""The ``ser`` command: one sub-command per job, each a thin shell over a plain function."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _cmd_synth(args: argparse.Namespace) -> int:
    from ser.data.synthetic import write_synthetic_corpora

    roots = write_synthetic_corpora(args.out_dir, seed=args.seed, size=args.size)
    for layout, root in roots.items():
        print(f"{layout}: {root}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ser.inspect import inspect_corpus

    report = inspect_corpus(args.data_root, figure=args.figure)
    print(report.to_text())
    return 1 if report.fatal else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write synthetic corpora in the Kaggle and RAVDESS layouts")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", choices=["tiny", "demo", "full"], default="demo",
                       help="tiny: a few files per class (tests); demo: the offline demo; "
                            "full: the real corpora's sizes (benchmarks)")
    synth.set_defaults(func=_cmd_synth)

    insp = sub.add_parser("inspect", help="describe a corpus folder and the problems in it")
    insp.add_argument("data_root", type=Path)
    insp.add_argument("--figure", type=Path, default=None,
                      help="where to write the class-distribution PNG "
                           "(default: DATA_ROOT/class_distribution.png, or the current folder "
                           "if DATA_ROOT is read-only)")
    insp.set_defaults(func=_cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
