"""Anthropic Messages (``POST /v1/messages``): typed per event by the SDK's classes, replayed equal.

The bytes served are real Anthropic responses from the shared corpus
(``$VCR_EXT_CORPUS/providers/pydantic-ai/anthropic/``, recorded by pydantic-ai's suite against
the live API; see its README), served from a loopback server as recorded, one HTTP chunk
per SSE event. Nothing of the corpus is copied into the repository. The corpus files used:

- ``test_request_stream_fallback_for_high_max_tokens.yaml``: a text stream (with a ``ping``);
- ``test_anthropic_code_execution_tool_stream.yaml``: a tool-use stream (thinking, a
  ``server_tool_use`` block built from ``input_json_delta``s, its result, text);
- ``test_anthropic_tool_output.yaml``: a non-stream message ending in a ``tool_use`` block;
- ``test_anthropic_model_instructions.yaml``: a non-stream text message;
- every other ``/v1/messages`` stream of the folder, at the codec level only.

pydantic-ai removed the ``request-id`` header before committing them, so the server adds
one (``req_…`` as Anthropic sends it) to check that the SDK's ``_request_id`` survives.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic_ai_corpus import Recording, assert_none_written, cassette_records

anthropic = pytest.importorskip(
    "anthropic", reason="the anthropic SDK is not installed (tox -e providers installs it)"
)

import vcr_ext  # noqa: E402
from vcr_ext import codec, sdk_types, typed_check  # noqa: E402
from vcr_ext.demo.server import FakeOpenAIServer  # noqa: E402
from vcr_ext.sse import WhatwgEvent, parse_whatwg  # noqa: E402

TEXT_STREAM = "test_request_stream_fallback_for_high_max_tokens.yaml"
TOOL_STREAM = "test_anthropic_code_execution_tool_stream.yaml"
TOOL_MESSAGE = "test_anthropic_tool_output.yaml"
TEXT_MESSAGE = "test_anthropic_model_instructions.yaml"
REQUEST_ID = "req_011CVcrExtAnthropicTest01"
API_KEY = "sk-ant-test-0000000000000000"


# ------------------------------------------------------------------ the corpus


class Recorded(Recording):
    """One recorded ``/v1/messages`` interaction: what the client asked, and the bytes Anthropic sent."""

    def __init__(self, interaction: dict[str, Any]) -> None:
        super().__init__(interaction)
        self.request: dict[str, Any] = interaction["request"]["parsed_body"]
        self.headers.append(("request-id", REQUEST_ID))

    @classmethod
    def wanted(cls, interaction: dict[str, Any]) -> bool:
        uri: str = interaction["request"]["uri"]
        return "api.anthropic.com/v1/messages?" in uri or uri.endswith("api.anthropic.com/v1/messages")


def _first(corpus_dir: Path, name: str) -> Recorded:
    return Recorded.of_file(corpus_dir, "anthropic", name)[0]


def _all_streams(corpus_dir: Path) -> list[tuple[str, Recorded]]:
    return [(label, rec) for label, rec in Recorded.of_folder(corpus_dir, "anthropic") if rec.streaming]


def _events(raw: bytes) -> list[tuple[str, Any]]:
    """(event name, data as JSON) of every event a client dispatches."""
    return [(e.type, json.loads(e.data)) for e in parse_whatwg(raw) if isinstance(e, WhatwgEvent)]


# ------------------------------------------------------------------ the codec, over every real stream


def test_every_corpus_stream_is_stored_typed_and_replays_the_same_events(corpus_dir: Path) -> None:
    streams = _all_streams(corpus_dir)
    assert len(streams) >= 10, "expected the corpus's Anthropic streams"
    names = sdk_types.anthropic_names()
    assert names is not None
    for label, rec in streams:
        stored = codec.to_stored("/v1/messages", rec.content_type, rec.body)
        assert stored.is_streaming, label  # not kept raw: the replay check passed
        assert stored.sse_done is None, label  # no [DONE] is the kind's default
        for item in stored.body:
            type_name = item["__type__"]
            if type_name == sdk_types.SSE_EVENT:  # ping has no class in the SDK
                assert item["__data__"] == {"event": "ping", "data": {"type": "ping"}}, label
            else:
                assert type_name == names[item["__data__"]["type"]], label
                assert type_name.startswith("anthropic.types.")
                assert typed_check.check(type_name, item["__data__"]) is None, label
        wire, content_type = codec.to_wire("/v1/messages", stored)
        assert content_type.startswith("text/event-stream")
        assert b"[DONE]" not in wire, label
        assert _events(wire) == _events(rec.body), label


def test_without_the_sdk_a_stream_is_stored_as_before(
    corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = _first(corpus_dir, TOOL_STREAM)
    monkeypatch.setattr(sdk_types, "anthropic_names", lambda: None)
    stored = codec.to_stored("/v1/messages", rec.content_type, rec.body)
    assert stored.is_streaming and stored.sse_done is False
    assert {item["__type__"] for item in stored.body} == {sdk_types.SSE_EVENT}
    wire, _ = codec.to_wire("/v1/messages", stored)
    assert b"[DONE]" not in wire
    assert _events(wire) == _events(rec.body)


def test_typed_records_replay_without_the_sdk(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Replay derives the event names from the type names alone: no SDK is imported.
    rec = _first(corpus_dir, TEXT_STREAM)
    stored = codec.to_stored("/v1/messages", rec.content_type, rec.body)
    monkeypatch.setattr(sdk_types, "anthropic_names", lambda: None)
    wire, _ = codec.to_wire("/v1/messages", stored)
    assert _events(wire) == _events(rec.body)


# ------------------------------------------------------------------ through the SDK


def _params(rec: Recorded) -> dict[str, Any]:
    return {k: v for k, v in rec.request.items() if k != "stream"}


def _sync_create(client: Any, rec: Recorded) -> Any:
    message = client.messages.create(**_params(rec))
    return {"message": message.model_dump(), "request_id": message._request_id}


def _async_create(client: Any, rec: Recorded) -> Any:
    async def run() -> Any:
        message = await client.messages.create(**_params(rec))
        return {"message": message.model_dump(), "request_id": message._request_id}

    return asyncio.run(run())


def _sync_stream_create(client: Any, rec: Recorded) -> Any:
    stream = client.messages.create(**_params(rec), stream=True)
    events = [event.model_dump() for event in stream]
    return {"events": events, "request_id": stream.response.headers.get("request-id")}


def _async_stream_create(client: Any, rec: Recorded) -> Any:
    async def run() -> Any:
        stream = await client.messages.create(**_params(rec), stream=True)
        events = [event.model_dump() async for event in stream]
        return {"events": events, "request_id": stream.response.headers.get("request-id")}

    return asyncio.run(run())


def _sync_stream_helper(client: Any, rec: Recorded) -> Any:
    with client.messages.stream(**_params(rec)) as stream:
        events = [event.model_dump() for event in stream]
        final = stream.get_final_message()
        return {"events": events, "final": final.model_dump(), "request_id": stream.request_id}


def _async_stream_helper(client: Any, rec: Recorded) -> Any:
    async def run() -> Any:
        async with client.messages.stream(**_params(rec)) as stream:
            events = [event.model_dump() async for event in stream]
            final = await stream.get_final_message()
            return {"events": events, "final": final.model_dump(), "request_id": stream.request_id}

    return asyncio.run(run())


CALLS = {
    "sync": (False, _sync_create),
    "async": (True, _async_create),
    "create-stream": (False, _sync_stream_create),
    "async-create-stream": (True, _async_stream_create),
    "stream-helper": (False, _sync_stream_helper),
    "async-stream-helper": (True, _async_stream_helper),
}
CASES = [
    (TEXT_MESSAGE, "sync"),
    (TEXT_MESSAGE, "async"),
    (TOOL_MESSAGE, "sync"),
    (TOOL_MESSAGE, "async"),
    *((name, call) for name in (TEXT_STREAM, TOOL_STREAM) for call in CALLS if call not in ("sync", "async")),
]


def _client(asynchronous: bool, base_url: str) -> Any:
    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(base_url=base_url, api_key=API_KEY, max_retries=0)


CASE_IDS = [f"{name.removesuffix('.yaml')}-{call}" for name, call in CASES]


@pytest.mark.parametrize(("corpus_file", "call"), CASES, ids=CASE_IDS)
def test_replay_through_the_sdk_equals_the_live_run(
    corpus_dir: Path, tmp_path: Path, corpus_file: str, call: str
) -> None:
    rec = _first(corpus_dir, corpus_file)
    asynchronous, run = CALLS[call]
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        rec.serve(server, "/v1/messages")
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(_client(asynchronous, server.url), rec)
        sent = server.requests[-1]
        base_url = server.url
    assert live["request_id"] == REQUEST_ID

    # The server is gone: everything below is played from the cassette.
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(_client(asynchronous, base_url), rec)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):  # the bytes a replay sends
        raw = httpx.post(
            base_url + "/v1/messages", content=sent.body, headers={"content-type": "application/json"}
        )
    assert replayed == live

    (record,) = cassette_records(cassette)
    response = record["response"]
    assert record["request"]["headers"] == {}
    assert response["headers"]["request-id"] == REQUEST_ID
    names = sdk_types.anthropic_names()
    assert names is not None
    if rec.streaming:
        assert response["is_streaming"] is True and "sse_done" not in response
        typed = [item for item in response["body"] if item["__type__"] != sdk_types.SSE_EVENT]
        assert typed and all(item["__type__"] == names[item["__data__"]["type"]] for item in typed)
        assert {item["__type__"] for item in response["body"]} - set(names.values()) <= {sdk_types.SSE_EVENT}
        assert b"[DONE]" not in raw.content
        assert _events(raw.content) == _events(rec.body)
    else:
        assert response["body"]["__type__"] == "anthropic.types.message.Message"
        assert response["body"]["__data__"] == json.loads(rec.body)
        assert raw.json() == json.loads(rec.body)


# ------------------------------------------------------------------ credentials


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def _fake(seed: str, n: int, alphabet: str = ALNUM) -> str:
    """``n`` random characters, the same every run for the same seed."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_no_credential_an_anthropic_client_sends_reaches_a_file(corpus_dir: Path, tmp_path: Path) -> None:
    # Generated, so that no secret scanner mistakes this file for a leak.
    api_key = "sk-ant-api03-" + _fake("anthropic", 80, ALNUM + "-_")
    org_id = "4c0ffee0-" + _fake("org", 4, HEX) + "-4b1d-8e5a-" + _fake("org2", 12, HEX)
    google_key = "AIza" + _fake("google", 35)
    aws_key_id = "AKIA" + _fake("aws-id", 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    aws_signature = _fake("aws-sig", 64, HEX)
    aws_token = "IQoJb3JpZ2luX2Vj" + _fake("aws-token", 200) + "=="
    secrets = [api_key, org_id, google_key, aws_key_id, aws_signature, aws_token]
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={aws_key_id}/20250101/us-east-1/bedrock/aws4_request, "
        f"SignedHeaders=host;x-amz-date;x-amz-security-token, Signature={aws_signature}"
    )
    rec = _first(corpus_dir, TEXT_STREAM)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST",
            "/v1/messages",
            headers=[*rec.headers, ("anthropic-organization-id", org_id), ("x-api-key", api_key)],
            body=rec.chunks(),
        )
        client = anthropic.Anthropic(
            base_url=server.url,
            api_key=api_key,
            max_retries=0,
            default_headers={
                # A custom authorization header makes the SDK leave out its own x-api-key.
                "x-api-key": api_key,
                "anthropic-organization-id": org_id,
                "x-goog-api-key": google_key,
                "authorization": authorization,
                "x-amz-security-token": aws_token,
            },
        )
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            stream = client.messages.create(**_params(rec), stream=True, extra_query={"key": google_key})
            live = [event.model_dump() for event in stream]
        sent = server.requests[-1]
    # The client did send every one of them.
    assert sent.headers["x-api-key"] == api_key and sent.headers["anthropic-version"]
    assert sent.headers["x-amz-security-token"] == aws_token
    assert sent.headers["authorization"] == authorization
    assert google_key in sent.path
    assert_none_written(tmp_path, secrets)
    (record,) = cassette_records(cassette)
    assert record["request"]["headers"] == {}
    assert set(record["response"]["headers"]) == {"content-type", "request-id"}
    assert "key=" not in record["request"]["url"]
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        client = anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key="sk-ant-other", max_retries=0)
        replayed = [e.model_dump() for e in client.messages.create(**_params(rec), stream=True)]
    assert replayed == live
