"""Groq, Mistral, Together, Hugging Face: OpenAI-compatible chat, typed by openai's classes, replayed equal.

What each is typed as, and why:

- **Groq** (``api.groq.com/openai/v1/chat/completions``, route ``/v1/chat/completions``):
  openai's ``ChatCompletion`` / ``ChatCompletionChunk``. The groq SDK is a Stainless clone of
  openai's whose classes have the same fields (plus extras such as ``x_groq``, which SDK models
  keep); every Groq body of the corpus fits openai's class (typed_check accepts it).
- **Together** (``api.together.xyz/v1/chat/completions``): openai's classes, for the same
  reason; the together SDK is not installed here, so it is driven through the openai SDK with
  Together's base URL (a Groq-shaped stream and real Together bodies: the corpus's Hugging Face
  recordings went through ``router.huggingface.co/together``).
- **Hugging Face** (``router.huggingface.co/<provider>/v1/chat/completions``): the router
  answers in the OpenAI shape of the provider behind it; openai's classes, and
  ``huggingface_hub.InferenceClient`` (its own dataclasses, no pydantic) parses the replay
  into equal outputs.
- **Mistral** (``api.mistral.ai/v1/chat/completions``): openai's classes where they hold the
  chunk, plain JSON where they do not. The codec types by route, and Mistral's route is
  OpenAI's, so nothing tells a Mistral body from an OpenAI one but its host. openai's
  ``ChatCompletionChunk`` holds a plain Mistral chunk without loss, but not a Magistral
  thinking chunk, whose ``delta.content`` is an array of parts (openai: a string): typed_check
  rejects those, so they are stored untyped (58 of the 158 chunks of the corpus stream, and
  the thinking response). Every chunk replays the bytes it came with, and the mistralai SDK
  builds equal objects from the replay.

The bytes served are real responses from the shared corpus
(``$VCR_EXT_CORPUS/providers/pydantic-ai/{groq,mistral,huggingface}/``, recorded by
pydantic-ai's suite against the live APIs), served from a loopback server as recorded, one
HTTP chunk per SSE event. Nothing of the corpus is copied into the repository.

A typed chat object's ``id`` and ``created`` are normalized in a recording (the format's rule
for every ``chat.completion[.chunk]``), so live and replayed objects are compared without them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai_corpus import Recording, cassette_records

import vcr_ext
from vcr_ext import canonical, codec, sdk_types, typed_check
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.sse import WhatwgEvent, parse_whatwg

CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
CHAT = "openai.types.chat.chat_completion.ChatCompletion"
ROUTE = "/v1/chat/completions"


# ------------------------------------------------------------------ the corpus


class Recorded(Recording):
    """One recorded chat completion: what the client asked, and the bytes the provider sent."""

    def __init__(self, interaction: dict[str, Any]) -> None:
        super().__init__(interaction)
        self.uri = self.uri.split("#", 1)[0]
        self.request: dict[str, Any] = interaction["request"].get("parsed_body") or {}

    @classmethod
    def wanted(cls, interaction: dict[str, Any]) -> bool:
        uri: str = interaction["request"]["uri"]
        return uri.split("#", 1)[0].endswith("/chat/completions")


def _all(corpus_dir: Path, provider: str) -> list[tuple[str, Recorded]]:
    return Recorded.of_folder(corpus_dir, provider)


def _pick(corpus_dir: Path, provider: str, name: str, *, streaming: bool, index: int = 0) -> Recorded:
    recorded = Recorded.of_file(corpus_dir, provider, name)
    return [r for r in recorded if r.streaming == streaming and r.status == 200][index]


def _events(raw: bytes) -> list[tuple[str, Any]]:
    """(event name, data) of every event a standard client dispatches, data as JSON when it is."""
    return [
        (e.type, e.data if e.data == "[DONE]" else json.loads(e.data))
        for e in parse_whatwg(raw)
        if isinstance(e, WhatwgEvent)
    ]


def _is_thinking_chunk(payload: dict[str, Any]) -> bool:
    return any(isinstance((c.get("delta") or {}).get("content"), list) for c in payload.get("choices", []))


# ------------------------------------------------------------------ the codec, over every real body


@pytest.mark.parametrize("provider", ["groq", "mistral", "huggingface"])
def test_every_corpus_chat_body_is_typed_as_openai_and_replays_the_same(
    corpus_dir: Path, provider: str
) -> None:
    recorded = _all(corpus_dir, provider)
    assert recorded, provider
    untyped_chunks = 0
    for label, rec in recorded:
        assert canonical.route(rec.uri) == ROUTE, label
        stored = codec.to_stored(ROUTE, rec.content_type, rec.body)
        wire, _ = codec.to_wire(ROUTE, stored)
        if rec.status != 200:  # error bodies stay plain JSON
            assert "__type__" not in stored.body and json.loads(wire) == json.loads(rec.body), label
            continue
        if not rec.streaming:
            if stored.body.get("__type__") != CHAT:
                # Only Mistral's thinking response: its message content is an array of parts.
                assert provider == "mistral" and isinstance(
                    stored.body["choices"][0]["message"]["content"], list
                )
            else:
                assert typed_check.check(CHAT, stored.body["__data__"]) is None, label
            assert json.loads(wire) == json.loads(rec.body), label
            continue
        assert stored.is_streaming, label
        # A stream that ends in Groq's error event has no [DONE]: the record says so.
        ends_in_error = b"event: error\n" in rec.body
        assert stored.sse_done is (False if ends_in_error else None), label
        for item in stored.body:
            u = sdk_types.unwrap(item)
            if u.type_name == CHUNK:
                assert typed_check.check(CHUNK, u.payload) is None, label
            elif u.type_name == sdk_types.SSE_EVENT:  # Groq's mid-stream error event
                assert provider == "groq" and u.payload["event"] == "error", label
            else:
                assert u.type_name is None and provider == "mistral" and _is_thinking_chunk(u.payload), label
                untyped_chunks += 1
        assert _events(wire) == _events(rec.body), label
    if provider == "mistral":
        assert untyped_chunks == 58  # the Magistral thinking chunks of the one corpus stream


def test_openai_chunk_holds_a_plain_mistral_chunk_but_not_a_thinking_one(corpus_dir: Path) -> None:
    rec = _pick(corpus_dir, "mistral", "test_mistral_model_thinking_part_iter.yaml", streaming=True)
    payloads = [data for _, data in _events(rec.body) if data != "[DONE]"]
    thinking = [p for p in payloads if _is_thinking_chunk(p)]
    plain = [p for p in payloads if not _is_thinking_chunk(p)]
    assert thinking and plain
    assert all(typed_check.check(CHUNK, p) is None for p in plain)
    problem = typed_check.check(CHUNK, thinking[0])
    assert problem is not None and problem.path == ".choices[0].delta.content"


def test_groq_streams_replay_their_bytes_but_for_go_html_escapes(corpus_dir: Path) -> None:
    # Groq's servers (Go) write <, > and & inside strings as \u003c, \u003e, \u0026; a replay
    # writes the same JSON strings unescaped, as api.openai.com does. Nothing else differs.
    escapes = {b"\\u003c": b"<", b"\\u003e": b">", b"\\u0026": b"&"}
    streams = [(label, rec) for label, rec in _all(corpus_dir, "groq") if rec.streaming]
    assert len(streams) == 6
    escaped = 0
    for label, rec in streams:
        wire, _ = codec.to_wire(ROUTE, codec.to_stored(ROUTE, rec.content_type, rec.body))
        unescaped = rec.body
        for escape, char in escapes.items():
            escaped += unescaped.count(escape)
            unescaped = unescaped.replace(escape, char)
        assert wire == unescaped, label
    assert escaped == 36  # all in the web search stream; the other five replay byte-exact


def test_the_groq_route_is_the_openai_route() -> None:
    assert canonical.route("https://api.groq.com/openai/v1/chat/completions") == ROUTE
    assert canonical.route("https://api.together.xyz/v1/chat/completions") == ROUTE
    assert canonical.route("https://router.huggingface.co/together/v1/chat/completions") == ROUTE
    assert canonical.route("https://api.mistral.ai/v1/chat/completions") == ROUTE


# ------------------------------------------------------------------ through each SDK


def test_a_groq_stream_ending_in_an_error_event_raises_the_same_error_on_replay(
    corpus_dir: Path, tmp_path: Path
) -> None:
    groq = pytest.importorskip("groq", reason="the groq SDK is not installed (tox -e providers installs it)")
    rec = _pick(corpus_dir, "groq", "test_tool_use_failed_error_streaming_with_text.yaml", streaming=True)
    assert b"event: error\n" in rec.body

    def run(base_url: str) -> tuple[list[Any], str]:
        chunks: list[Any] = []
        with pytest.raises(groq.APIError) as raised:
            for chunk in _groq(False, base_url).chat.completions.create(**_messages(rec), stream=True):
                chunks.append(_without_normalized(chunk.model_dump()))
        return chunks, raised.value.message

    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", "/openai/v1/chat/completions", headers=rec.headers, body=rec.chunks())
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(server.url)
        base_url = server.url
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(base_url)
    assert live[0] and replayed == live
    assert live[1] == "Tool choice is required, but model did not call a tool"
    (record,) = cassette_records(cassette)
    assert record["response"]["sse_done"] is False
    assert record["response"]["body"][-1]["__type__"] == sdk_types.SSE_EVENT


def _plain(value: Any) -> Any:
    """An SDK object as JSON-like data: pydantic models dumped, dataclasses (huggingface_hub) as dicts."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _without_normalized(value: Any) -> Any:
    """``value`` without the top-level ``id`` and ``created`` that a recording normalizes."""
    if isinstance(value, list):
        return [_without_normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("id", "created")}
    return value


def _messages(rec: Recorded) -> dict[str, Any]:
    return {k: v for k, v in rec.request.items() if k in ("model", "messages")}


def _groq(asynchronous: bool, base_url: str) -> Any:
    groq = pytest.importorskip("groq", reason="the groq SDK is not installed (tox -e providers installs it)")
    cls = groq.AsyncGroq if asynchronous else groq.Groq
    return cls(
        api_key="gsk_test0000000000000000000000000000000000000000000000", base_url=base_url, max_retries=0
    )


def _openai_together(asynchronous: bool, base_url: str) -> Any:
    import openai

    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(api_key="together-test-key", base_url=base_url + "/v1", max_retries=0)


def _openai_style(client: Any, rec: Recorded, asynchronous: bool, streaming: bool) -> Any:
    create = client.chat.completions.create
    params = _messages(rec)
    if not asynchronous:
        if streaming:
            return [_plain(c) for c in create(**params, stream=True)]
        return _plain(create(**params))

    async def run() -> Any:
        if streaming:
            return [_plain(c) async for c in await create(**params, stream=True)]
        return _plain(await create(**params))

    return asyncio.run(run())


def _mistral(asynchronous: bool, base_url: str) -> Any:
    pytest.importorskip(
        "mistralai.client", reason="the mistralai SDK is not installed (tox -e providers installs it)"
    )
    from mistralai.client import Mistral

    return Mistral(api_key="mistral-test-key", server_url=base_url)


def _mistral_call(client: Any, rec: Recorded, asynchronous: bool, streaming: bool) -> Any:
    params = _messages(rec)
    chat = client.chat
    if not asynchronous:
        if streaming:
            return [_plain(e.data) for e in chat.stream(**params)]
        return _plain(chat.complete(**params))

    async def run() -> Any:
        if streaming:
            return [_plain(e.data) async for e in await chat.stream_async(**params)]
        return _plain(await chat.complete_async(**params))

    return asyncio.run(run())


def _hf(asynchronous: bool, base_url: str) -> Any:
    hub = pytest.importorskip("huggingface_hub", reason="huggingface_hub is not installed")
    cls = hub.AsyncInferenceClient if asynchronous else hub.InferenceClient
    return cls(base_url=base_url + "/v1", api_key="hf_test00000000000000000000000000000000")


def _hf_call(client: Any, rec: Recorded, asynchronous: bool, streaming: bool) -> Any:
    params = _messages(rec)
    if not asynchronous:
        if streaming:
            return [_plain(c) for c in client.chat_completion(**params, stream=True)]
        return _plain(client.chat_completion(**params))

    async def run() -> Any:
        if streaming:
            return [_plain(c) async for c in await client.chat_completion(**params, stream=True)]
        return _plain(await client.chat_completion(**params))

    return asyncio.run(run())


Client = Callable[[bool, str], Any]
Call = Callable[[Any, Recorded, bool, bool], Any]
SDKS: dict[str, tuple[str, Client, Call]] = {
    "groq": ("/openai/v1/chat/completions", _groq, _openai_style),
    "together": (ROUTE, _openai_together, _openai_style),
    "mistral": (ROUTE, _mistral, _mistral_call),
    "huggingface": (ROUTE, _hf, _hf_call),
}
# (SDK, corpus provider folder, corpus file, streaming)
SOURCES = [
    ("groq", "groq", "test_groq_model_instructions.yaml", False),
    ("groq", "groq", "test_groq_model_web_search_tool_stream.yaml", True),
    ("mistral", "mistral", "test_mistral_forwards_penalties.yaml", False),
    ("mistral", "mistral", "test_mistral_model_thinking_part.yaml", False),
    ("mistral", "mistral", "test_mistral_model_thinking_part_iter.yaml", True),
    # Together: its own answers (behind the Hugging Face router), and a Groq-shaped stream.
    ("together", "huggingface", "test_simple_completion.yaml", False),
    ("together", "groq", "test_tool_use_failed_error_streaming.yaml", True),
    ("huggingface", "huggingface", "test_simple_completion.yaml", False),
    ("huggingface", "huggingface", "test_request_structured_response.yaml", False),
    # No Hugging Face stream in the corpus: the router streams OpenAI chunks, as Groq does.
    ("huggingface", "groq", "test_tool_use_failed_error_streaming.yaml", True),
]
CASES = [(*source, asynchronous) for source in SOURCES for asynchronous in (False, True)]
CASE_IDS = [
    f"{sdk}-{name.removesuffix('.yaml')}-{'async' if asynchronous else 'sync'}"
    for sdk, _, name, _, asynchronous in CASES
]


@pytest.mark.parametrize(("sdk", "provider", "corpus_file", "streaming", "asynchronous"), CASES, ids=CASE_IDS)
def test_replay_through_the_provider_sdk_equals_the_live_run(
    corpus_dir: Path,
    tmp_path: Path,
    sdk: str,
    provider: str,
    corpus_file: str,
    streaming: bool,
    asynchronous: bool,
) -> None:
    path, make_client, call = SDKS[sdk]
    # The second stream of this file ends normally (its first one ends in an error event).
    index = 1 if corpus_file == "test_tool_use_failed_error_streaming.yaml" else 0
    rec = _pick(corpus_dir, provider, corpus_file, streaming=streaming, index=index)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        rec.serve(server, path)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = call(make_client(asynchronous, server.url), rec, asynchronous, streaming)
        base_url = server.url
        assert server.requests[-1].path == path
    assert live

    # The server is gone: the replay is played from the cassette.
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = call(make_client(asynchronous, base_url), rec, asynchronous, streaming)
    assert _without_normalized(replayed) == _without_normalized(live)

    (record,) = cassette_records(cassette)
    assert record["request"]["endpoint"] == ROUTE and record["request"]["headers"] == {}
    body = record["response"]["body"]
    if streaming:
        types = {sdk_types.unwrap(item).type_name for item in body}
        assert CHUNK in types and types <= {CHUNK, None}  # None: Mistral's thinking chunks
        assert all("__type__" in item or _is_thinking_chunk(item) for item in body)
        assert len(body) == len(live)  # one stored item per object the SDK yields
    else:
        expected = json.loads(rec.body)
        if sdk == "mistral" and corpus_file == "test_mistral_model_thinking_part.yaml":
            assert body == expected  # content parts: no openai class holds it, kept plain
        else:
            assert body["__type__"] == CHAT
            assert _without_normalized(body["__data__"]) == _without_normalized(expected)


KEYS = {
    "groq": "gsk_test0000000000000000000000000000000000000000000000",
    "together": "together-test-key",
    "mistral": "mistral-test-key",
    "huggingface": "hf_test00000000000000000000000000000000",
}


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_no_credential_the_provider_sdk_sends_reaches_a_file(
    corpus_dir: Path, tmp_path: Path, sdk: str
) -> None:
    path, make_client, call = SDKS[sdk]
    provider, corpus_file = {
        "groq": ("groq", "test_groq_model_instructions.yaml"),
        "together": ("huggingface", "test_simple_completion.yaml"),
        "mistral": ("mistral", "test_mistral_forwards_penalties.yaml"),
        "huggingface": ("huggingface", "test_simple_completion.yaml"),
    }[sdk]
    rec = _pick(corpus_dir, provider, corpus_file, streaming=False)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", path, status=rec.status, headers=rec.headers, body=rec.chunks())
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            call(make_client(False, server.url), rec, False, False)
        (sent,) = server.requests
    # The SDK did send its key, as a bearer token (what every one of them sends).
    assert sent.headers["authorization"] == f"Bearer {KEYS[sdk]}"
    written = b"".join(p.read_bytes() for p in cassette.rglob("*") if p.is_file())
    assert written
    for value in (KEYS[sdk], sent.headers["authorization"], *sent.headers.get("x-api-key", "").split()):
        assert value.encode() not in written
