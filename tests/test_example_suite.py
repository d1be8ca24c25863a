"""The example suite in the package: its committed cassettes replay offline, and `vcr-ext demo` works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vcr_ext.cli import demo
from vcr_ext.demo.server import FakeOpenAIServer

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "cassettes"


def _suite(cassettes: Path, *args: str, base_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VCR_EXT_CASSETTE_DIR": str(cassettes), "OPENAI_API_KEY": demo.DEMO_KEY}
    if base_url:
        env["VCR_EXT_DEMO_BASE_URL"] = base_url
    cmd = [sys.executable, "-m", "pytest", str(demo.SUITE), "-c", str(demo.SUITE / "pytest.ini")]
    cmd += ["--rootdir", str(demo.SUITE), "-p", "no:cacheprovider", "-p", "no:cassetter", "-q", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)


def test_committed_cassettes_replay_offline() -> None:
    result = _suite(COMMITTED, "--record-mode=none", "--block-network")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_recording_the_same_traffic_twice_gives_identical_files(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        for name in ("first", "second"):
            result = _suite(tmp_path / name, "--record-mode=once", base_url=server.base_url)
            assert result.returncode == 0, result.stdout + result.stderr
    first = {p.relative_to(tmp_path / "first"): p.read_bytes() for p in (tmp_path / "first").rglob("*.json")}
    second = {
        p.relative_to(tmp_path / "second"): p.read_bytes() for p in (tmp_path / "second").rglob("*.json")
    }
    assert len(first) == 7
    assert first == second
    assert not any(demo.DEMO_KEY.encode() in data for data in first.values())


def test_vcr_ext_demo_records_and_replays() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vcr_ext.cli.main", "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "total: 7 interactions" in result.stdout
    assert "2. replay offline" in result.stdout and "7 passed" in result.stdout
