"""``vcr-ext demo``: record the example suite against an embedded server, then replay it offline.

No network and no API key: an OpenAI-compatible server on 127.0.0.1 stands in for the
API while the suite records with ``--record-mode=once``; then the server is stopped and
the suite runs again with ``--record-mode=none --block-network``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..demo.server import FakeOpenAIServer

SUITE = Path(__file__).resolve().parent.parent / "demo" / "example_suite"
DEMO_KEY = "sk-fake-demo-00000000000000000000000"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo", help="record the example suite offline against an embedded server, then replay it"
    )
    parser.add_argument("--cassettes", type=Path, help="record into this folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary cassette folder")
    parser.set_defaults(run=run)


def _pytest(cassettes: Path, extra_env: dict[str, str], *args: str) -> tuple[int, float, str]:
    env = {**os.environ, "VCR_EXT_CASSETTE_DIR": str(cassettes), **extra_env}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITE),
        "-c",
        str(SUITE / "pytest.ini"),
        "--rootdir",
        str(SUITE),
    ]
    # cassetter's pytest plugin claims --record-mode too; pytest cannot load both.
    cmd += ["-p", "no:cacheprovider", "-p", "no:cassetter", "-q", "--no-header", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, time.perf_counter() - start, proc.stdout + proc.stderr


def _summary(cassettes: Path) -> list[str]:
    lines = []
    total_files = total_chunks = total_bytes = 0
    for folder in sorted({p.parent for p in cassettes.rglob("*.json")}):
        files = sorted(folder.glob("*.json"))
        chunks = 0
        for f in files:
            body = json.loads(f.read_text())["response"]
            chunks += len(body["body"]) if body["is_streaming"] else 0
        size = sum(f.stat().st_size for f in files)
        total_files, total_chunks, total_bytes = (
            total_files + len(files),
            total_chunks + chunks,
            total_bytes + size,
        )
        where = folder.relative_to(cassettes)
        lines.append(f"  {where}/: {len(files)} interaction(s), {chunks} chunk(s), {size:,} bytes")
    lines.append(f"  total: {total_files} interactions, {total_chunks} stream chunks, {total_bytes:,} bytes")
    return lines


def run(args: argparse.Namespace) -> int:
    temporary = args.cassettes is None
    cassettes = Path(tempfile.mkdtemp(prefix="vcr-ext-demo-")) if temporary else args.cassettes.resolve()
    try:
        with FakeOpenAIServer() as server:
            print(f"embedded OpenAI-compatible server: {server.base_url}")
            env = {"VCR_EXT_DEMO_BASE_URL": server.base_url, "OPENAI_API_KEY": DEMO_KEY}
            code, recorded_in, output = _pytest(cassettes, env, "--record-mode=once")
        print(f"\n1. record (--record-mode=once): {recorded_in:.2f}s, exit code {code}")
        print(_tail(output))
        if code != 0:
            return code
        print(f"cassettes in {cassettes}:")
        print("\n".join(_summary(cassettes)))
        # The server is gone: replay must not need it, and --block-network proves no socket is opened.
        code, replayed_in, output = _pytest(cassettes, {}, "--record-mode=none", "--block-network")
        print(
            f"\n2. replay offline (--record-mode=none --block-network): {replayed_in:.2f}s, exit code {code}"
        )
        print(_tail(output))
        if code != 0:
            return code
        leaked = [p for p in cassettes.rglob("*.json") if DEMO_KEY in p.read_text()]
        if leaked:
            print(f"the API key was written to {leaked}", file=sys.stderr)
            return 1
        print(f"\nrecord {recorded_in:.2f}s, replay {replayed_in:.2f}s; the API key is in no cassette.")
        return 0
    finally:
        if temporary:
            if args.keep:
                print(f"kept {cassettes}")
            else:
                shutil.rmtree(cassettes, ignore_errors=True)


def _tail(output: str) -> str:
    """pytest's closing summary line (``7 passed in 1.2s``), or the last lines if there is none."""
    lines = output.strip().splitlines()
    summary = [line for line in lines if re.search(r"\d+ (passed|failed|error)", line)]
    return "\n".join("   " + line for line in (summary[-1:] or lines[-3:]))
