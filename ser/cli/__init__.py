"""The ``ser`` command: one sub-command per job, each a thin shell over a plain function.

``parser`` builds the command line (:func:`build_parser`), ``commands`` holds each sub-command's
body; ``python -m ser.cli`` runs :func:`main` (``__main__``).
"""

from __future__ import annotations

import logging

from ser.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's), set up logging, run the sub-command; its exit
    status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


__all__ = ["build_parser", "main"]
