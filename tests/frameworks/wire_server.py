"""Serve real OpenAI wire captures from a loopback server, record a framework call, replay it.

Shared by the framework tests (LangChain, the OpenAI Agents SDK, instructor; others may
import it too). Nothing of the corpus is copied into the repository: the captures are read
from ``$VCR_EXT_CORPUS/wire/`` (default ``../shared/corpus``) and a test skips, saying
why, when one is missing. The captures used, all real bytes from api.openai.com:

- ``chat_stream_openai_2025-10-27_r4u.sse``: a chat completion text stream ("Hi, how are
  you ...", gpt-3.5-turbo-0125, with ``obfuscation`` on every chunk);
- ``responses_stream_openai_2025-10-27_r4u.sse``: a Responses API text stream;
- ``responses_error_stream_openai_2025-10-03_swiftagent.sse``: a Responses stream that
  fails mid-way (``event: error``, insufficient quota, then ``response.failed``);
- ``openai_python_snapshots/<sha>.bin``: the chat streams openai-python's own test suite
  snapshotted (2024): tool calls, structured outputs, plain text (see :data:`SNAPSHOTS`).

A capture holds only a body, so the server sends it with the headers api.openai.com sends
with a stream (``content-type: text/event-stream; charset=utf-8``, an ``x-request-id``),
one HTTP chunk per SSE event as the API does. Requests for which no capture exists are
answered by :class:`vcr_ext.demo.server.FakeOpenAIServer`'s generated OpenAI-shaped bodies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

import vcr_ext
from vcr_ext import sdk_types, typed_check
from vcr_ext.demo.server import FakeOpenAIServer, ReceivedRequest

T = TypeVar("T")

# Distinctive, so that a leak is unmistakable; generated-looking but fake.
API_KEY = "sk-proj-vcrExtFrameworkTest0000fakeKey0000000000000000aBcD"
# Where the second replay points the client: a port nothing listens on, another base path.
OTHER_BASE_URL = "http://127.0.0.1:9/other-gateway/v1"
REQUEST_ID = "req_vcrextframeworkcapture0001"

CHAT_TEXT_STREAM = "chat_stream_openai_2025-10-27_r4u.sse"
RESPONSES_TEXT_STREAM = "responses_stream_openai_2025-10-27_r4u.sse"
# A Responses stream ending in `event: error` (insufficient_quota) then `response.failed`.
RESPONSES_ERROR_STREAM = "responses_error_stream_openai_2025-10-03_swiftagent.sse"
# openai-python's snapshots (tests/lib/chat/test_completions_streaming.py), by what they hold.
SNAPSHOTS = {
    # get_weather(city="New York City"), finish_reason tool_calls.
    "tool_call_city": "2018feb66ae13fcf5333d61b95849decc68d3f63bd38172889367e1afb1e04f7.bin",
    # GetWeatherArgs(city="Edinburgh", country="UK", units="c"), one tool call.
    "tool_call_weather_args": "c6aa7e397b7123c3501f25df3a05d4daf7e8ad6d61ffa406ab5361fe36a8d5b1.bin",
    # Structured output text {"city":"San Francisco","temperature":61,"units":"f"}.
    "structured_location": "7e5ea4d12e7cc064399b6631415e65923f182256b6e6b752950a3aaa2ad2320a.bin",
    # Plain text "Foo!".
    "text_foo": "83b060bae42eb41c4f1edbb7c1542b954b37d9dfd1910b964ddebc9677e6ae85.bin",
}
CHUNK_TYPE = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
CHAT_TYPE = "openai.types.chat.chat_completion.ChatCompletion"
_SSE_HEADERS = (("content-type", "text/event-stream; charset=utf-8"), ("x-request-id", REQUEST_ID))


def wire_dir() -> Path:
    """``$VCR_EXT_CORPUS/wire``; skips the test when the corpus or the folder is absent."""
    corpus = Path(os.environ.get("VCR_EXT_CORPUS") or Path(__file__).parents[3] / "shared" / "corpus")
    folder = corpus / "wire"
    if not folder.is_dir():
        pytest.skip(f"wire captures not found at {folder}: set VCR_EXT_CORPUS to the shared corpus")
    return folder


def capture(name: str) -> bytes:
    """The bytes of one capture (a name of :data:`SNAPSHOTS`, or a file name in ``wire/``)."""
    folder = wire_dir()
    path = folder / "openai_python_snapshots" / SNAPSHOTS[name] if name in SNAPSHOTS else folder / name
    if not path.is_file():
        pytest.skip(f"wire capture {path} is missing from the corpus")
    return path.read_bytes()


def sse_chunks(raw: bytes) -> list[bytes]:
    """The stream as the API sends it: one HTTP chunk per SSE event (blank-line terminated)."""
    events = raw.split(b"\n\n")
    return [e + b"\n\n" for e in events[:-1]] + ([events[-1]] if events[-1] else [])


def sse_data(raw: bytes) -> list[Any]:
    """The JSON ``data:`` of every event of a capture, ``[DONE]`` left out."""
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            out.append(json.loads(line[5:]))
    return out


def chat_text(raw: bytes) -> str:
    """The assistant text a chat capture streams (choice 0)."""
    return "".join(
        c["delta"].get("content") or "" for d in sse_data(raw) for c in d["choices"] if c["index"] == 0
    )


def serve_capture(server: FakeOpenAIServer, path: str, name: str) -> bytes:
    """Queue capture ``name`` for the next ``POST path``; returns its bytes."""
    raw = capture(name)
    server.enqueue("POST", path, headers=_SSE_HEADERS, body=sse_chunks(raw))
    return raw


@dataclass
class Run(Generic[T]):
    """What one call gave live, replayed, and replayed from :data:`OTHER_BASE_URL`."""

    live: T
    replayed: T
    other: T
    cassette: Path
    sent: list[ReceivedRequest]


def record_and_replay(
    tmp_path: Path, serve: Callable[[FakeOpenAIServer], None], call: Callable[[str], T]
) -> Run[T]:
    """Run ``call(base_url)`` live inside a new cassette, then twice more from it alone.

    ``serve`` queues the captures before the live run. The server is stopped before the
    replays, so they can only be played from the cassette (record mode ``none`` refuses
    anything it does not hold); the second replay points the client at another host, port
    and base path, which the route matcher must not care about.
    """
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        serve(server)
        base_url = server.base_url
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = call(base_url)
        sent = list(server.requests)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = call(base_url)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        other = call(OTHER_BASE_URL)
    return Run(live, replayed, other, cassette, sent)


def records(cassette: Path) -> list[dict[str, Any]]:
    """Every record of a directory cassette (file order is by hash, not by time)."""
    return [json.loads(p.read_text()) for p in sorted(cassette.glob("*.json"))]


def assert_no_key_written(tmp_path: Path, sent: list[ReceivedRequest]) -> None:
    """The client did send :data:`API_KEY`, and no byte written under ``tmp_path`` holds it."""
    assert sent and all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in sent)
    written = b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())
    assert written
    assert API_KEY.encode() not in written
    assert b"Bearer" not in written


def assert_typed(cassette: Path, routes: dict[str, int]) -> list[dict[str, Any]]:
    """Every record is typed with openai SDK classes, per chunk for a stream; returns the records.

    ``routes`` is how many records each endpoint must have. A chat stream is a list of
    ``ChatCompletionChunk``; a Responses stream a list of the event classes its ``type``
    names in the SDK's own union; whole bodies one class of ``openai.types``. Each
    ``__data__`` must also fit its class (vcr_ext's structural check).
    """
    recs = records(cassette)
    counted: dict[str, int] = {}
    events = sdk_types.responses_event_types()
    for rec in recs:
        endpoint = rec["request"]["endpoint"]
        counted[endpoint] = counted.get(endpoint, 0) + 1
        assert rec["request"]["headers"] == {}
        response = rec["response"]
        body = response["body"]
        if response["is_streaming"]:
            assert isinstance(body, list) and body, endpoint
            for item in body:
                if endpoint == "/v1/chat/completions":
                    assert item["__type__"] == CHUNK_TYPE
                else:
                    assert item["__type__"] == events[item["__data__"]["type"]], item["__data__"]["type"]
                assert typed_check.check(item["__type__"], item["__data__"]) is None
        else:
            assert body["__type__"].startswith("openai.types."), body["__type__"]
            assert typed_check.check(body["__type__"], body["__data__"]) is None
    assert counted == routes
    return recs
