"""Cohere (``/v2/chat`` SSE events, ``/v1/chat`` NDJSON lines): typed per item by the cohere SDK's classes.

There are no Cohere streams in the shared corpus, so the stream bytes served here are
built from the documented wire format, as public captures show it:

- v2: ``event: <type>`` + ``data: <compact JSON>`` per event, then ``data: [DONE]``: the
  mocked streams of the Vercel AI SDK's Cohere provider tests
  (``packages/cohere/src/cohere-chat-language-model.test.ts``: text deltas, and a
  ``tool-plan-delta`` / ``tool-call-start`` / ``tool-call-delta`` / ``tool-call-end`` tool
  stream), whose ``message-start`` matches the ``curl`` capture of api.cohere.com in
  M-Lai-ai/LLM-Provider-reference ``Cohere/streaming.md``;
- v1: one compact JSON object a line, ``\\n``-ended, ``stream-start`` / ``text-generation``
  / ``tool-calls-generation`` / ``stream-end`` (the ``stream-end`` holding the whole
  response): discourse-ai's ``spec/lib/completions/endpoints/cohere_spec.rb`` and the
  Vercel AI SDK's v1 Cohere tests; the content type is ``application/stream+json``.

The non-stream bodies are real api.cohere.com ``/v2/chat`` responses from the shared corpus
(``$VCR_EXT_CORPUS/providers/pydantic-ai/cohere/``), served from a loopback server as recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

cohere = pytest.importorskip(
    "cohere", reason="the cohere SDK is not installed (tox -e providers installs it)"
)

import vcr_ext  # noqa: E402
from vcr_ext import codec, sdk_types, typed_check  # noqa: E402
from vcr_ext.demo.server import FakeOpenAIServer  # noqa: E402
from vcr_ext.errors import CassetteFormatError  # noqa: E402
from vcr_ext.providers import cohere as cohere_provider  # noqa: E402
from vcr_ext.sse import WhatwgEvent, parse_whatwg  # noqa: E402

API_KEY = "co-test-0000000000000000000000000000000000"
SSE = "text/event-stream"
NDJSON = "application/stream+json"
V2_PREFIX = "cohere.v2.types.v2chat_stream_response."
V1_PREFIX = "cohere.types.streamed_chat_response."


def _compact(value: Any) -> bytes:
    """JSON as api.cohere.com writes it: no spaces, UTF-8 left unescaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(*events: dict[str, Any]) -> list[bytes]:
    """One HTTP chunk per event, framed as api.cohere.com frames v2 chat events."""
    chunks = [b"event: " + e["type"].encode() + b"\ndata: " + _compact(e) + b"\n\n" for e in events]
    return [*chunks, b"data: [DONE]\n\n"]


def _ndjson(*lines: dict[str, Any]) -> list[bytes]:
    """One HTTP chunk per line, as api.cohere.com sends a v1 chat stream."""
    return [_compact(line) + b"\n" for line in lines]


USAGE = {
    "billed_units": {"input_tokens": 5, "output_tokens": 3},
    "tokens": {"input_tokens": 71, "output_tokens": 3},
}
MESSAGE_START = {
    "id": "a8fc192e-4bb8-4e15-ae1f-a174e8b02ae8",
    "type": "message-start",
    "delta": {
        "message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    },
}
V2_TEXT = _sse(
    MESSAGE_START,
    {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
    *(
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}}
        for t in ("Hello", ", ", "Wörld!")
    ),
    {"type": "content-end", "index": 0},
    {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": USAGE}},
)
V2_TOOL = _sse(
    MESSAGE_START,
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look up the weather."}}},
    {
        "type": "tool-call-start",
        "index": 0,
        "delta": {
            "message": {
                "tool_calls": {
                    "id": "get_weather_1byjy32y4hvq",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            }
        },
    },
    *(
        {
            "type": "tool-call-delta",
            "index": 0,
            "delta": {"message": {"tool_calls": {"function": {"arguments": a}}}},
        }
        for a in ('{\n    "', 'city": "', 'Paris"\n}')
    ),
    {"type": "tool-call-end", "index": 0},
    {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": USAGE}},
)
V1_RESPONSE = {
    "response_id": "ac6d5f86-f5a7-4db9-bacf-f01b98697a5b",
    "text": "Hello, Wörld!",
    "generation_id": "586ac33f-9c64-452c-8f8d-e5890e73b6fb",
    "chat_history": [{"role": "USER", "message": "hi"}, {"role": "CHATBOT", "message": "Hello, Wörld!"}],
    "finish_reason": "COMPLETE",
    "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": 17, "output_tokens": 4}},
}
V1_TEXT = _ndjson(
    {
        "is_finished": False,
        "event_type": "stream-start",
        "generation_id": "586ac33f-9c64-452c-8f8d-e5890e73b6fb",
    },
    *({"is_finished": False, "event_type": "text-generation", "text": t} for t in ("Hello", ", ", "Wörld!")),
    {"is_finished": True, "event_type": "stream-end", "response": V1_RESPONSE, "finish_reason": "COMPLETE"},
)
V1_TOOL_CALLS = [{"name": "weather", "parameters": {"city": "Sydney"}}]
V1_TOOL = _ndjson(
    {
        "is_finished": False,
        "event_type": "stream-start",
        "generation_id": "d8dd0557-b51d-483c-b855-6ce7fcc5b19f",
    },
    {
        "is_finished": False,
        "event_type": "tool-calls-chunk",
        "tool_call_delta": {"name": "weather", "index": 0},
    },
    {"is_finished": False, "event_type": "tool-calls-generation", "tool_calls": V1_TOOL_CALLS},
    {
        "is_finished": True,
        "event_type": "stream-end",
        "response": {**V1_RESPONSE, "text": "", "tool_calls": V1_TOOL_CALLS},
        "finish_reason": "COMPLETE",
    },
)
STREAMS = {
    "v2-text": (V2_TEXT, SSE),
    "v2-tool": (V2_TOOL, SSE),
    "v1-text": (V1_TEXT, NDJSON),
    "v1-tool": (V1_TOOL, NDJSON),
}


def _route(name: str) -> str:
    return "/v2/chat" if name.startswith("v2") else "/v1/chat"


def _names() -> cohere_provider.CohereNames:
    names = cohere_provider.names()
    assert names is not None
    return names


def _sse_events(raw: bytes) -> list[tuple[str, Any]]:
    """(event name, data) of every event a standard client dispatches, data as JSON when it is."""
    out: list[tuple[str, Any]] = []
    for e in parse_whatwg(raw):
        if isinstance(e, WhatwgEvent):
            out.append((e.type, e.data if e.data == "[DONE]" else json.loads(e.data)))
    return out


# ------------------------------------------------------------------ the codec


@pytest.mark.parametrize("name", STREAMS)
def test_a_stream_is_typed_by_the_sdk_union_and_replays_byte_exact(name: str) -> None:
    chunks, content_type = STREAMS[name]
    live = b"".join(chunks)
    stored = codec.to_stored(_route(name), content_type, live)
    assert stored.is_streaming and stored.sse_done is None  # [DONE] is the kind's default for v2
    names = _names()
    table, key, prefix = (
        (names.v2_events, "type", V2_PREFIX)
        if name.startswith("v2")
        else (names.v1_events, "event_type", V1_PREFIX)
    )
    assert len(stored.body) == len(chunks) - (1 if name.startswith("v2") else 0)
    for item in stored.body:
        type_name = item["__type__"]
        assert type_name.startswith(prefix) and type_name == table[item["__data__"][key]]
        assert typed_check.is_checked(type_name) and typed_check.check(type_name, item["__data__"]) is None
    wire, media = codec.to_wire(_route(name), stored)
    assert wire == live
    assert media.startswith(content_type)


def test_every_event_class_of_the_sdk_unions_is_known() -> None:
    names = _names()
    v2 = "message-start content-start content-delta content-end tool-plan-delta tool-call-start"
    v2 += " tool-call-delta tool-call-end citation-start citation-end message-end"
    assert set(names.v2_events) >= set(v2.split())
    assert set(names.v1_events) >= {"stream-start", "text-generation", "tool-calls-generation", "stream-end"}
    assert names.v2_events["content-delta"] == sdk_types.dotted_name(cohere.ContentDeltaV2ChatStreamResponse)
    assert names.v1_events["text-generation"] == sdk_types.dotted_name(
        cohere.TextGenerationStreamedChatResponse
    )


def test_ndjson_that_a_replay_would_not_write_byte_for_byte_is_kept_as_text() -> None:
    # Spaces after the separators: the same JSON values, but not the bytes a replay writes.
    live = b'{"is_finished": false, "event_type": "stream-start", "generation_id": "g"}\n'
    stored = codec.to_stored("/v1/chat", NDJSON, live)
    assert stored.body == {"__type__": sdk_types.RAW_TEXT, "__data__": live.decode()}
    assert codec.to_wire("/v1/chat", stored)[0] == live


def test_a_v1_chat_json_body_with_newlines_is_not_taken_for_a_stream() -> None:
    live = json.dumps(V1_RESPONSE, indent=2).encode()
    stored = codec.to_stored("/v1/chat", "application/json", live)
    assert not stored.is_streaming
    assert stored.body["__type__"] == sdk_types.dotted_name(cohere.NonStreamedChatResponse)


def test_an_event_its_class_cannot_hold_is_stored_untyped() -> None:
    bad = {"type": "content-delta", "index": 0, "delta": "oops"}
    type_name = _names().v2_events["content-delta"]
    problem = typed_check.check(type_name, bad)
    assert problem is not None and problem.path == ".delta"
    stored = codec.to_stored("/v2/chat", SSE, b"".join(_sse(MESSAGE_START, bad)))
    assert stored.body[0]["__type__"] == _names().v2_events["message-start"]
    assert stored.body[1] == {
        "__type__": sdk_types.SSE_EVENT,
        "__data__": {"event": "content-delta", "data": bad},
    }


@pytest.mark.parametrize("name", STREAMS)
def test_without_the_sdk_a_stream_is_stored_generic_and_replays_byte_exact(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks, content_type = STREAMS[name]
    live = b"".join(chunks)
    monkeypatch.setattr(cohere_provider, "names", lambda: None)
    stored = codec.to_stored(_route(name), content_type, live)
    assert stored.is_streaming and stored.sse_done is None
    if name.startswith("v2"):
        assert {item["__type__"] for item in stored.body} == {sdk_types.SSE_EVENT}
    else:
        assert all("__type__" not in item for item in stored.body)  # plain JSON lines
    assert codec.to_wire(_route(name), stored)[0] == live


@pytest.mark.parametrize("name", STREAMS)
def test_typed_records_replay_without_the_sdk(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Replay derives event names and [DONE] from the type names alone: no SDK is asked.
    chunks, content_type = STREAMS[name]
    stored = codec.to_stored(_route(name), content_type, b"".join(chunks))
    monkeypatch.setattr(cohere_provider, "names", lambda: None)
    assert codec.to_wire(_route(name), stored)[0] == b"".join(chunks)


def test_without_the_sdk_typed_check_leaves_cohere_types_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    type_name = _names().v2_events["content-delta"]
    real = sdk_types.sdk_class

    def absent(name: str) -> Any:
        if name.startswith("cohere."):
            raise ImportError(f"No module named {name.partition('.')[0]!r}")
        return real(name)

    typed_check._validator.cache_clear()
    typed_check._list_validator.cache_clear()
    monkeypatch.setattr(sdk_types, "sdk_class", absent)
    try:
        assert not typed_check.is_checked(type_name)
        assert typed_check.check(type_name, {"delta": "oops"}) is None
    finally:
        typed_check._validator.cache_clear()
        typed_check._list_validator.cache_clear()


def test_non_stream_bodies_of_every_cohere_route_are_typed() -> None:
    # Shapes from the Cohere API reference (docs.cohere.com/reference/embed, /rerank).
    bodies = {
        "/v2/embed": (
            {"id": "e1", "embeddings": {"float": [[0.1, 0.2]]}, "texts": ["hi"], "meta": {}},
            cohere.EmbedByTypeResponse,
        ),
        "/v1/embed": (
            {"id": "e2", "embeddings": [[0.1, 0.2]], "texts": ["hi"], "response_type": "embeddings_floats"},
            cohere.EmbeddingsFloatsEmbedResponse,
        ),
        "/v2/rerank": (
            {"id": "r1", "results": [{"index": 0, "relevance_score": 0.9}]},
            cohere.V2RerankResponse,
        ),
        "/v1/chat": (V1_RESPONSE, cohere.NonStreamedChatResponse),
    }
    for route, (body, cls) in bodies.items():
        stored = codec.to_stored(route, "application/json", json.dumps(body).encode())
        assert stored.body == {"__type__": sdk_types.dotted_name(cls), "__data__": body}, route
    # An error body stays plain JSON.
    error = {"id": "x", "message": "invalid api token"}
    assert codec.to_stored("/v2/chat", "application/json", json.dumps(error).encode()).body == error


# ------------------------------------------------------------------ through the SDK


def _client(version: str, asynchronous: bool, base_url: str) -> Any:
    cls = {
        ("v2", False): cohere.ClientV2,
        ("v2", True): cohere.AsyncClientV2,
        ("v1", False): cohere.Client,
        ("v1", True): cohere.AsyncClient,
    }[(version, asynchronous)]
    return cls(api_key=API_KEY, base_url=base_url)


def _call(version: str, asynchronous: bool, streaming: bool) -> Callable[[Any], Any]:
    params: dict[str, Any] = (
        {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}]}
        if version == "v2"
        else {"model": "command-r", "message": "hi"}
    )

    def dump(value: Any) -> Any:
        return value.model_dump()

    if not streaming:
        if asynchronous:
            return lambda c: dump(asyncio.run(c.chat(**params)))
        return lambda c: dump(c.chat(**params))
    if asynchronous:

        async def run(c: Any) -> Any:
            return [dump(e) async for e in c.chat_stream(**params)]

        return lambda c: asyncio.run(run(c))
    return lambda c: [dump(e) for e in c.chat_stream(**params)]


def _records(cassette: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(cassette.glob("*.json"))]


def _corpus_folder(corpus_dir: Path) -> Path:
    folder = corpus_dir / "providers" / "pydantic-ai" / "cohere"
    if not folder.is_dir():
        pytest.skip(f"no Cohere recordings in the corpus at {folder}")
    return folder


def _cohere_bodies(path: Path) -> list[bytes]:
    """The bodies api.cohere.com answered ``/v2/chat`` with in one corpus file (JSON, as sent)."""
    return [
        json.dumps(i["response"]["parsed_body"]).encode()
        for i in yaml.safe_load(path.read_text())["interactions"]
        if i["request"]["uri"] == "https://api.cohere.com/v2/chat"
    ]


def _corpus_chat(corpus_dir: Path, name: str) -> bytes:
    path = _corpus_folder(corpus_dir) / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is missing")
    return _cohere_bodies(path)[0]


def test_every_corpus_chat_response_is_typed_and_replays_the_same_json(corpus_dir: Path) -> None:
    bodies = [b for p in sorted(_corpus_folder(corpus_dir).glob("*.yaml")) for b in _cohere_bodies(p)]
    assert len(bodies) >= 4, "expected the corpus's Cohere responses"
    type_name = sdk_types.dotted_name(cohere.V2ChatResponse)
    for body in bodies:
        stored = codec.to_stored("/v2/chat", "application/json", body)
        assert stored.body["__type__"] == type_name
        assert typed_check.check(type_name, stored.body["__data__"]) is None
        wire, media = codec.to_wire("/v2/chat", stored)
        assert json.loads(wire) == json.loads(body) and media == "application/json"


SDK_CASES = [
    *((name, asynchronous) for name in STREAMS for asynchronous in (False, True)),
    ("test_request_simple_success_with_vcr.yaml", False),
    ("test_request_simple_success_with_vcr.yaml", True),
    ("test_cohere_model_thinking_part.yaml", False),
    ("v1-json", False),  # a v1 NonStreamedChatResponse (no v1 traffic in the corpus)
    ("v1-json", True),
]


@pytest.mark.parametrize(
    ("name", "asynchronous"),
    SDK_CASES,
    ids=[f"{n.removesuffix('.yaml')}-{'async' if a else 'sync'}" for n, a in SDK_CASES],
)
def test_replay_through_the_sdk_equals_the_live_run(
    corpus_dir: Path, tmp_path: Path, name: str, asynchronous: bool
) -> None:
    streaming = name in STREAMS
    if streaming:
        chunks, content_type = STREAMS[name]
        version = name[:2]
    elif name == "v1-json":
        chunks, content_type, version = [_compact(V1_RESPONSE)], "application/json", "v1"
    else:
        chunks, content_type, version = [_corpus_chat(corpus_dir, name)], "application/json", "v2"
    route = f"/{version}/chat"
    run = _call(version, asynchronous, streaming)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", route, headers=[("content-type", content_type)], body=chunks)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(_client(version, asynchronous, server.url))
        sent = server.requests[-1]
        base_url = server.url
    assert sent.path == route and sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert live  # the SDK parsed the live bytes into objects

    # The server is gone: everything below is played from the cassette.
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(_client(version, asynchronous, base_url))
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):  # the bytes a replay sends
        raw = httpx.post(base_url + route, content=sent.body, headers={"content-type": "application/json"})
    assert replayed == live
    assert raw.content == b"".join(chunks) or not streaming
    assert raw.headers["content-type"] == content_type

    (record,) = _records(cassette)
    assert record["request"]["endpoint"] == route and record["request"]["headers"] == {}
    response = record["response"]
    names = _names()
    if streaming:
        assert response["is_streaming"] is True and "sse_done" not in response
        table, key = (names.v2_events, "type") if version == "v2" else (names.v1_events, "event_type")
        assert [item["__type__"] for item in response["body"]] == [
            table[i["__data__"][key]] for i in response["body"]
        ]
        assert len(response["body"]) == len(live)
    else:
        cls = cohere.V2ChatResponse if version == "v2" else cohere.NonStreamedChatResponse
        assert response["body"] == {
            "__type__": sdk_types.dotted_name(cls),
            "__data__": json.loads(chunks[0]),
        }
        assert raw.json() == json.loads(chunks[0])


def test_the_tool_call_survives_the_replay(tmp_path: Path) -> None:
    cassette = tmp_path / "cassette"
    run = _call("v2", False, True)
    with FakeOpenAIServer() as server:
        server.enqueue("POST", "/v2/chat", headers=[("content-type", SSE)], body=V2_TOOL)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            run(_client("v2", False, server.url))
        base_url = server.url
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        events = list(
            _client("v2", False, base_url).chat_stream(
                model="command-a-03-2025", messages=[{"role": "user", "content": "hi"}]
            )
        )
    start = next(e for e in events if e.type == "tool-call-start")
    assert start.delta.message.tool_calls.function.name == "get_weather"
    arguments = "".join(
        e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta"
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert events[-1].delta.finish_reason == "TOOL_CALL"


def test_a_recorded_event_its_class_cannot_hold_fails_when_the_cassette_is_opened(tmp_path: Path) -> None:
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", "/v2/chat", headers=[("content-type", SSE)], body=V2_TEXT)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            _call("v2", False, True)(_client("v2", False, server.url))
    (path,) = sorted(cassette.glob("*.json"))
    record = json.loads(path.read_text())
    assert record["response"]["body"][2]["__data__"]["type"] == "content-delta"
    record["response"]["body"][2]["__data__"]["delta"] = "oops"  # a hand edit gone wrong
    path.write_text(json.dumps(record, indent=2) + "\n")
    replay = vcr_ext.VCR(record_mode="none")
    with pytest.raises(CassetteFormatError) as raised, replay.use_cassette(str(cassette)):
        pass
    err = raised.value
    assert (err.path, err.field) == (str(path), "response.body[2].__data__.delta")
    assert 'ContentDeltaV2ChatStreamResponse holds an object or null here, got a string ("oops")' in str(err)


# ------------------------------------------------------------------ credentials


def test_no_credential_a_cohere_client_sends_reaches_a_file(tmp_path: Path) -> None:
    api_key = "".join(chr(ord("a") + (i * 7) % 26) for i in range(40))  # a made-up, key-shaped value
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", "/v2/chat", headers=[("content-type", SSE)], body=V2_TEXT)
        server.enqueue("POST", "/v1/chat", headers=[("content-type", NDJSON)], body=V1_TEXT)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            v2 = cohere.ClientV2(api_key=api_key, base_url=server.url, client_name="vcr-ext-test")
            live = [
                e.model_dump()
                for e in v2.chat_stream(
                    model="command-a-03-2025", messages=[{"role": "user", "content": "hi"}]
                )
            ]
            v1 = cohere.Client(api_key=api_key, base_url=server.url, client_name="vcr-ext-test")
            list(v1.chat_stream(model="command-r", message="hi"))
        sent = server.requests
    assert all(r.headers["authorization"] == f"Bearer {api_key}" for r in sent)
    assert all(r.headers["x-client-name"] == "vcr-ext-test" for r in sent)
    data = b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())
    assert data and api_key.encode() not in data
    records = _records(cassette)
    assert len(records) == 2
    for record in records:
        assert record["request"]["headers"] == {}
        assert set(record["response"]["headers"]) == {"content-type"}
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        other = cohere.ClientV2(api_key="another-key", base_url="http://127.0.0.1:9")
        replayed = [
            e.model_dump()
            for e in other.chat_stream(
                model="command-a-03-2025", messages=[{"role": "user", "content": "hi"}]
            )
        ]
    assert replayed == live
