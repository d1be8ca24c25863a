"""Google Gemini API and Vertex AI: typed per chunk by google-genai's classes, replayed equal through the SDK.

The bytes served are real Gemini and Vertex AI responses from the shared corpus
(``$VCR_EXT_CORPUS/providers/pydantic-ai/google/``, recorded by pydantic-ai's suite against
the live APIs through google-genai; see its README), served from a loopback server as
recorded, one HTTP chunk per SSE event. Nothing of the corpus is copied into the
repository. The corpus files used:

- ``test_google_model_instructions.yaml``: a Gemini text answer;
- ``test_google_tool_output.yaml``: a Gemini answer that is a ``functionCall`` part;
- ``test_google_model_thinking_part.yaml``: a Gemini answer with thought parts;
- ``test_google_model_usage_limit_not_exceeded.yaml``: a Gemini ``:countTokens``;
- ``test_google_model_stream.yaml``: a Gemini text stream;
- ``test_google_streaming_tool_call_thought_signature.yaml``: a Gemini stream whose chunks are
  a ``functionCall`` with a ``thoughtSignature``;
- ``test_google_model_thinking_part_iter.yaml``: a Gemini stream of thought parts, then text;
- ``test_google_model_vertex_provider.yaml``: a Vertex AI (v1beta1) answer;
- ``test_google_vertex_service_tier_flex_stream.yaml``: a Vertex AI stream;
- ``test_google_vertexai_count_tokens_forwards_native_tools.yaml``: a Vertex AI ``:countTokens``;
- ``test_google_model_file_search_tool.yaml``: a resumable upload (its start and finish);
- every other Gemini and Vertex stream and JSON answer of the folder, at the codec level.

The client asks its own question (what it sends does not have to be what pydantic-ai
sent: the server answers whatever comes); the live run and the replay ask the same.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic_ai_corpus import (
    Recording,
    assert_none_written,
    cassette_records,
    corpus_cassette,
    interactions,
    kept_headers,
)

genai = pytest.importorskip(
    "google.genai", reason="google-genai is not installed (tox -e providers installs it)"
)

from google.auth import credentials as google_credentials  # noqa: E402
from google.genai import types as genai_types  # noqa: E402

import vcr_ext  # noqa: E402
from vcr_ext import canonical, codec, scrub, sdk_types, typed_check  # noqa: E402
from vcr_ext.demo.server import FakeOpenAIServer  # noqa: E402
from vcr_ext.errors import CassetteFormatError  # noqa: E402
from vcr_ext.persister import Persister  # noqa: E402
from vcr_ext.providers import google as google_provider  # noqa: E402

TEXT = "test_google_model_instructions.yaml"
TOOL_CALL = "test_google_tool_output.yaml"
THINKING = "test_google_model_thinking_part.yaml"
COUNT_TOKENS = "test_google_model_usage_limit_not_exceeded.yaml"
TEXT_STREAM = "test_google_model_stream.yaml"
TOOL_STREAM = "test_google_streaming_tool_call_thought_signature.yaml"
THINKING_STREAM = "test_google_model_thinking_part_iter.yaml"
VERTEX_TEXT = "test_google_model_vertex_provider.yaml"
VERTEX_STREAM = "test_google_vertex_service_tier_flex_stream.yaml"
VERTEX_COUNT_TOKENS = "test_google_vertexai_count_tokens_forwards_native_tools.yaml"
GENERATE = "google.genai.types.GenerateContentResponse"
API_KEY = "AIzaSyTestKey0000000000000000000000000"
QUESTION = "What is the capital of France?"


# ------------------------------------------------------------------ the corpus


class Recorded(Recording):
    """One recorded Gemini or Vertex AI call: where it went, and the bytes Google sent."""

    def __init__(self, interaction: dict[str, Any]) -> None:
        super().__init__(interaction)
        parts = urlsplit(self.uri)
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.route = canonical.route(self.uri)
        self.vertex = "/projects/" in parts.path
        segments = [s for s in parts.path.split("/") if s]
        self.version = segments[0]
        self.model, _, self.method = segments[-1].partition(":")
        if self.vertex:
            self.project, self.location = segments[2], segments[4]

    @classmethod
    def read(cls, path: Path) -> list[Recorded]:
        """The answered calls of a model (``.../models/<model>:<method>``), what the tests serve."""
        return [
            rec
            for rec in super().read(path)
            if ":" in rec.path.rpartition("/")[2] and "/models/" in rec.path and rec.status == 200
        ]


def _first(corpus_dir: Path, name: str, method: str = "generateContent") -> Recorded:
    return next(rec for rec in Recorded.of_file(corpus_dir, "google", name) if rec.method == method)


def _all(corpus_dir: Path, *, streaming: bool) -> list[tuple[str, Recorded]]:
    return [
        (label, rec) for label, rec in Recorded.of_folder(corpus_dir, "google") if rec.streaming == streaming
    ]


def _sdk_chunks(raw: bytes) -> list[Any]:
    """The JSON values google-genai's own stream reader takes from ``raw`` (what it builds chunks from)."""
    chunks = google_provider.sdk_chunks(raw)
    assert chunks is not None
    return [json.loads(chunk) for chunk in chunks]


def _objects(values: list[Any], vertex: bool) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` objects google-genai builds from wire values, dumped."""
    from google.genai import models

    convert = (
        models._GenerateContentResponse_from_vertex if vertex else models._GenerateContentResponse_from_mldev
    )
    return [
        genai_types.GenerateContentResponse._from_response(
            response=convert(v, None, None), kwargs={}
        ).model_dump()
        for v in values
    ]


# ------------------------------------------------------------------ routes


@pytest.mark.parametrize(
    ("url", "route"),
    [
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        ),
        (
            "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash:generateContent",
            "/v1/models/gemini-2.5-flash:generateContent",
        ),
        ("https://generativelanguage.googleapis.com/v1beta/models?pageSize=50", "/v1beta/models"),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash",
            "/v1beta/models/gemini-2.0-flash",
        ),
        (
            "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=u1",
            "/upload/v1beta/files",
        ),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1"
            "/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            "/v1/publishers/google/models/gemini-2.0-flash:streamGenerateContent",
        ),
        (
            "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/publishers/google/models/g:countTokens",
            "/v1beta1/publishers/google/models/g:countTokens",
        ),
        (  # Vertex AI express mode: an API key, no project in the path
            "https://aiplatform.googleapis.com/v1/publishers/google/models/g:generateContent",
            "/v1/publishers/google/models/g:generateContent",
        ),
        (  # a gateway's own path before Google's
            "https://gateway.ai.cloudflare.com/v1/acct/gw/google-ai-studio/v1beta/models/g:generateContent",
            "/v1beta/models/g:generateContent",
        ),
        # The OpenAI-compatible endpoints stay OpenAI routes.
        ("https://generativelanguage.googleapis.com/v1beta/openai/chat/completions", "/v1/chat/completions"),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/l/endpoints/openapi/chat/completions",
            "/v1/chat/completions",
        ),
        (
            "https://api.openai.com/v1/models/ft:gpt-4o-mini:org::abc123",
            "/v1/models/ft:gpt-4o-mini:org::abc123",
        ),
    ],
)
def test_route_keeps_the_google_call_and_drops_the_account(url: str, route: str) -> None:
    assert canonical.route(url) == route


def test_classes_follow_the_route_and_the_payload_shape() -> None:
    names = google_provider.names()
    assert names is not None
    answer = {"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}}]}
    assert sdk_types.classify("/v1beta/models/g:generateContent", answer, streaming=False) == GENERATE
    assert sdk_types.classify("/v1/models/g:streamGenerateContent", answer, streaming=True) == GENERATE
    assert (
        sdk_types.classify("/v1/publishers/google/models/g:generateContent", answer, streaming=False)
        == GENERATE
    )
    counted = {"totalTokens": 3}
    assert (
        sdk_types.classify("/v1beta/models/g:countTokens", counted, streaming=False) == names["count_tokens"]
    )
    embedded = {"embedding": {"values": [0.1]}}
    assert sdk_types.classify("/v1beta/models/g:embedContent", embedded, streaming=False) == names["embed"]
    batch = {"embeddings": [{"values": [0.1]}]}
    assert sdk_types.classify("/v1beta/models/g:batchEmbedContents", batch, streaming=False) == names["embed"]
    assert (
        sdk_types.classify("/v1beta/models", {"models": [{"name": "models/g"}]}, streaming=False)
        == names["models"]
    )
    assert sdk_types.classify("/v1beta/models/g", {"name": "models/g"}, streaming=False) == names["model"]
    # Error bodies, shapes that are not the route's, and OpenAI's own models stay untyped.
    error = {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}
    assert sdk_types.classify("/v1beta/models/g:generateContent", error, streaming=False) is None
    assert sdk_types.classify("/v1beta/models/g:streamGenerateContent", error, streaming=True) is None
    assert sdk_types.classify("/v1beta/models/g:countTokens", answer, streaming=False) is None
    openai_model = {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"}
    assert sdk_types.classify("/v1/models/gpt-4o", openai_model, streaming=False) == (
        "openai.types.model.Model"
    )


# ------------------------------------------------------------------ the codec, over every real stream


def test_every_corpus_stream_is_typed_per_chunk_and_replays_the_same_chunks(corpus_dir: Path) -> None:
    streams = _all(corpus_dir, streaming=True)
    assert len(streams) >= 10, "expected the corpus's Gemini and Vertex streams"
    assert any(rec.vertex for _, rec in streams)
    for label, rec in streams:
        stored = codec.to_stored(rec.route, rec.content_type, rec.body)
        assert stored.is_streaming, label  # not kept raw: the replay checks passed
        assert stored.sse_done is None, label  # no [DONE] is the kind's default
        for item in stored.body:
            assert item["__type__"] == GENERATE, label
            assert typed_check.check(GENERATE, item["__data__"]) is None, label
        assert [item["__data__"] for item in stored.body] == _sdk_chunks(rec.body), label
        wire, content_type = codec.to_wire(rec.route, stored)
        assert content_type.startswith("text/event-stream")
        assert b"[DONE]" not in wire, label
        assert _sdk_chunks(wire) == _sdk_chunks(rec.body), label
        assert _objects(_sdk_chunks(wire), rec.vertex) == _objects(_sdk_chunks(rec.body), rec.vertex), label


def test_every_corpus_answer_is_typed_as_the_class_the_sdk_builds(corpus_dir: Path) -> None:
    answers = _all(corpus_dir, streaming=False)
    assert len(answers) >= 80
    names = google_provider.names()
    assert names is not None
    expected = {"generateContent": GENERATE, "countTokens": names["count_tokens"]}
    for label, rec in answers:
        stored = codec.to_stored(rec.route, rec.content_type, rec.body)
        assert stored.body["__type__"] == expected[rec.method], label
        assert stored.body["__data__"] == json.loads(rec.body), label
        assert typed_check.check(stored.body["__type__"], stored.body["__data__"]) is None, label
        wire, _ = codec.to_wire(rec.route, stored)
        assert json.loads(wire) == json.loads(rec.body), label


def test_a_payload_its_class_cannot_hold_fails_the_load_time_check() -> None:
    assert typed_check.is_checked(GENERATE)
    bad = {"candidates": [{"content": {"parts": [{"text": 3}]}}]}
    mismatch = typed_check.check(GENERATE, bad)
    assert mismatch is not None and mismatch.path == ".candidates[0].content.parts[0].text"
    # So such a payload is not typed, and replays as the plain JSON it is.
    stored = codec.to_stored("/v1beta/models/g:generateContent", "application/json", json.dumps(bad).encode())
    assert stored.body == bad


def _without_google_genai(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-genai as if it were not installed: no class names, and its modules cannot be imported."""
    monkeypatch.setattr(google_provider, "names", lambda: None)
    for module in ("google.genai", "google.genai.types", "google.genai._api_client"):
        monkeypatch.setitem(sys.modules, module, None)


def test_without_the_sdk_a_stream_is_stored_plain_and_replays_the_same_bytes(
    corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = _first(corpus_dir, TOOL_STREAM, "streamGenerateContent")
    expected = _sdk_chunks(rec.body)
    read_names = google_provider.names.__wrapped__  # names() uncached
    _without_google_genai(monkeypatch)
    assert read_names() is None  # what names() finds when it cannot import the SDK
    assert google_provider.sdk_chunks(rec.body) is None
    stored = codec.to_stored(rec.route, rec.content_type, rec.body)
    assert stored.is_streaming and stored.sse_done is False  # said explicitly: no type says it
    assert stored.body == expected  # plain JSON, no envelope
    wire, _ = codec.to_wire(rec.route, stored)
    assert b"[DONE]" not in wire
    assert wire == b"".join(b"data: " + codec.json_bytes(v) + b"\n\n" for v in expected)
    monkeypatch.undo()
    assert _sdk_chunks(wire) == expected


_NO_GOOGLE = """
import importlib.abc, json, sys

class NoGoogle(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "google" or name.startswith("google."):
            raise ImportError(f"no module named {name!r} (google-genai is not installed)")
        return None

sys.meta_path.insert(0, NoGoogle())
import httpx
import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer

body_file, path, cassette = sys.argv[1:4]
chunks = json.loads(open(body_file).read())

def read(origin):
    with httpx.stream("POST", origin + path, json={"contents": [{"parts": [{"text": "hi"}]}]}) as response:
        return response.read().decode()

with FakeOpenAIServer() as server:
    sse = [("content-type", "text/event-stream")]
    server.enqueue("POST", path, headers=sse, body=[c.encode() for c in chunks])
    with vcr_ext.VCR(record_mode="once").use_cassette(cassette):
        live = read(server.url)
    origin = server.url
with vcr_ext.VCR(record_mode="none").use_cassette(cassette):
    replayed = read(origin)
loaded = sorted(m for m in sys.modules if m == "google" or m.startswith("google."))
print(json.dumps({"loaded": loaded, "live": live, "replayed": replayed}))
"""


def test_without_google_genai_installed_a_stream_records_and_replays(
    corpus_dir: Path, tmp_path: Path
) -> None:
    # A fresh interpreter where no google.* module can be imported at all: vcr_ext loads,
    # records a Gemini stream (over plain httpx) with generic types, and replays it.
    rec = _first(corpus_dir, THINKING_STREAM, "streamGenerateContent")
    body_file = tmp_path / "chunks.json"
    body_file.write_text(json.dumps([c.decode() for c in rec.chunks()]))
    cassette = tmp_path / "cassette"
    done = subprocess.run(
        [sys.executable, "-c", _NO_GOOGLE, str(body_file), rec.path, str(cassette)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["loaded"] == []
    assert out["live"].encode() == rec.body
    assert b"[DONE]" not in out["replayed"].encode()
    assert _sdk_chunks(out["replayed"].encode()) == _sdk_chunks(rec.body)
    (record,) = cassette_records(cassette)
    assert record["response"]["sse_done"] is False  # no type to say it: the record does
    assert record["response"]["body"] == _sdk_chunks(rec.body)  # plain JSON chunks, no envelope
    assert record["request"]["model"] == rec.model


def test_typed_records_replay_without_the_sdk(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Replay frames the chunks from the type names alone: nothing of google-genai is imported.
    rec = _first(corpus_dir, THINKING_STREAM, "streamGenerateContent")
    stored = codec.to_stored(rec.route, rec.content_type, rec.body)
    _without_google_genai(monkeypatch)
    wire, _ = codec.to_wire(rec.route, stored)
    monkeypatch.undo()
    assert b"[DONE]" not in wire
    assert _sdk_chunks(wire) == _sdk_chunks(rec.body)


# ------------------------------------------------------------------ through the SDK


class FakeCredentials(google_credentials.Credentials):  # type: ignore[misc]
    """google-auth credentials holding a fixed access token (Vertex AI sends it as a bearer token)."""

    def __init__(self, token: str, quota_project_id: str | None = None) -> None:
        super().__init__()
        self.token = token
        self._quota_project_id = quota_project_id

    def refresh(self, request: Any) -> None:
        return None  # the token never expires


def _client(rec: Recorded, base_url: str, *, api_key: str = API_KEY, credentials: Any = None) -> Any:
    http_options = {"base_url": base_url, "api_version": rec.version}
    if rec.vertex:
        return genai.Client(
            vertexai=True,
            project=rec.project,
            location=rec.location,
            credentials=credentials or FakeCredentials("ya29.test-token"),
            http_options=http_options,
        )
    return genai.Client(api_key=api_key, http_options=http_options)


def _dump(response: Any) -> dict[str, Any]:
    """The parsed object; its ``sdk_http_response`` (every header the live server sent) is compared apart."""
    dumped: dict[str, Any] = response.model_dump(exclude={"sdk_http_response"})
    return dumped


def _headers(response: Any) -> dict[str, str]:
    headers = response.sdk_http_response.headers if response.sdk_http_response else {}
    return {k.lower(): v for k, v in (headers or {}).items() if k.lower() in scrub.KEEP_RESPONSE_HEADERS}


def _generate(client: Any, rec: Recorded) -> Any:
    response = client.models.generate_content(model=rec.model, contents=QUESTION)
    return {"response": _dump(response), "headers": _headers(response), "text": response.text}


def _async_generate(client: Any, rec: Recorded) -> Any:
    async def run() -> Any:
        response = await client.aio.models.generate_content(model=rec.model, contents=QUESTION)
        return {"response": _dump(response), "headers": _headers(response), "text": response.text}

    return asyncio.run(run())


def _stream(client: Any, rec: Recorded) -> Any:
    chunks = list(client.models.generate_content_stream(model=rec.model, contents=QUESTION))
    return {"chunks": [_dump(c) for c in chunks], "headers": [_headers(c) for c in chunks]}


def _async_stream(client: Any, rec: Recorded) -> Any:
    async def run() -> Any:
        stream = await client.aio.models.generate_content_stream(model=rec.model, contents=QUESTION)
        chunks = [c async for c in stream]
        return {"chunks": [_dump(c) for c in chunks], "headers": [_headers(c) for c in chunks]}

    return asyncio.run(run())


def _count_tokens(client: Any, rec: Recorded) -> Any:
    response = client.models.count_tokens(model=rec.model, contents=QUESTION)
    return {"response": _dump(response)}


def _async_count_tokens(client: Any, rec: Recorded) -> Any:
    async def run() -> Any:
        return {"response": _dump(await client.aio.models.count_tokens(model=rec.model, contents=QUESTION))}

    return asyncio.run(run())


def _replayed_bytes(cassette: Path, url: str, body: bytes) -> bytes:
    """The body bytes a replay of the cassette's request sends, read with plain httpx or aiohttp.

    google-genai's async client goes through aiohttp when it is installed, and vcrpy
    records the method as aiohttp was given it (``post``); the request is sent again
    the same way, so it matches.
    """
    (record,) = cassette_records(cassette)
    method = record["request"]["method"]
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        if method.isupper():
            return httpx.request(
                method, url, content=body, headers={"content-type": "application/json"}
            ).content

        async def fetch() -> bytes:
            import aiohttp

            async with (
                aiohttp.ClientSession() as session,
                session.request(method, url, data=body) as response,
            ):
                return await response.read()

        return asyncio.run(fetch())


CALLS: dict[str, tuple[str, Callable[[Any, Recorded], Any]]] = {
    "sync": ("generateContent", _generate),
    "async": ("generateContent", _async_generate),
    "stream": ("streamGenerateContent", _stream),
    "async-stream": ("streamGenerateContent", _async_stream),
    "count-tokens": ("countTokens", _count_tokens),
    "async-count-tokens": ("countTokens", _async_count_tokens),
}
CASES = [
    *((name, call) for name in (TEXT, TOOL_CALL, THINKING, VERTEX_TEXT) for call in ("sync", "async")),
    *(
        (name, call)
        for name in (TEXT_STREAM, TOOL_STREAM, THINKING_STREAM, VERTEX_STREAM)
        for call in ("stream", "async-stream")
    ),
    (COUNT_TOKENS, "count-tokens"),
    (VERTEX_COUNT_TOKENS, "count-tokens"),
    (VERTEX_COUNT_TOKENS, "async-count-tokens"),
]
CASE_IDS = [f"{name.removeprefix('test_google_').removesuffix('.yaml')}-{call}" for name, call in CASES]


@pytest.mark.parametrize(("corpus_file", "call"), CASES, ids=CASE_IDS)
def test_replay_through_the_sdk_equals_the_live_run(
    corpus_dir: Path, tmp_path: Path, corpus_file: str, call: str
) -> None:
    method, run = CALLS[call]
    rec = _first(corpus_dir, corpus_file, method)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        rec.serve(server, rec.path)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(_client(rec, server.url), rec)
        sent = server.requests[-1]
        base_url = server.url
    assert sent.path == rec.path  # the SDK asked what Google was asked

    # The server is gone: everything below is played from the cassette.
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(_client(rec, base_url), rec)
    raw = _replayed_bytes(cassette, base_url + rec.path, sent.body)
    assert replayed == live

    (record,) = cassette_records(cassette)
    request, response = record["request"], record["response"]
    assert request["headers"] == {}
    assert request["endpoint"] == rec.route
    assert request["model"] == rec.model  # from the path: Google's bodies name no model
    assert request["url"] == base_url + rec.path  # ?alt=sse kept: it asks for SSE
    assert response["headers"]["content-type"] == rec.content_type
    if rec.streaming:
        assert response["is_streaming"] is True and "sse_done" not in response
        assert [item["__type__"] for item in response["body"]] == [GENERATE] * len(response["body"])
        assert [item["__data__"] for item in response["body"]] == _sdk_chunks(rec.body)
        assert b"[DONE]" not in raw
        assert _sdk_chunks(raw) == _sdk_chunks(rec.body)
    else:
        names = google_provider.names()
        assert names is not None
        expected = GENERATE if method == "generateContent" else names["count_tokens"]
        assert response["body"]["__type__"] == expected
        assert response["body"]["__data__"] == json.loads(rec.body)
        assert json.loads(raw) == json.loads(rec.body)


def _record_then_replay(rec: Recorded, cassette: Path, call: Callable[[Any], Any]) -> Any:
    """``call(client)`` against the server (recorded), then against the cassette alone; the replayed result.

    The client is held while its result is read: google-genai closes a sync client's
    HTTP connection pool when the client is garbage-collected, even mid-stream.
    """
    with FakeOpenAIServer() as server:
        server.enqueue("POST", rec.path, headers=rec.headers, body=rec.chunks())
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live_client = _client(rec, server.url)
            call(live_client)
        base_url = server.url
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        client = _client(rec, base_url)
        return call(client)


def test_a_tool_call_and_thoughts_come_back_as_the_sdk_parts(corpus_dir: Path, tmp_path: Path) -> None:
    # What the equality above covers, said in the SDK's own terms.
    rec = _first(corpus_dir, TOOL_STREAM, "streamGenerateContent")
    chunks = _record_then_replay(
        rec,
        tmp_path / "tool",
        lambda client: list(client.models.generate_content_stream(model=rec.model, contents=QUESTION)),
    )
    calls = [call for chunk in chunks for call in chunk.function_calls or []]
    assert [call.name for call in calls] == ["get_country"]
    first_part = chunks[0].candidates[0].content.parts[0]
    assert isinstance(first_part.thought_signature, bytes) and first_part.thought_signature

    rec = _first(corpus_dir, THINKING)
    answer = _record_then_replay(
        rec,
        tmp_path / "thinking",
        lambda client: client.models.generate_content(model=rec.model, contents=QUESTION),
    )
    parts = answer.candidates[0].content.parts
    assert any(part.thought for part in parts) and any(not part.thought and part.text for part in parts)


def test_the_gemini_api_v1_records_and_replays_typed(corpus_dir: Path, tmp_path: Path) -> None:
    # The Gemini API's v1 (google-genai 3.x's default; 2.x's is v1beta): /v1/models/<m>:..., OpenAI's prefix.
    rec = _first(corpus_dir, TEXT_STREAM, "streamGenerateContent")
    path = f"/v1/models/{rec.model}:streamGenerateContent?alt=sse"
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", path, headers=rec.headers, body=rec.chunks())
        client = genai.Client(api_key=API_KEY, http_options={"base_url": server.url, "api_version": "v1"})
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = _stream(client, rec)
        assert server.requests[-1].path == path
        base_url = server.url
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = _stream(
            genai.Client(api_key=API_KEY, http_options={"base_url": base_url, "api_version": "v1"}), rec
        )
    assert replayed == live
    (record,) = cassette_records(cassette)
    assert record["request"]["endpoint"] == f"/v1/models/{rec.model}:streamGenerateContent"
    assert {item["__type__"] for item in record["response"]["body"]} == {GENERATE}
    assert "sse_done" not in record["response"]


# google-genai's list/get/embed answers; the corpus has none, so these are written here,
# in the shapes the Gemini API documents (camelCase, ``nextPageToken`` paging).
MODEL = {
    "name": "models/gemini-2.0-flash",
    "version": "2.0",
    "displayName": "Gemini 2.0 Flash",
    "inputTokenLimit": 1048576,
    "supportedGenerationMethods": ["generateContent", "countTokens"],
}
PAGES = [
    {"models": [MODEL], "nextPageToken": "page-2"},
    {
        "models": [
            {
                "name": "models/text-embedding-004",
                "version": "004",
                "supportedGenerationMethods": ["embedContent"],
            }
        ]
    },
]
EMBEDDINGS = {"embeddings": [{"values": [0.25, -0.5, 0.125]}]}


def test_models_and_embeddings_on_the_v1_routes_openai_shares(tmp_path: Path) -> None:
    # The Gemini API's v1 (google-genai's default) lists models on /v1/models, as OpenAI does.
    json_headers = [("content-type", "application/json; charset=UTF-8")]

    def run(client: Any) -> Any:
        return {
            "models": [m.model_dump() for m in client.models.list()],
            "model": client.models.get(model="gemini-2.0-flash").model_dump(exclude={"sdk_http_response"}),
            "embedding": _dump(client.models.embed_content(model="text-embedding-004", contents="hi")),
        }

    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        for page in PAGES:
            server.enqueue("GET", "/v1/models", headers=json_headers, body=json.dumps(page).encode())
        server.enqueue(
            "GET", "/v1/models/gemini-2.0-flash", headers=json_headers, body=json.dumps(MODEL).encode()
        )
        embed_path = "/v1/models/text-embedding-004:batchEmbedContents"
        server.enqueue("POST", embed_path, headers=json_headers, body=json.dumps(EMBEDDINGS).encode())
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(
                genai.Client(api_key=API_KEY, http_options={"base_url": server.url, "api_version": "v1"})
            )
        assert [r.path for r in server.requests] == [
            "/v1/models",
            "/v1/models?pageToken=page-2",
            "/v1/models/gemini-2.0-flash",
            embed_path,
        ]
        base_url = server.url
    assert [m["name"] for m in live["models"]] == ["models/gemini-2.0-flash", "models/text-embedding-004"]
    assert live["embedding"]["embeddings"][0]["values"] == [0.25, -0.5, 0.125]
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(
            genai.Client(api_key=API_KEY, http_options={"base_url": base_url, "api_version": "v1"})
        )
    assert replayed == live

    names = google_provider.names()
    assert names is not None
    typed = {
        (r["request"]["url"].removeprefix(base_url), r["response"]["body"]["__type__"])
        for r in cassette_records(cassette)
    }
    assert typed == {
        ("/v1/models", names["models"]),
        ("/v1/models?pageToken=page-2", names["models"]),
        ("/v1/models/gemini-2.0-flash", names["model"]),
        (embed_path, names["embed"]),
    }
    # OpenAI's own page on the same route is still OpenAI's (stored as its Model items).
    openai_page = {
        "object": "list",
        "data": [{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "x"}],
    }
    stored = codec.to_stored("/v1/models", "application/json", json.dumps(openai_page).encode())
    assert [item["__type__"] for item in stored.body] == ["openai.types.model.Model"]


def test_an_error_answer_replays_as_the_same_sdk_error(tmp_path: Path) -> None:
    # Google's error shape (https://ai.google.dev/gemini-api/docs/troubleshooting); not in the corpus.
    error = {
        "error": {"code": 429, "message": "Resource has been exhausted.", "status": "RESOURCE_EXHAUSTED"}
    }
    path = "/v1/models/gemini-2.0-flash:generateContent"

    def run(client: Any) -> Any:
        with pytest.raises(genai.errors.ClientError) as caught:
            client.models.generate_content(model="gemini-2.0-flash", contents=QUESTION)
        return (caught.value.code, caught.value.status, caught.value.message, caught.value.details)

    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        headers = [("content-type", "application/json; charset=UTF-8")]
        server.enqueue("POST", path, status=429, headers=headers, body=json.dumps(error).encode())
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(
                genai.Client(api_key=API_KEY, http_options={"base_url": server.url, "api_version": "v1"})
            )
        assert len(server.requests) == 1  # google-genai retries nothing unless retry_options say so
        base_url = server.url
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(
            genai.Client(api_key=API_KEY, http_options={"base_url": base_url, "api_version": "v1"})
        )
    assert replayed == live == (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.", error)
    (record,) = cassette_records(cassette)
    assert record["response"]["status"] == 429
    assert record["response"]["body"] == error  # plain JSON: no class is an error body


def test_a_different_model_in_the_path_does_not_match(corpus_dir: Path, tmp_path: Path) -> None:
    rec = _first(corpus_dir, TEXT)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", rec.path, headers=rec.headers, body=rec.chunks())
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            _generate(_client(rec, server.url), rec)
        base_url = server.url
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        client = _client(rec, base_url)
        assert _generate(client, rec)["text"]
        with pytest.raises(Exception, match="gemini-other"):
            client.models.generate_content(model="gemini-other", contents=QUESTION)


def test_a_recorded_chunk_its_class_cannot_hold_is_reported_at_load(corpus_dir: Path, tmp_path: Path) -> None:
    rec = _first(corpus_dir, TEXT_STREAM, "streamGenerateContent")
    cassette = tmp_path / "cassette"
    _record_then_replay(
        rec,
        cassette,
        lambda client: list(client.models.generate_content_stream(model=rec.model, contents=QUESTION)),
    )
    (path,) = sorted(cassette.glob("*.json"))
    record = json.loads(path.read_text())
    record["response"]["body"][1]["__data__"]["candidates"][0]["content"]["parts"] = {"text": "not a list"}
    path.write_text(json.dumps(record, indent=2))
    with pytest.raises(CassetteFormatError) as caught:
        Persister().load_cassette(cassette)
    message = str(caught.value)
    assert path.name in message
    assert "response.body[1].__data__.candidates[0].content.parts" in message
    assert "GenerateContentResponse holds an array or null here, got an object" in message


UPLOAD = "test_google_model_file_search_tool.yaml"
GOOGLE_ORIGIN = "https://generativelanguage.googleapis.com"


def test_a_resumable_upload_replays_through_the_upload_url_header(corpus_dir: Path, tmp_path: Path) -> None:
    # google-genai starts an upload, reads where to send the bytes from x-goog-upload-url and
    # whether it is done from x-goog-upload-status: without those two headers it cannot finish.
    start, finish = interactions(corpus_cassette(corpus_dir, "google", UPLOAD))[1:3]
    store = start["request"]["uri"].rpartition("/")[2].partition(":")[0]

    def served(interaction: dict[str, Any], origin: str) -> tuple[str, list[tuple[str, str]], bytes]:
        parts = urlsplit(interaction["request"]["uri"])
        headers = [
            (name, value.replace(GOOGLE_ORIGIN, origin))  # the upload URL points at the loopback server
            for name, value in kept_headers(interaction["response"])
        ]
        response = interaction["response"]
        body = json.dumps(response["parsed_body"]).encode() if "parsed_body" in response else b""
        return parts.path + (f"?{parts.query}" if parts.query else ""), headers, body

    def run(client: Any) -> Any:
        operation = client.file_search_stores.upload_to_file_search_store(
            file_search_store_name=f"fileSearchStores/{store}",
            file=io.BytesIO(b"The capital of France is Paris."),
            config={"mime_type": "text/plain", "display_name": "capitals.txt"},
        )
        return operation.model_dump(exclude={"sdk_http_response"})

    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        for interaction in (start, finish):
            at, headers, body = served(interaction, server.url)
            server.enqueue("POST", at, headers=headers, body=body)
        client = genai.Client(api_key=API_KEY, http_options={"base_url": server.url, "api_version": "v1beta"})
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(client)
        sent = [urlsplit(r.path).query for r in server.requests]
        base_url = server.url
    assert sent[0] == "" and "upload_id=" in sent[1]  # the second went where the header said
    assert live["name"] == finish["response"]["parsed_body"]["name"]
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replay_client = genai.Client(
            api_key=API_KEY, http_options={"base_url": base_url, "api_version": "v1beta"}
        )
        replayed = run(replay_client)
    assert replayed == live
    kept = [r["response"].get("headers", {}) for r in cassette_records(cassette)]
    assert {h.get("x-goog-upload-status") for h in kept} == {"active", "final"}
    assert any("upload_id=" in h.get("x-goog-upload-url", "") for h in kept)


def test_the_upload_headers_google_genai_acts_on_are_kept() -> None:
    headers = {
        "x-goog-upload-url": f"https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=u1&key={API_KEY}",
        "x-goog-upload-status": "active",
        "x-guploader-uploadid": "u1",
        "server-timing": "gfet4t7; dur=12",
    }
    assert scrub.response_headers(headers) == {
        "x-goog-upload-status": "active",
        "x-goog-upload-url": "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=u1",
    }


# ------------------------------------------------------------------ credentials


ALNUM = string.ascii_letters + string.digits


def _fake(seed: str, n: int, alphabet: str = ALNUM) -> str:
    """``n`` random characters, the same every run for the same seed."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_no_credential_a_gemini_client_sends_reaches_a_file(corpus_dir: Path, tmp_path: Path) -> None:
    # Generated, so that no secret scanner mistakes this file for a leak.
    api_key = "AIza" + _fake("gemini", 35, ALNUM + "-_")
    query_key = "AIza" + _fake("gemini-query", 35, ALNUM + "-_")
    rec = _first(corpus_dir, TEXT_STREAM, "streamGenerateContent")
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        for _ in range(2):
            server.enqueue("POST", rec.path.partition("?")[0], headers=rec.headers, body=rec.chunks())
        client = _client(rec, server.url, api_key=api_key)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            # The key both ways Google takes it: the SDK's x-goog-api-key header, and ?key=
            # (the SDK never puts it in the URL; curl examples and REST callers do).
            live = [
                _dump(c) for c in client.models.generate_content_stream(model=rec.model, contents=QUESTION)
            ]
            httpx.post(server.url + rec.path + f"&key={query_key}", json={"contents": []})
        sent = server.requests
    assert sent[0].headers["x-goog-api-key"] == api_key  # the client did send it
    assert query_key in sent[1].path
    assert_none_written(tmp_path, (api_key, query_key))
    records = cassette_records(cassette)
    assert len(records) == 2
    assert all(r["request"]["headers"] == {} and "key=" not in r["request"]["url"] for r in records)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        other = _client(rec, "http://127.0.0.1:9", api_key="AIza-another-key")
        replayed = [
            _dump(c) for c in other.models.generate_content_stream(model=rec.model, contents=QUESTION)
        ]
        # A request with another ?key= is the same request: the key is never matched on.
        again = httpx.post(f"http://127.0.0.1:9{rec.path}&key=AIza-another-key", json={"contents": []})
    assert replayed == live
    assert _sdk_chunks(again.content) == _sdk_chunks(rec.body)


def test_no_credential_a_vertex_client_sends_reaches_a_file(corpus_dir: Path, tmp_path: Path) -> None:
    token = "ya29." + _fake("vertex", 160, ALNUM + "-_")
    quota_project = "quota-" + _fake("quota", 12, string.ascii_lowercase)
    rec = _first(corpus_dir, VERTEX_STREAM, "streamGenerateContent")
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", rec.path, headers=rec.headers, body=rec.chunks())
        client = _client(rec, server.url, credentials=FakeCredentials(token, quota_project))
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = [
                _dump(c) for c in client.models.generate_content_stream(model=rec.model, contents=QUESTION)
            ]
        sent = server.requests[-1]
        base_url = server.url
    # The client did send them: the OAuth token, and the project billed (an id, not a
    # secret, but a request header, and none of those is ever written).
    assert sent.headers["authorization"] == f"Bearer {token}"
    assert sent.headers["x-goog-user-project"] == quota_project
    assert_none_written(tmp_path, (token, quota_project))
    (record,) = cassette_records(cassette)
    assert record["request"]["headers"] == {}
    assert set(record["response"]["headers"]) == {"content-type", "content-disposition"}
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        other = _client(rec, base_url, credentials=FakeCredentials("ya29.another"))
        replayed = [
            _dump(c) for c in other.models.generate_content_stream(model=rec.model, contents=QUESTION)
        ]
    assert replayed == live
