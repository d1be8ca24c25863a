"""What a save may and may not do: it never removes what it did not write, never leaves a library
patched when it fails, and keeps the recorded order of a directory cassette."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import httpx
import pytest
from conftest import ask_chat
from vcr.errors import CannotOverwriteExistingCassetteException

import vcr_ext
from vcr_ext import atomic
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.secrets import SecretFoundError

TOOL_RECORD = {
    "test_id": "tests/integration/test_tools.py::test_search",
    "request": {"provider": "tavily-search", "tool_name": "web_search", "kwargs": {"query": "weather"}},
    "response": {"body": {"content": "sunny"}, "is_streaming": False},
}
CLIENT_FAILURE = {
    "test_id": "t::x",
    "request": {
        "method": "POST",
        "url": "http://localhost:11434/v1/chat/completions",
        "endpoint": "/v1/chat/completions",
        "headers": {},
        "body": {"model": "m", "messages": []},
        "model": "m",
    },
    "response": {
        "body": None,
        "is_streaming": False,
        "is_exception": True,
        "exception_data": {"type": "APIConnectionError"},
        "exception_message": "Connection error.",
    },
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all", "rewrite"])
def test_a_save_keeps_every_file_it_did_not_write_byte_identical(tmp_path: Path, mode: str) -> None:
    cassette = tmp_path / "recordings"
    with FakeOpenAIServer() as server:
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            ask_chat(server.base_url, "recorded before")
        # Files a save must not touch: records it skips, a file of another kind, a folder.
        (cassette / "0f0f.json").write_text(json.dumps(TOOL_RECORD, indent=2))
        (cassette / "0e0e.json").write_text(json.dumps(CLIENT_FAILURE, indent=2))
        (cassette / "notes.txt").write_text("how these were recorded\n")
        (cassette / "models").mkdir()
        (cassette / "models" / "list.json").write_text("[]")
        snapshot = _snapshot(cassette)
        foreign = {k: snapshot[k] for k in ("0f0f.json", "0e0e.json", "notes.txt", "models/list.json")}

        # rewrite is new_episodes over a persister that ignores and replaces what is on disk,
        # as the pytest plugin sets it up for --record-mode=rewrite.
        my_vcr = vcr_ext.VCR(record_mode="new_episodes" if mode == "rewrite" else mode)
        if mode == "rewrite":
            my_vcr.register_persister(my_vcr.persister.with_options(rewrite=True))
        with my_vcr.use_cassette(str(cassette)) as played:
            ask_chat(server.base_url, "recorded before")
            if mode == "once":
                played._save(force=True)  # `once` over an existing cassette records nothing new
            else:
                ask_chat(server.base_url, "recorded now")
    after = _snapshot(cassette)
    for name, data in foreign.items():
        assert after.get(name) == data, f"{mode}: {name} changed or vanished"


@pytest.mark.parametrize("failure", ["secret", "disk-full", "permission"])
def test_a_save_that_raises_restores_every_patched_library_and_keeps_the_old_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    originals = (httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request)
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server:
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            ask_chat(server.base_url, "first")
        before = _snapshot(cassette)
        key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
        question = f"my key is {key}" if failure == "secret" else "second"
        expected: type[BaseException] = SecretFoundError
        if failure != "secret":
            code = errno.ENOSPC if failure == "disk-full" else errno.EACCES

            def fail(*args: object, **kwargs: object) -> None:
                raise OSError(code, "simulated")

            monkeypatch.setattr(atomic, "replace_directory", fail)
            expected = OSError
        with pytest.raises(expected), vcr_ext.VCR(record_mode="new_episodes").use_cassette(str(cassette)):
            ask_chat(server.base_url, question)
        # No stub of the dead cassette is left in place: a request it holds goes to the server.
        now = (httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request)
        assert now == originals
        served = len(server.requests)
        ask_chat(server.base_url, "first")
        assert len(server.requests) == served + 1
    assert _snapshot(cassette) == before


def test_a_directory_cassette_replays_in_recorded_order_with_loose_matching(tmp_path: Path) -> None:
    cassette = tmp_path / "chain"
    questions = [f"step {i} of the chain" for i in range(6)]
    loose = {"match_on": ("method", "path")}  # vcrpy's usual loose matching: every call looks alike
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once", **loose).use_cassette(str(cassette)):
        recorded = [ask_chat(server.base_url, q) for q in questions]
    assert len(set(recorded)) == len(recorded)
    names = sorted(p.name for p in cassette.glob("*.json"))
    # The names (request hashes) alone do not say the order: the manifest does.
    assert (cassette / ".vcr-ext-order").read_text().splitlines() != names
    with vcr_ext.VCR(record_mode="none", **loose).use_cassette(str(cassette)):
        replayed = [ask_chat("http://127.0.0.1:9/v1", q) for q in questions]
    assert replayed == recorded


@pytest.mark.parametrize("layout", ["directory", "file"])
def test_a_request_body_with_a_lone_surrogate_escape_is_recorded_and_replayed(
    tmp_path: Path, layout: str
) -> None:
    # Valid JSON that no UTF-8 text can hold once parsed: "\ud800" alone.
    body = b'{"model":"m","messages":[{"role":"user","content":"x\\ud800y"}]}'
    answer = b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[]}'
    cassette = str(tmp_path / ("c.json" if layout == "file" else "c"))
    headers = {"content-type": "application/json"}
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST", "/v1/chat/completions", headers=[("content-type", "application/json")], body=answer
        )
        with vcr_ext.VCR(record_mode="once").use_cassette(cassette):
            live = httpx.post(f"{server.base_url}/chat/completions", content=body, headers=headers)
        base = server.base_url
    assert live.content == answer
    with vcr_ext.VCR(record_mode="none").use_cassette(cassette):
        replayed = httpx.post(f"{base}/chat/completions", content=body, headers=headers)
        # (chat.completion ids and times are normalized by design: the rest is the live answer)
        assert {**replayed.json(), "id": "c1", "created": 1} == live.json()
        # Another surrogate is another request: it does not match the recording.
        with pytest.raises(
            CannotOverwriteExistingCassetteException, match=r"first difference at messages\[0\]\.content"
        ):
            httpx.post(f"{base}/chat/completions", content=body.replace(b"d800", b"d801"), headers=headers)
