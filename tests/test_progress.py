"""Progress bars: shown on a terminal, nothing in a log or a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import httpx

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer


def _cassette(tmp_path: Path) -> Path:
    cassette = tmp_path / "c"
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        for i in range(3):
            body = {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}
            httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10).raise_for_status()
    return cassette


def _check(cassette: Path, stderr: int) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "vcr_ext.cli.main", "check", str(cassette)]
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, timeout=60, check=False)


def test_no_bar_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    result = _check(_cassette(tmp_path), subprocess.PIPE)
    assert result.returncode == 0, result.stdout
    assert b"\r" not in result.stderr and b"files" not in result.stderr


def test_a_bar_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    cassette = _cassette(tmp_path)
    leader, follower = pty.openpty()
    # A new pty is 0 columns wide, and tqdm cuts its bar to the terminal's width.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        result = _check(cassette, follower)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert result.returncode == 0
    assert b"0/3 [" in seen and b"files/s]" in seen, seen  # tqdm's bar: count, unit, rate
