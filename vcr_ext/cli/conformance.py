"""``vcr-ext conformance [DIR]``: replay every recording of a folder through the real SDK clients.

Prints a table per provider, per endpoint and per kind of call (passed, failed, skipped
in each replay mode), every skipped recording with its reason, and every failure with
the first differing field or the exception. Exit code 1 if any replay failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import conformance


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "conformance",
        help="replay every recording of a directory through the openai/ollama clients and report",
        description=(
            "Replay every recording of DIR through the client that made it (openai sync and async, "
            "its chat.completions.stream() helper, ollama) and compare the parsed objects with the "
            "recorded ones. Prints tables per provider, endpoint and call; exit code 1 if any replay failed."
        ),
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        help=f"recordings to replay (default: $VCR_EXT_CORPUS/{conformance.CORPUS_NAME})",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=conformance.MODES,
        help="replay only in this mode (repeatable; default: all): sync, async, "
        "helper (chat.completions.stream()), async-helper",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.directory or conformance.default_root()
    if not root.is_dir():
        print(
            f"vcr-ext conformance: {root} is not a directory (set VCR_EXT_CORPUS or pass DIR)",
            file=sys.stderr,
        )
        return 2
    result = conformance.run_all(root, modes=args.mode or conformance.MODES)
    sys.stdout.write(conformance.render(result))
    return 1 if result.failures else 0
