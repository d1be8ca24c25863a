"""``vcr-ext``: dispatch to the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import check, conformance, convert, demo, prune, serve, show


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vcr-ext", description="Record and replay OpenAI API traffic.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (show, check, convert, serve, prune, demo, conformance):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
