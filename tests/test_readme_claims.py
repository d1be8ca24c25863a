"""Claims of README.md, one test each: what the README says the code does, checked against the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import ask_chat
from vcr.errors import CannotOverwriteExistingCassetteException

import vcr_ext
from vcr_ext import atomic, codec, sse, usage
from vcr_ext.cli import prune
from vcr_ext.demo.server import FakeOpenAIServer

GONE = "http://127.0.0.1:9/v1"  # nothing listens here: a replay that reaches the network fails
LOOSE = {"match_on": ("method", "path")}
ORDER_FILE = ".vcr-ext-order"


def _chat(base: str, question: str) -> dict[str, Any]:
    """The whole JSON answer of one non-streamed chat completion, less the fields normalized by design."""
    reply = httpx.post(
        f"{base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        timeout=30,
    )
    reply.raise_for_status()
    return {k: v for k, v in reply.json().items() if k not in ("id", "created")}


def _question(file: Path) -> str:
    content: str = json.loads(file.read_text())["request"]["body"]["messages"][0]["content"]
    return content


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- Layouts: directory cassettes ---------------------------------------------------------


def test_files_are_indexed_by_content_never_by_name(tmp_path: Path) -> None:
    cassette = tmp_path / "chain"
    questions = [f"question number {i}" for i in range(6)]
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        live = [_chat(server.base_url, q) for q in questions]
    assert len({json.dumps(a, sort_keys=True) for a in live}) == 6
    files = sorted(cassette.glob("*.json"))
    assert len(files) == 6
    files[3].rename(cassette / "renamed-by-hand.json")
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)) as played:
        replayed = [_chat(GONE, q) for q in questions]
        assert played.all_played  # the renamed file was played too
    assert replayed == live


def _record_loose_chain(cassette: Path, **options: Any) -> list[str]:
    """Six calls to one route, told apart only by the order they come in; returns the answers."""
    questions = [f"step {i} of the chain" for i in range(6)]
    with FakeOpenAIServer() as server, vcr_ext.VCR(**LOOSE, **options).use_cassette(str(cassette)):
        answers = [ask_chat(server.base_url, q) for q in questions]
    assert len(set(answers)) == 6
    return answers


def test_a_file_the_order_manifest_does_not_list_comes_after(tmp_path: Path) -> None:
    cassette = tmp_path / "chain"
    recorded = _record_loose_chain(cassette, record_mode="once")
    manifest = (cassette / ORDER_FILE).read_text().splitlines()
    assert manifest != sorted(p.name for p in cassette.glob("*.json"))  # the names alone lose the order
    k = 1
    # A name that sorts first: "by name" among all files would put it first, the README says after.
    (cassette / manifest[k]).rename(cassette / "000-added-by-hand.json")
    with vcr_ext.VCR(record_mode="none", **LOOSE).use_cassette(str(cassette)):
        replayed = [ask_chat(GONE, f"step {i} of the chain") for i in range(6)]
    assert replayed == recorded[:k] + recorded[k + 1 :] + [recorded[k]]


def test_compat_llama_stack_writes_no_order_manifest(tmp_path: Path) -> None:
    cassette = tmp_path / "chain"
    _record_loose_chain(cassette, record_mode="once", compat="llama-stack")
    names = sorted(p.name for p in cassette.iterdir())
    assert ORDER_FILE not in names
    assert len(names) == 6
    for name in names:
        assert re.fullmatch(r"[0-9a-f]{64}\.json", name), name
    # The recorded order is not the order of the names: a manifest would have been written otherwise.
    assert [_question(cassette / n) for n in names] != [f"step {i} of the chain" for i in range(6)]


# -- Recordings no test plays -------------------------------------------------------------

ASKING = """
import os
import openai
import pytest

def ask(name):
    client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="sk-unused-test-key", max_retries=0)
    for question in os.environ.get(name, "").split(","):
        if question:
            messages = [{"role": "user", "content": question}]
            assert client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices
"""

SHARED_MODULE = (
    ASKING
    + """
@pytest.mark.default_cassette("shared")
@pytest.mark.vcr
def test_a():
    ask("QUESTIONS_A")

@pytest.mark.default_cassette("shared")
@pytest.mark.vcr
def test_b():
    ask("QUESTIONS_B")
"""
)

THREE_MODULE = ASKING + "".join(
    f"""
@pytest.mark.vcr
def test_{t}():
    ask("QUESTIONS_{t.upper()}")
"""
    for t in "abc"
)


def _pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cassetter", "--record-mode=none", *args)


def _prune(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vcr_ext.cli.main", "prune", *args]
    return subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=60)


def _recorded_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, module: str, questions: dict[str, str]
) -> None:
    pytester.makeini("[pytest]\nvcr_ext = true\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_llm=module)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("BASE_URL", server.base_url)
        for name, asked in questions.items():
            monkeypatch.setenv(name, asked)
        result = pytester.runpytest_subprocess("-p", "no:cassetter", "--record-mode=once")
        result.assert_outcomes(passed=len(questions))
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9/v1")  # gone: replay only from here on


def _file_of(folder: Path, question: str) -> str:
    (name,) = [p.name for p in folder.glob("*.json") if _question(p) == question]
    return name


def test_unused_counts_a_shared_cassette_as_played_by_any_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _recorded_suite(pytester, monkeypatch, SHARED_MODULE, {"QUESTIONS_A": "first", "QUESTIONS_B": "second"})
    shared = pytester.path / "cassettes" / "test_llm" / "shared"
    first, second = _file_of(shared, "first"), _file_of(shared, "second")
    for workers in ([], ["-n", "2"]):
        result = _pytest(pytester, "--vcr-ext-unused=fail", *workers)
        result.assert_outcomes(passed=2)
        assert result.ret == 0, (workers, result.stdout.str())
    monkeypatch.setenv("QUESTIONS_B", "")
    result = _pytest(pytester, "--vcr-ext-unused=fail")
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    out = result.stdout.str()
    assert f"shared/{second}" in out
    assert first not in out


@pytest.fixture
def three(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.Pytester]:
    """Three tests with their own cassettes, recorded; test_a no longer asks "second"."""
    _recorded_suite(
        pytester,
        monkeypatch,
        THREE_MODULE,
        {"QUESTIONS_A": "first,second", "QUESTIONS_B": "third", "QUESTIONS_C": "fourth"},
    )
    monkeypatch.setenv("QUESTIONS_A", "first")
    yield pytester


def _deselecting_run(pytester: pytest.Pytester) -> pytest.RunResult:
    result = _pytest(pytester, "-k", "test_a or test_b", "--vcr-ext-unused=warn")
    result.assert_outcomes(passed=2, deselected=1)
    return result


def test_unused_looks_only_at_cassettes_the_run_opened(three: pytest.Pytester) -> None:
    folder = three.path / "cassettes" / "test_llm"
    unused = _file_of(folder / "test_a", "second")
    out = _deselecting_run(three).stdout.str()
    assert f"test_a/{unused}" in out
    assert "1 recording(s) in 1 cassette(s) no test played" in out
    assert "test_c" not in out
    for name in [p.name for p in folder.rglob("*.json")]:
        assert (name in out) == (name == unused), name


def test_prune_write_refuses_a_run_that_deselected_tests_unless_forced(three: pytest.Pytester) -> None:
    cassettes = three.path / "cassettes"
    unused = cassettes / "test_llm" / "test_a" / _file_of(cassettes / "test_llm" / "test_a", "second")
    _deselecting_run(three)
    before = _snapshot(cassettes)
    refused = _prune(three, "--write")
    assert refused.returncode == 2, refused.stderr
    assert "deselected 1" in refused.stderr
    assert _snapshot(cassettes) == before
    forced = _prune(three, "--write", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not unused.exists()
    # Every other file stays byte-identical; the order manifest follows the removal (or goes
    # when the names' own order says it).
    gone = str(unused.relative_to(cassettes))
    after = _snapshot(cassettes)
    manifest = after.pop(f"test_llm/test_a/{ORDER_FILE}", b"").decode()
    assert unused.name not in manifest
    assert after == {k: v for k, v in before.items() if k != gone and not k.endswith(ORDER_FILE)}


def test_prune_removes_in_one_atomic_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        for q in ("one", "two", "three"):
            ask_chat(server.base_url, q)
    usage.enable()
    try:
        with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
            for q in ("one", "three"):
                ask_chat(GONE, q)
        unused = usage.unused(usage.snapshot())
    finally:
        usage._enabled = False
        usage._loaded.clear()
        usage._played.clear()
    assert [Path(r.file).name for r in unused] == [_file_of(cassette, "two")]
    before = _snapshot(cassette)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "simulated: no space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(atomic, "replace_directory", fail)
        with pytest.raises(OSError, match="simulated"):
            prune.remove(cassette, unused)
    assert _snapshot(cassette) == before
    # The same call, unhindered, does remove it: the failure above is what kept the cassette whole.
    assert prune.remove(cassette, unused) == 1
    assert sorted(_question(p) for p in cassette.glob("*.json")) == ["one", "three"]


# -- Parallel recording -------------------------------------------------------------------

TWO_ASKERS = """
import os
import httpx
import pytest

def ask():
    reply = httpx.post(
        os.environ["BASE_URL"] + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "the same question"}]},
        timeout=120,
    )
    reply.raise_for_status()
    assert reply.json()["choices"][0]["message"]["content"]

@pytest.mark.default_cassette("shared")
@pytest.mark.vcr
def test_one():
    ask()

@pytest.mark.default_cassette("shared")
@pytest.mark.vcr
def test_two():
    ask()
"""


def _completion(content: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
        }
    ).encode()


def test_two_workers_missing_the_same_request_both_record_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nvcr_ext = true\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_par=TWO_ASKERS)
    # Neither answer is sent before both requests arrived: both workers have missed the
    # request (it went upstream) before either could save a recording the other would play.
    both_asked = threading.Barrier(2, timeout=60)

    def answer(content: str) -> Iterator[bytes]:
        both_asked.wait()
        yield _completion(content)

    answers = {"answer one", "answer two"}
    with FakeOpenAIServer() as server:
        for content in sorted(answers):
            server.enqueue(
                "POST",
                "/v1/chat/completions",
                headers=[("content-type", "application/json")],
                body=answer(content),
            )
        monkeypatch.setenv("BASE_URL", server.base_url)
        result = pytester.runpytest_subprocess(
            "-p", "no:cassetter", "-p", "no:cacheprovider", "-n", "2", "--record-mode=once"
        )
        result.assert_outcomes(passed=2)
        assert len(server.requests) == 2
    folder = pytester.path / "cassettes" / "test_par" / "shared"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    # Both recordings are kept. (Each is named by the format's request hash, which covers the
    # test id, so two tests' recordings of one request are two hashes, not <h>.json and <h>.2.json.)
    assert len(records) == 2
    assert records[0]["request"] == records[1]["request"]
    assert {r["test_id"] for r in records} == {"test_par.py::test_one", "test_par.py::test_two"}
    assert {r["response"]["body"]["__data__"]["choices"][0]["message"]["content"] for r in records} == answers
    with vcr_ext.VCR(record_mode="none").use_cassette(str(folder)):
        replayed = {ask_chat(GONE, "the same question") for _ in range(2)}
        with pytest.raises(CannotOverwriteExistingCassetteException):
            ask_chat(GONE, "the same question")
    assert replayed == answers


# -- Streams replay as the same events ----------------------------------------------------


def _chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant", "content": ""} if content is None else {"content": content}
    return {
        "id": "chatcmpl-stream",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def test_the_stream_check_runs_only_when_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [_chunk(None), _chunk("Hel"), _chunk("lo"), _chunk("", "stop")]
    # "data:" without its optional space and spaced JSON: replay's bytes differ from these,
    # so recording has to run the check to keep the stream as typed events.
    wire = [b"data:" + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    cassette = tmp_path / "stream"
    calls = {"parse_whatwg": 0}
    real = sse.parse_whatwg

    def counting(data: bytes) -> Any:
        calls["parse_whatwg"] += 1
        return real(data)

    def ask(base: str) -> list[dict[str, Any]]:
        client = openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "stream"}], stream=True
        )
        return [c.model_dump(exclude={"id", "created"}) for c in stream]

    with monkeypatch.context() as spied:
        spied.setattr(codec, "parse_whatwg", counting)
        with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            server.enqueue(
                "POST", "/v1/chat/completions", headers=[("content-type", "text/event-stream")], body=wire
            )
            live = ask(server.base_url)
    assert calls["parse_whatwg"] > 0  # the check ran while recording
    (file,) = cassette.glob("*.json")
    body = json.loads(file.read_text())["response"]["body"]
    assert [item["__type__"].rsplit(".", 1)[-1] for item in body] == ["ChatCompletionChunk"] * 4

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the recording-time stream check ran during a replay")

    for module in (sse, codec):
        for name in ("parse_whatwg", "same_whatwg", "openai_sdk_events", "same_sdk_events"):
            monkeypatch.setattr(module, name, must_not_run)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)) as played:
        replayed = ask(GONE)
        assert played.all_played
    assert replayed == live
    assert "".join(c["choices"][0]["delta"]["content"] or "" for c in replayed) == "Hello"


# -- Records without the optional keys ----------------------------------------------------


def _corpus_record(corpus: Path, endpoint: str, streaming: bool) -> Path:
    """The first llama-stack recording (by path) of this kind with no status and no headers."""
    for file in sorted((corpus / "llama-stack-2025-10").rglob("*.json")):
        try:
            rec = json.loads(file.read_text())
        except ValueError:
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("request"), dict):
            continue
        response = rec.get("response") or {}
        if (
            rec["request"].get("endpoint") == endpoint
            and response.get("is_streaming") is streaming
            and response.get("body")
            and not ({"status", "headers", "is_exception"} & set(response))
        ):
            return file
    pytest.skip(f"no {endpoint} recording (streaming={streaming}) in {corpus}")


@pytest.mark.parametrize(
    ("endpoint", "streaming", "content_type"),
    [
        ("/v1/chat/completions", True, "text/event-stream"),
        ("/v1/chat/completions", False, "application/json"),
        ("/v1/embeddings", False, "application/json"),
    ],
    ids=["chat-stream", "chat", "embeddings"],
)
def test_a_record_without_status_or_headers_replays_as_200_with_its_kind_s_content_type(
    corpus_dir: Path, tmp_path: Path, endpoint: str, streaming: bool, content_type: str
) -> None:
    source = _corpus_record(corpus_dir, endpoint, streaming)
    cassette = tmp_path / "recordings"
    cassette.mkdir()
    shutil.copy(source, cassette / source.name)
    body = json.loads(source.read_text())["request"]["body"]
    with (
        vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)) as played,
        httpx.Client() as client,
        client.stream("POST", GONE + endpoint.removeprefix("/v1"), json=body) as reply,
    ):
        content = reply.read()
        assert played.all_played
    assert reply.status_code == 200
    assert reply.headers["content-type"].split(";")[0].strip() == content_type
    if streaming:
        assert content.startswith(b"data: ")
    else:
        assert isinstance(json.loads(content), dict)


# -- The pytest plugin's default record mode ----------------------------------------------

PLUGIN_MODULE = """
import os
import openai
import pytest

def ask():
    client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="sk-plugin-test-key", max_retries=0)
    messages = [{"role": "user", "content": os.environ["QUESTION"]}]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices

@pytest.mark.vcr
def test_recorded():
    ask()

@pytest.mark.vcr
def test_never_recorded():
    if os.environ.get("SKIP_NEW"):
        pytest.skip("recording run")
    ask()
"""


def test_the_plugin_s_default_record_mode_is_none(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nvcr_ext = true\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_llm=PLUGIN_MODULE)
    with FakeOpenAIServer() as server:  # left running: a mode that records would reach it
        monkeypatch.setenv("BASE_URL", server.base_url)
        monkeypatch.setenv("QUESTION", "What is a cassette?")
        monkeypatch.setenv("SKIP_NEW", "1")
        run = ("-p", "no:cassetter", "-p", "no:cacheprovider")
        pytester.runpytest_subprocess(*run, "--record-mode=once").assert_outcomes(passed=1, skipped=1)
        served = len(server.requests)
        assert served == 1
        assert pytester.runpytest_subprocess(*run).ret == 0  # the recorded question replays
        monkeypatch.delenv("SKIP_NEW")
        monkeypatch.setenv("QUESTION", "A new question")
        result = pytester.runpytest_subprocess(*run)
        # Neither the new request to a recorded cassette nor a test with no cassette records.
        result.assert_outcomes(failed=2)
        assert result.stdout.str().count("CannotOverwriteExistingCassetteException") >= 2
        assert len(server.requests) == served
    assert not (pytester.path / "cassettes" / "test_llm" / "test_never_recorded").exists()


# -- --vcr-ext-unused off costs nothing ---------------------------------------------------


def test_with_unused_off_closing_a_cassette_notes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        ask_chat(server.base_url, "noted?")
    assert usage.enabled() is False
    noted: list[object] = []

    def must_not_run(cassette: object) -> None:
        raise AssertionError("usage.note ran with --vcr-ext-unused off")

    monkeypatch.setattr(usage, "note", must_not_run)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        ask_chat(GONE, "noted?")
    # The same close does call usage.note once the option is on: the patch above is the live one.
    monkeypatch.setattr(usage, "note", noted.append)
    monkeypatch.setattr(usage, "_enabled", True)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        ask_chat(GONE, "noted?")
    assert len(noted) == 1


# -- httpx2 ---------------------------------------------------------------------------------


def test_httpx2_streams_record_and_replay(tmp_path: Path) -> None:
    httpx2 = pytest.importorskip("httpx2")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}], "stream": True}
    headers = {"authorization": "Bearer sk-fake-httpx2-key"}

    def ask(base: str) -> tuple[int, str, list[str]]:
        with (
            httpx2.Client() as client,
            client.stream("POST", f"{base}/chat/completions", json=body, headers=headers) as r,
        ):
            text = "".join(r.iter_text())
        events = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
        deltas = [
            "".join(c["delta"].get("content") or "" for c in json.loads(e)["choices"])
            for e in events
            if e != "[DONE]"
        ]
        return r.status_code, r.headers["content-type"], deltas

    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        live = ask(server.base_url)
        assert len(server.requests) == 1
    (written,) = cassette.glob("*.json")
    assert json.loads(written.read_text())["response"]["is_streaming"] is True
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)) as played:
        replayed = ask(GONE)
        assert played.all_played
    assert replayed == live
    assert "".join(live[2])
