"""``vcr-ext serve PATH... [--port N]``: replay cassettes as a live OpenAI-compatible HTTP server.

Any client, in any language, pointed at the printed base URL gets the recorded answers,
matched as ``use_cassette`` matches them (see :mod:`vcr_ext.replay_server`). With
``--record-mode once --upstream URL`` it is a recording proxy instead: misses go
upstream, are recorded and saved at once.

Standard output gets one line, ``http://127.0.0.1:PORT/v1``, once the server listens;
everything else goes to standard error. SIGINT or SIGTERM stops it: no new connection
is accepted, responses under way finish, and it exits 0 (a second signal stops it at
once; every recording answered so far is already saved, and saves are atomic).

Exit codes: 0 after a clean shutdown; 1 if a recording could not be saved (a secret
found by the scanner, a full disk: the client was answered, the cassette on disk was
left as it was); 2 for bad arguments, a missing or unreadable cassette (the message
names the file, the record and the field) or a port that cannot be bound.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import CassetteFormatError
from ..replay_server import NO_MATCH_CODE, NO_MATCH_STATUS, RECORD_MODES, ReplayServer

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="replay cassettes as an OpenAI-compatible HTTP server (or record through it)",
        description=(
            "Replay cassettes (directory cassettes, one-file .json cassettes, llama-stack recordings/ "
            "folders) on http://127.0.0.1:PORT/v1, matching requests as vcr_ext's use_cassette does. "
            f"A request no recording answers gets a {NO_MATCH_STATUS} in OpenAI's error shape "
            f"(code {NO_MATCH_CODE!r}) explaining the closest recording's difference. The URL is printed "
            "on stdout once listening. Exit codes: 0 clean shutdown (SIGINT/SIGTERM), 1 a recording "
            "could not be saved, 2 bad arguments, unreadable cassette or port in use."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="cassettes to serve; recordings are saved to the first, the others are only read",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    parser.add_argument(
        "--record-mode",
        choices=RECORD_MODES,
        default="none",
        help="none (default): replay only; once: record misses into a cassette that does not exist "
        "yet; new_episodes: record every miss (both need --upstream)",
    )
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="base URL misses are forwarded to when recording (e.g. https://api.openai.com/v1), "
        "with the client's headers; no request header is ever recorded",
    )
    parser.add_argument(
        "--repeat",
        action="store_true",
        help="let a recording play any number of times (default: each plays once, as in vcrpy)",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    parser.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"vcr-ext serve: {message}", file=sys.stderr)
    return 2


def _check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, or ``None``."""
    if not 0 <= args.port <= 65535:
        return f"--port {args.port}: expected 0 to 65535"
    if args.record_mode == "none" and args.upstream is not None:
        return "--upstream is used only when recording: add --record-mode once (or new_episodes)"
    if args.record_mode != "none" and args.upstream is None:
        return f"--record-mode {args.record_mode} records from an upstream: add --upstream URL"
    # Only the cassette recorded into may be missing (the first recording creates it).
    may_be_missing = {0} if args.record_mode != "none" else set()
    for index, path in enumerate(args.paths):
        if index not in may_be_missing and not os.path.lexists(path):
            return f"{path}: no such cassette (a file, a directory or a llama-stack recordings/ folder)"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _check_arguments(args)
    if problem is not None:
        return _fail(problem)
    stop = threading.Event()
    signals_seen = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            # The operator insists: stop now. Saves are atomic, so nothing is half-written.
            os._exit(128 + signum)
        stop.set()

    # Installed before the URL is printed: a client may signal as soon as it reads it.
    previous = {sig: signal.signal(sig, on_signal) for sig in _SIGNALS}
    try:
        try:
            server = ReplayServer(
                args.paths,
                record_mode=args.record_mode,
                upstream=args.upstream,
                allow_playback_repeats=args.repeat,
                port=args.port,
                log=None if args.quiet else sys.stderr,
            )
        except CassetteFormatError as exc:
            return _fail(f"cannot read the cassette: {exc}")
        except ValueError as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        for skipped in server.persister.skipped:
            where = skipped.path if skipped.index is None else f"{skipped.path}, record {skipped.index}"
            print(f"vcr-ext serve: skipped {where}: {skipped.reason}", file=sys.stderr)
        with server:
            print(
                f"vcr-ext serve: {server.interactions} recording(s) from {', '.join(server.paths)}, "
                f"record mode {args.record_mode}" + (f", upstream {args.upstream}" if args.upstream else ""),
                file=sys.stderr,
                flush=True,
            )
            print(server.base_url, flush=True)
            stop.wait()
            server.stop_accepting()
            print(
                "vcr-ext serve: stopping: no longer accepting, finishing responses under way",
                file=sys.stderr,
                flush=True,
            )
        stats = server.stats
        print(
            f"vcr-ext serve: stopped: {stats.played} played, {stats.recorded} recorded, "
            f"{stats.missed} missed",
            file=sys.stderr,
            flush=True,
        )
        if stats.save_failures:
            print(f"vcr-ext serve: {len(stats.save_failures)} recording(s) not saved:", file=sys.stderr)
            for reason in stats.save_failures:
                print(f"  {reason}", file=sys.stderr)
            return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
