"""The pytest plugin: one ini line opts in; record modes and --block-network work as pytest-recording says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcr_ext.demo.server import FakeOpenAIServer

TEST_MODULE = """
import os
import openai
import pytest

QUESTION = os.environ.get("QUESTION", "What is a cassette?")

@pytest.mark.vcr
def test_ask():
    client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="sk-plugin-test-key", max_retries=0)
    messages = [{"role": "user", "content": QUESTION}]
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert answer.choices[0].message.content
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.Pytester]:
    pytester.makeini("[pytest]\nvcr_ext = true\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_llm=TEST_MODULE)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("BASE_URL", server.base_url)
        yield pytester


def _run(pytester: pytest.Pytester, *args: str, subprocess: bool = False) -> pytest.RunResult:
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return run("-p", "no:cassetter", "-p", "no:cacheprovider", *args)


def _records(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    folder = pytester.path / "cassettes" / "test_llm" / "test_ask"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_once_records_a_directory_cassette_then_replays_offline(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    (rec,) = _records(suite).values()
    assert rec["test_id"] == "test_llm.py::test_ask"
    assert "sk-plugin-test-key" not in json.dumps(rec)
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9/v1")  # the API is gone
    _run(suite, "--record-mode=none", "--block-network").assert_outcomes(passed=1)


def test_none_without_a_cassette_fails_and_says_why(suite: pytest.Pytester) -> None:
    result = _run(suite, "--record-mode=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CannotOverwriteExistingCassetteException*"])


def test_new_episodes_adds_and_rewrite_replaces(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    first = set(_records(suite))
    monkeypatch.setenv("QUESTION", "Something else?")
    _run(suite, "--record-mode=new_episodes").assert_outcomes(passed=1)
    both = set(_records(suite))
    assert first < both and len(both) == 2
    _run(suite, "--record-mode=rewrite").assert_outcomes(passed=1)
    rewritten = _records(suite)
    assert len(rewritten) == 1 and set(rewritten) <= both - first


@pytest.mark.parametrize("asked_by", ["vcr_config", "mark"])
def test_rewrite_asked_by_vcr_config_or_mark_replaces(
    asked_by: str, suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    first = set(_records(suite))
    monkeypatch.setenv("QUESTION", "Something else?")
    if asked_by == "vcr_config":
        suite.makeconftest(
            "import pytest\n"
            "@pytest.fixture(scope='module')\n"
            "def vcr_config():\n"
            "    return {'record_mode': 'rewrite'}\n"
        )
    else:
        suite.makepyfile(
            test_llm=TEST_MODULE.replace("@pytest.mark.vcr", "@pytest.mark.vcr(record_mode='rewrite')")
        )
    _run(suite).assert_outcomes(passed=1)
    rewritten = set(_records(suite))
    # Only the new question's recording is left: the old one was dropped, not kept beside it.
    assert len(rewritten) == 1 and not rewritten & first


def test_once_with_an_existing_cassette_refuses_a_new_request(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    monkeypatch.setenv("QUESTION", "A new question")
    _run(suite, "--record-mode=once").assert_outcomes(failed=1)


def test_all_records_again_over_the_cassette(suite: pytest.Pytester) -> None:
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    (path,) = (suite.path / "cassettes" / "test_llm" / "test_ask").glob("*.json")
    path.write_text(path.read_text().replace('"test_id": "test_llm.py::test_ask"', '"test_id": "stale"'))
    _run(suite, "--record-mode=all").assert_outcomes(passed=1)
    assert [r["test_id"] for r in _records(suite).values()] == ["test_llm.py::test_ask"]


def test_vcr_config_selects_the_single_file_layout(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        "import pytest, vcr_ext\n"
        "@pytest.fixture(scope='module')\n"
        "def vcr_config():\n"
        "    return vcr_ext.vcr_config(layout='file')\n"
    )
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    doc = json.loads((suite.path / "cassettes" / "test_llm" / "test_ask.json").read_text())
    assert isinstance(doc, list) and doc[0]["request"]["endpoint"] == "/v1/chat/completions"


def test_without_the_ini_line_pytest_recording_is_untouched(suite: pytest.Pytester) -> None:
    suite.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    # In a process of its own: vcrpy's YAML dumper does not survive in-process pytester
    # runs that came before it (plain vcrpy, nothing of vcr_ext involved).
    _run(suite, "--record-mode=once", subprocess=True).assert_outcomes(passed=1)
    assert (suite.path / "cassettes" / "test_llm" / "test_ask.yaml").is_file()
    assert not (suite.path / "cassettes" / "test_llm" / "test_ask").is_dir()


def test_marker_extra_cassettes_are_loaded(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(suite, "--record-mode=once").assert_outcomes(passed=1)
    shared = suite.path / "cassettes" / "test_llm" / "shared"
    (suite.path / "cassettes" / "test_llm" / "test_ask").rename(shared)
    suite.makepyfile(test_llm=TEST_MODULE.replace("@pytest.mark.vcr\n", '@pytest.mark.vcr("shared")\n'))
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9/v1")
    _run(suite, "--record-mode=none", "--block-network").assert_outcomes(passed=1)


def test_block_network_blocks_an_unrecorded_call(suite: pytest.Pytester, tmp_path: Path) -> None:
    result = _run(suite, "--record-mode=none", "--block-network", "--disable-recording")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Network is disabled*"])
