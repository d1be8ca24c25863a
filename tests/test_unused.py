"""Recordings no test played: --vcr-ext-unused reports them, `vcr-ext prune` lists and removes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import vcr_ext
from vcr_ext import usage
from vcr_ext.cli import prune
from vcr_ext.demo.server import FakeOpenAIServer

TEST_MODULE = """
import os
import openai
import pytest

def ask(name):
    client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="sk-unused-test-key", max_retries=0)
    for question in os.environ.get(name, "").split(","):
        if question:
            messages = [{"role": "user", "content": question}]
            assert client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices

@pytest.mark.vcr
def test_a():
    ask("QUESTIONS_A")

@pytest.mark.vcr
def test_b():
    ask("QUESTIONS_B")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.Pytester]:
    pytester.makeini("[pytest]\nvcr_ext = true\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_llm=TEST_MODULE)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("BASE_URL", server.base_url)
        monkeypatch.setenv("QUESTIONS_A", "first,second")
        monkeypatch.setenv("QUESTIONS_B", "third")
        pytester.runpytest_subprocess("-p", "no:cassetter", "--record-mode=once").assert_outcomes(passed=2)
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9/v1")  # gone: replay only from here on
    yield pytester


def _pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cassetter", "--record-mode=none", *args)


def _files(pytester: pytest.Pytester, test: str) -> list[str]:
    return sorted(p.name for p in (pytester.path / "cassettes" / "test_llm" / test).glob("*.json"))


def _prune(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vcr_ext.cli.main", "prune", *args]
    return subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=60)


def _recording_of(pytester: pytest.Pytester, test: str, question: str) -> str:
    for name in _files(pytester, test):
        rec = json.loads((pytester.path / "cassettes" / "test_llm" / test / name).read_text())
        if rec["request"]["body"]["messages"][0]["content"] == question:
            return name
    raise AssertionError(f"no recording of {question!r}")


def test_off_by_default_says_and_keeps_nothing(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUESTIONS_A", "first")
    result = _pytest(suite)
    result.assert_outcomes(passed=2)
    assert "vcr_ext:" not in result.stdout.str()
    assert not (suite.path / ".pytest_cache" / "v" / "vcr_ext").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_warn_names_the_recording_no_test_played(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setenv("QUESTIONS_A", "first")  # "second" is recorded but no longer asked
    unused = _recording_of(suite, "test_a", "second")
    result = _pytest(suite, "--vcr-ext-unused=warn", *(["-n", str(workers)] if workers else []))
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    out = result.stdout.str()
    assert f"test_a/{unused}" in out
    assert "1 recording(s) in 1 cassette(s) no test played" in out
    for name in _files(suite, "test_a") + _files(suite, "test_b"):
        assert (name in out) == (name == unused), name


def test_fail_fails_a_passing_run(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUESTIONS_B", "")
    result = _pytest(suite, "--vcr-ext-unused=fail", "-n", "2")
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    assert "1 recording(s) in 1 cassette(s) no test played" in result.stdout.str()
    monkeypatch.setenv("QUESTIONS_B", "third")
    everything = _pytest(suite, "--vcr-ext-unused=fail", "-n", "2")
    assert everything.ret == 0
    assert "every recording of the cassettes opened was played" in everything.stdout.str()


def test_prune_lists_then_removes_only_what_no_test_played(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _prune(suite).returncode == 2  # no run with --vcr-ext-unused yet
    monkeypatch.setenv("QUESTIONS_A", "first")
    kept = _recording_of(suite, "test_a", "first")
    unused = _recording_of(suite, "test_a", "second")
    before_b = {
        n: (suite.path / "cassettes/test_llm/test_b" / n).read_bytes() for n in _files(suite, "test_b")
    }
    _pytest(suite, "--vcr-ext-unused=warn").assert_outcomes(passed=2)
    listed = _prune(suite)
    assert listed.returncode == 0 and listed.stdout.split() == [f"cassettes/test_llm/test_a/{unused}"]
    assert _prune(suite, "--check").returncode == 1
    assert unused in _files(suite, "test_a")  # listing removes nothing
    removed = _prune(suite, "--write")
    assert removed.returncode == 0, removed.stderr
    assert _files(suite, "test_a") == [kept]
    assert {
        n: (suite.path / "cassettes/test_llm/test_b" / n).read_bytes() for n in _files(suite, "test_b")
    } == before_b
    # What is left replays, and nothing is unused any more.
    after = _pytest(suite, "--vcr-ext-unused=fail")
    after.assert_outcomes(passed=2)
    assert after.ret == 0


def test_prune_refuses_to_write_after_a_run_that_failed(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUESTIONS_A", "first,not recorded")  # fails: nothing answers it
    _pytest(suite, "--vcr-ext-unused=warn").assert_outcomes(passed=1, failed=1)
    refused = _prune(suite, "--write")
    assert refused.returncode == 2 and "failed 1 test(s)" in refused.stderr
    assert len(_files(suite, "test_a")) == 2


def test_prune_leaves_a_file_that_changed_since_the_run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUESTIONS_A", "first")
    unused = suite.path / "cassettes/test_llm/test_a" / _recording_of(suite, "test_a", "second")
    _pytest(suite, "--vcr-ext-unused=warn").assert_outcomes(passed=2)
    unused.write_text(unused.read_text() + "\n")  # edited by hand after the run
    result = _prune(suite, "--write")
    assert result.returncode == 0 and "changed since the run" in result.stderr
    assert unused.exists()


def _ask(base: str, question: str) -> None:
    body = {"model": "m", "messages": [{"content": question}]}
    httpx.post(f"{base}/chat/completions", json=body, timeout=10).raise_for_status()


def test_remove_from_a_one_file_cassette_keeps_the_other_records_byte_identical(tmp_path: Path) -> None:
    cassette = tmp_path / "c.json"
    questions = ["one", "two", "three"]
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        base = server.base_url
        for q in questions:
            httpx.post(
                f"{base}/chat/completions", json={"model": "m", "messages": [{"content": q}]}, timeout=10
            )
    records = json.loads(cassette.read_text())
    usage.enable()
    try:
        with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
            for q in ("one", "three"):
                httpx.post(
                    f"{base}/chat/completions", json={"model": "m", "messages": [{"content": q}]}, timeout=10
                )
        unused = usage.unused(usage.snapshot())
    finally:
        usage._enabled = False
        usage._loaded.clear()
        usage._played.clear()
    assert [(os.path.basename(r.file), r.index) for r in unused] == [("c.json", 1)]
    assert prune.remove(cassette, unused) == 1
    assert json.loads(cassette.read_text()) == [records[0], records[2]]
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        for q in ("one", "three"):
            httpx.post(
                f"{base}/chat/completions", json={"model": "m", "messages": [{"content": q}]}, timeout=10
            )
