"""The later llama-stack recorder's three record kinds replay through the public API.

The kinds (issue 9): streams stored as raw SSE lines (Anthropic ``/v1/messages``, Gemini
``/interactions``: ``["event: message_start", "data: {...}", "", ...]``), ``/v1/models``
calls whose body is ``{"extra_query": {...}}``, and Vertex AI SDK-call records
(``url: vertexai:///generate_content_stream``, body the google-genai call's keyword
arguments, response the google-genai objects dumped as plain dicts).

Source of the record shapes: llamastack/llama-stack ``src/llama_stack/testing/api_recorder.py``
(the newest version in the search index, blob of commit 00b74994140dfc4e82cd83aeeb4cbc11d8ef2746):
``_patched_inference_method`` writes ``request = {method: "POST", url: base_url + endpoint,
headers: {}, body: kwargs, endpoint, model, provider_metadata}``, the file name is
``normalize_inference_request``'s hash (method, url path, rounded body, test id; no test id
for ``/v1/models``; ``models-<hash>-<digest8>.json``), and ``store_recording`` writes
``{test_id, request, response, id_normalization_mapping: {}}`` with ``indent=2`` and a
newline. That version patches only openai, ollama, tavily and aiohttp: the code that
patches the anthropic and google-genai clients is not in the index, so the shapes of those
records are the ones issue 9 describes, written the same way (``url`` = the client's base
URL + ``endpoint``, as above; ``vertexai://`` + ``/generate_content_stream`` for Vertex),
and a raw-line stream's lines are what httpx's ``iter_lines`` yields for the bytes served.

Each test makes the call live against a loopback server, writes the record as that recorder
would from what was sent and received, replays it offline and compares with the live run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from vcr.errors import CannotOverwriteExistingCassetteException

import vcr_ext
from vcr_ext import conformance, record, sdk_types
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.errors import CassetteFormatError
from vcr_ext.formats import llamastack, read_record
from vcr_ext.formats import vcrpy as vcrpy_format
from vcr_ext.persister import Persister
from vcr_ext.sse import WhatwgEvent, parse_whatwg

OFFLINE_ROOT = "http://127.0.0.1:9"
TEST_ID = "tests/integration/inference/test_later_kinds.py::test_call[txt=later]"
SSE = [("content-type", "text/event-stream; charset=utf-8")]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sse_bytes(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """An event stream as Anthropic and Gemini frame it: ``event: <name>``, one compact data line."""
    return b"".join(f"event: {name}\ndata: {_compact(data)}\n\n".encode() for name, data in events)


def _raw_lines(body: bytes) -> list[str]:
    """The lines a stream reader (httpx's ``iter_lines``, as the recorder reads) yields for ``body``."""
    return list(httpx.Response(200, content=body).iter_lines())


def _write(cassette: Path, rec: dict[str, Any]) -> Path:
    """One record written as llama-stack's ``store_recording`` writes it, under its hash's name."""
    request = rec["request"]
    endpoint = request.get("endpoint")
    rhash = record.request_hash(request["method"], request["url"], request["body"], TEST_ID)
    name = f"{rhash}.json"
    if endpoint in record.MODEL_LIST_ROUTES:
        items = [i["__data__"] for i in rec["response"]["body"]]
        name = f"models-{rhash}-{llamastack.models_digest(endpoint, items)}.json"
    cassette.mkdir(parents=True, exist_ok=True)
    path = cassette / name
    doc = {
        "test_id": TEST_ID,
        "request": request,
        "response": rec["response"],
        "id_normalization_mapping": {},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def _request(url: str, endpoint: str, body: Any, sdk: str, version: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": url,
        "headers": {},
        "body": body,
        "endpoint": endpoint,
        "model": body.get("model", "") if isinstance(body, dict) else "",
        "provider_metadata": {f"{sdk}_sdk_version": version},
    }


def _served_body(server: FakeOpenAIServer, index: int = 0) -> Any:
    return json.loads(server.requests[index].body)


def _replayed_bytes(cassette: Path) -> list[bytes]:
    """The response bytes the cassette replays, in file order."""
    _, responses = Persister().load_cassette(cassette)
    return [r["body"]["string"] for r in responses]


# ------------------------------------------------------------------ 1. raw SSE lines: Anthropic


def _anthropic() -> Any:
    return pytest.importorskip(
        "anthropic", reason="the anthropic SDK is not installed (tox -e providers has it)"
    )


def _genai() -> Any:
    return pytest.importorskip(
        "google.genai", reason="google-genai is not installed (tox -e providers has it)"
    )


CLAUDE = "claude-sonnet-4-5-20250929"
QUESTION = [{"role": "user", "content": "What is the boiling point of water?"}]
ANTHROPIC_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                "type": "message",
                "role": "assistant",
                "model": CLAUDE,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 15, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "100 °C"}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " at sea level."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]
ANTHROPIC_STREAM = _sse_bytes(ANTHROPIC_EVENTS)
CALL = {"model": CLAUDE, "max_tokens": 64, "messages": QUESTION}


def _anthropic_record(tmp_path: Path) -> tuple[Path, list[Any], Any]:
    """Live: ``create(stream=True)`` and ``stream()`` against the loopback server; the record written."""
    anthropic = _anthropic()
    with FakeOpenAIServer() as server:
        for _ in range(2):
            server.enqueue("POST", "/v1/messages", headers=SSE, body=ANTHROPIC_STREAM)
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)
        events = list(client.messages.create(**CALL, stream=True))  # type: ignore[call-overload]
        with client.messages.stream(**CALL) as stream:  # type: ignore[arg-type]
            final = stream.get_final_message()
        sent = _served_body(server)
        assert _served_body(server, 1) == sent  # both helpers send the same request
    rec = {
        "request": _request(
            "https://api.anthropic.com/v1/messages", "/v1/messages", sent, "anthropic", anthropic.__version__
        ),
        "response": {"body": _raw_lines(ANTHROPIC_STREAM), "is_streaming": True},
    }
    return _write(tmp_path / "recordings", rec), events, final


def test_anthropic_raw_sse_lines_replay_as_the_original_stream(tmp_path: Path) -> None:
    anthropic = _anthropic()
    path, live_events, live_final = _anthropic_record(tmp_path)
    stored = json.loads(path.read_text())
    assert stored["response"]["body"][:3] == [
        "event: message_start",
        f"data: {_compact(ANTHROPIC_EVENTS[0][1])}",
        "",
    ]

    # The replay sends the bytes the server sent, not each line as a JSON string.
    assert _replayed_bytes(path.parent) == [ANTHROPIC_STREAM]
    # Typed per event as live recording types them: the anthropic SDK's classes.
    ours = read_record(stored)["response"]["body"]
    types = [item["__type__"] if isinstance(item, dict) and "__type__" in item else None for item in ours]
    assert types[0] == "anthropic.types.raw_message_start_event.RawMessageStartEvent"
    assert types[3] == "anthropic.types.raw_content_block_delta_event.RawContentBlockDeltaEvent"

    offline = anthropic.Anthropic(base_url=OFFLINE_ROOT, api_key="sk-ant-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(path.parent), allow_playback_repeats=True):
        replayed = list(offline.messages.create(**CALL, stream=True))  # type: ignore[call-overload]
        with offline.messages.stream(**CALL) as stream:  # type: ignore[arg-type]
            final = stream.get_final_message()
    assert [e.model_dump() for e in replayed] == [e.model_dump() for e in live_events]
    assert final.model_dump() == live_final.model_dump()
    assert final.content[0].text == "100 °C at sea level."


def test_anthropic_raw_sse_lines_replay_async(tmp_path: Path) -> None:
    anthropic = _anthropic()
    path, live_events, live_final = _anthropic_record(tmp_path)

    async def call() -> tuple[list[Any], Any]:
        client = anthropic.AsyncAnthropic(base_url=OFFLINE_ROOT, api_key="sk-ant-test", max_retries=0)
        events = [e async for e in await client.messages.create(**CALL, stream=True)]  # type: ignore[call-overload]
        async with client.messages.stream(**CALL) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_message()
        return events, final

    with vcr_ext.VCR(record_mode="none").use_cassette(str(path.parent), allow_playback_repeats=True):
        events, final = asyncio.run(call())
    assert [e.model_dump() for e in events] == [e.model_dump() for e in live_events]
    assert final.model_dump() == live_final.model_dump()


# ------------------------------------------------------------------ 1b. raw SSE lines: Gemini interactions


INTERACTION_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "interaction.created",
        {
            "event_type": "interaction.created",
            "interaction": {
                "id": "v1_ChdpbnRlcmFjdGlvbi0x",
                "status": "in_progress",
                "model": "gemini-2.5-flash",
            },
            "event_id": "evt_1",
        },
    ),
    (
        "step.start",
        {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}, "event_id": "evt_2"},
    ),
    (
        "step.delta",
        {
            "event_type": "step.delta",
            "index": 0,
            "delta": {"type": "text", "text": "Hello"},
            "event_id": "evt_3",
        },
    ),
    (
        "step.delta",
        {
            "event_type": "step.delta",
            "index": 0,
            "delta": {"type": "text", "text": " there!"},
            "event_id": "evt_4",
        },
    ),
    ("step.stop", {"event_type": "step.stop", "index": 0, "event_id": "evt_5"}),
    (
        "interaction.completed",
        {
            "event_type": "interaction.completed",
            "interaction": {
                "id": "v1_ChdpbnRlcmFjdGlvbi0x",
                "status": "completed",
                "model": "gemini-2.5-flash",
            },
            "event_id": "evt_6",
        },
    ),
]
INTERACTION_STREAM = _sse_bytes(INTERACTION_EVENTS)
INTERACTION_CALL = {"model": "gemini-2.5-flash", "input": "Say hello.", "stream": True}


def _interactions_record(tmp_path: Path) -> tuple[Path, list[Any]]:
    genai = _genai()
    with FakeOpenAIServer() as server:
        server.enqueue("POST", "/v1/interactions", headers=SSE, body=INTERACTION_STREAM)
        client = genai.Client(api_key="test-gemini-key", http_options={"base_url": server.url})
        events = list(client.interactions.create(**INTERACTION_CALL))
        path, sent = server.requests[0].path, _served_body(server)
    url = "https://generativelanguage.googleapis.com" + path
    rec = {
        "request": _request(url, path, sent, "google_genai", genai.__version__),
        "response": {"body": _raw_lines(INTERACTION_STREAM), "is_streaming": True},
    }
    return _write(tmp_path / "recordings", rec), events


def test_gemini_interactions_raw_sse_lines_replay_through_google_genai(tmp_path: Path) -> None:
    genai = _genai()
    # google-genai has an interactions API here, so the replay goes through the SDK itself.
    path, live = _interactions_record(tmp_path)
    assert _replayed_bytes(path.parent) == [INTERACTION_STREAM]
    offline = genai.Client(api_key="test-gemini-key", http_options={"base_url": OFFLINE_ROOT})
    with vcr_ext.VCR(record_mode="none").use_cassette(str(path.parent)):
        replayed = list(offline.interactions.create(**INTERACTION_CALL))
    assert [type(e) for e in replayed] == [type(e) for e in live]
    assert [e.model_dump(mode="json") for e in replayed] == [e.model_dump(mode="json") for e in live]
    assert [e.event_type for e in replayed][-1] == "interaction.completed"


# ------------------------------------------------------------------ 2. extra_query on /v1/models

MODEL_QUERY = {"owned_by": "system", "limit": 2}


def _models_record(tmp_path: Path) -> tuple[Path, list[Any], str]:
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        live = list(client.models.list(extra_query=MODEL_QUERY))
        sent = server.requests[0]
    assert sent.method == "GET" and "?" in sent.path  # the SDK sends extra_query as the query
    rec = {
        # llama-stack records AsyncModels.list's kwargs: the extra_query argument is the body.
        "request": _request(
            "http://localhost:8000/v1/v1/models",
            "/v1/models",
            {"extra_query": MODEL_QUERY},
            "openai",
            openai.__version__,
        ),
        "response": {
            "body": [
                {"__type__": "openai.types.model.Model", "__data__": m.model_dump(mode="json")} for m in live
            ],
            "is_streaming": False,
        },
    }
    return _write(tmp_path / "recordings", rec), live, sent.path


def test_an_extra_query_body_is_the_query_string_of_a_get(tmp_path: Path) -> None:
    path, live, sent_path = _models_record(tmp_path)
    assert path.name.startswith("models-")
    request = read_record(json.loads(path.read_text()))["request"]
    assert (request["method"], request["body"]) == ("GET", None)
    assert request["url"] == "http://localhost:8000/v1/v1/models?" + sent_path.split("?", 1)[1]

    offline = openai.OpenAI(base_url=OFFLINE_ROOT + "/v1", api_key="sk-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(path.parent)):
        replayed = list(offline.models.list(extra_query=MODEL_QUERY))
        # The query is matched: the same call without it was never recorded.
        with pytest.raises((CannotOverwriteExistingCassetteException, openai.APIConnectionError)):
            offline.models.list()
    assert [m.model_dump() for m in replayed] == [m.model_dump() for m in live]


def test_an_extra_query_body_replays_async(tmp_path: Path) -> None:
    path, live, _ = _models_record(tmp_path)

    async def call() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=OFFLINE_ROOT + "/v1", api_key="sk-test", max_retries=0)
        return [m async for m in client.models.list(extra_query=MODEL_QUERY)]

    with vcr_ext.VCR(record_mode="none").use_cassette(str(path.parent)):
        replayed = asyncio.run(call())
    assert [m.model_dump() for m in replayed] == [m.model_dump() for m in live]


def test_the_conformance_run_replays_an_extra_query_record(tmp_path: Path) -> None:
    path, _, _ = _models_record(tmp_path)
    run = conformance.run_all(path.parent)
    assert run.failures == [], [(o.case.kind, o.mode, o.detail[:600]) for o in run.failures]
    assert [(c.kind, c.skip_reason) for c in run.cases] == [("models", None)]
    assert len([o for o in run.outcomes if o.ok]) == 2  # sync and async


# ------------------------------------------------------------------ 3. Vertex AI SDK-call records


def _fake_credentials() -> Any:
    """Credentials that never refresh over the network: a fixed token."""
    credentials = pytest.importorskip("google.auth.credentials", reason="google-auth is not installed")

    class FakeCredentials(credentials.Credentials):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.token = "fake-vertex-token"

        def refresh(self, request: Any) -> None:
            self.token = "fake-vertex-token"

    return FakeCredentials()


PROJECT, LOCATION = "my-project", "us-central1"
GEMINI = "gemini-2.0-flash"
VERTEX_CALL: dict[str, Any] = {
    "model": GEMINI,
    "contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]}],
    "config": {"temperature": 0.2, "max_output_tokens": 64, "system_instruction": "Answer in one sentence."},
}
VERTEX_PATH = f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{GEMINI}"
VERTEX_CHUNKS = [
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Sunlight scatters off air"}]}}],
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12, "trafficType": "ON_DEMAND"},
        "modelVersion": GEMINI,
        "createTime": "2025-11-03T10:00:00.123456Z",
        "responseId": "vtx-resp-1",
    },
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": " molecules, blue the most."}]},
                "finishReason": "STOP",
                "avgLogprobs": -0.12,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 11,
            "totalTokenCount": 23,
            "trafficType": "ON_DEMAND",
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
        },
        "modelVersion": GEMINI,
        "createTime": "2025-11-03T10:00:00.123456Z",
        "responseId": "vtx-resp-1",
    },
]
VERTEX_STREAM = b"".join(b"data: " + _compact(c).encode() + b"\r\n\r\n" for c in VERTEX_CHUNKS)
VERTEX_MESSAGE = {
    **VERTEX_CHUNKS[1],
    "candidates": [
        {
            **VERTEX_CHUNKS[1]["candidates"][0],
            "content": {
                "role": "model",
                "parts": [{"text": "Sunlight scatters off air molecules, blue the most."}],
            },
        }
    ],
}


def _vertex_client(base_url: str) -> Any:
    genai = _genai()
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location=LOCATION,
        credentials=_fake_credentials(),
        http_options={"base_url": base_url},
    )


def _dump(obj: Any) -> dict[str, Any]:
    """A GenerateContentResponse as the recorder dumped it (``model_dump(mode="json")``), plain."""
    data: dict[str, Any] = obj.model_dump(mode="json")
    return data


def _without_http(dump: dict[str, Any]) -> dict[str, Any]:
    # The response headers the SDK copies into each object differ between any two servers.
    return {k: v for k, v in dump.items() if k != "sdk_http_response"}


def _vertex_records(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Live: stream and non-stream calls; the two records; what each sent and got."""
    genai = _genai()
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST", VERTEX_PATH + ":streamGenerateContent?alt=sse", headers=SSE, body=VERTEX_STREAM
        )
        server.enqueue(
            "POST",
            VERTEX_PATH + ":generateContent",
            headers=[("content-type", "application/json; charset=UTF-8")],
            body=json.dumps(VERTEX_MESSAGE).encode(),
        )
        client = _vertex_client(server.url)
        chunks = list(client.models.generate_content_stream(**VERTEX_CALL))
        message = client.models.generate_content(**VERTEX_CALL)
        sent = [(r.path, json.loads(r.body)) for r in server.requests]
    assert [p for p, _ in sent] == [
        VERTEX_PATH + ":streamGenerateContent?alt=sse",
        VERTEX_PATH + ":generateContent",
    ]
    version = {"google_genai_sdk_version": genai.__version__}
    stream_rec = {
        "request": {
            **_request(
                "vertexai:///generate_content_stream", "/generate_content_stream", VERTEX_CALL, "x", ""
            ),
            "provider_metadata": version,
        },
        "response": {"body": [_dump(c) for c in chunks], "is_streaming": True},
    }
    call_rec = {
        "request": {
            **_request("vertexai:///generate_content", "/generate_content", VERTEX_CALL, "x", ""),
            "provider_metadata": version,
        },
        "response": {"body": _dump(message), "is_streaming": False},
    }
    cassette = tmp_path / "recordings"
    _write(cassette, stream_rec)
    _write(cassette, call_rec)
    return cassette, {"chunks": chunks, "message": message, "sent": sent, "records": [stream_rec, call_rec]}


def test_vertex_records_are_read_as_the_http_request_google_genai_sends(tmp_path: Path) -> None:
    _, live = _vertex_records(tmp_path)
    for rec, (path, body) in zip(live["records"], live["sent"], strict=True):
        request = read_record(rec)["request"]
        # The SDK's own converter made this body: byte for byte what the live client sent.
        assert request["body"] == body
        assert request["url"].endswith(path.split("/publishers/", 1)[1])
        assert request["url"].startswith("https://us-central1-aiplatform.googleapis.com/v1beta1/projects/")


def test_vertex_records_replay_through_google_genai_sync(tmp_path: Path) -> None:
    cassette, live = _vertex_records(tmp_path)
    recorded_chunks = live["records"][0]["response"]["body"]
    recorded_message = live["records"][1]["response"]["body"]
    offline = _vertex_client(OFFLINE_ROOT)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        chunks = list(offline.models.generate_content_stream(**VERTEX_CALL))
        message = offline.models.generate_content(**VERTEX_CALL)
    assert [_without_http(_dump(c)) for c in chunks] == [_without_http(d) for d in recorded_chunks]
    assert _without_http(_dump(message)) == _without_http(recorded_message)
    assert [_without_http(_dump(c)) for c in chunks] == [_without_http(_dump(c)) for c in live["chunks"]]
    assert message.text == "Sunlight scatters off air molecules, blue the most."
    assert isinstance(message, _genai().types.GenerateContentResponse)


@pytest.mark.parametrize("form", ["envelope", "to_json_dict"])
def test_vertex_records_with_other_dumps_of_the_objects_replay_the_same(tmp_path: Path, form: str) -> None:
    # llama-stack's _serialize_response wraps a pydantic object in {"__type__", "__data__"};
    # google-genai's own to_json_dict() leaves out the nulls. Both read as the same objects.
    _, live = _vertex_records(tmp_path)
    stream_rec, call_rec = live["records"]
    type_name = "google.genai.types.GenerateContentResponse"

    def redump(obj: Any) -> Any:
        if form == "envelope":
            return {"__type__": type_name, "__data__": _dump(obj)}
        return obj.to_json_dict()

    cassette = tmp_path / form
    _write(
        cassette,
        {**stream_rec, "response": {"body": [redump(c) for c in live["chunks"]], "is_streaming": True}},
    )
    _write(cassette, {**call_rec, "response": {"body": redump(live["message"]), "is_streaming": False}})
    offline = _vertex_client(OFFLINE_ROOT)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        chunks = list(offline.models.generate_content_stream(**VERTEX_CALL))
        message = offline.models.generate_content(**VERTEX_CALL)
    assert [_without_http(_dump(c)) for c in chunks] == [_without_http(_dump(c)) for c in live["chunks"]]
    assert _without_http(_dump(message)) == _without_http(_dump(live["message"]))


def _replay_async(cassette: Path, http_options: dict[str, Any]) -> tuple[list[Any], Any]:
    genai = _genai()

    async def call() -> tuple[list[Any], Any]:
        client = genai.Client(
            vertexai=True,
            project=PROJECT,
            location=LOCATION,
            credentials=_fake_credentials(),
            http_options={"base_url": OFFLINE_ROOT, **http_options},
        )
        chunks = [c async for c in await client.aio.models.generate_content_stream(**VERTEX_CALL)]
        message = await client.aio.models.generate_content(**VERTEX_CALL)
        return chunks, message

    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        return asyncio.run(call())


def test_vertex_records_replay_through_google_genai_async_over_httpx(tmp_path: Path) -> None:
    cassette, live = _vertex_records(tmp_path)
    chunks, message = _replay_async(cassette, {"httpx_async_client": httpx.AsyncClient()})
    recorded_chunks = live["records"][0]["response"]["body"]
    assert [_without_http(_dump(c)) for c in chunks] == [_without_http(d) for d in recorded_chunks]
    assert _without_http(_dump(message)) == _without_http(live["records"][1]["response"]["body"])


def test_vertex_records_replay_through_google_genai_async_over_aiohttp(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed: google-genai then uses httpx")
    cassette, live = _vertex_records(tmp_path)
    chunks, _ = _replay_async(cassette, {})
    assert [_without_http(_dump(c)) for c in chunks] == [_without_http(_dump(c)) for c in live["chunks"]]


# ------------------------------------------------------------------ bad input, one per kind


def _load_error(cassette: Path) -> CassetteFormatError:
    with pytest.raises(CassetteFormatError) as caught:
        Persister().load_cassette(cassette)
    return caught.value


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("garbage without a field", "is not an SSE line"),
        ('data: {"type":"ping"}\ndata: {"type":"ping"}', "holds a line break"),
        (42, "not a line of text"),
    ],
)
def test_malformed_raw_sse_lines_name_file_record_and_field(tmp_path: Path, line: Any, problem: str) -> None:
    lines: list[Any] = _raw_lines(ANTHROPIC_STREAM)
    lines[4] = line
    rec = {
        "request": _request(
            "https://api.anthropic.com/v1/messages", "/v1/messages", {**CALL, "stream": True}, "a", ""
        ),
        "response": {"body": lines, "is_streaming": True},
    }
    path = _write(tmp_path / "recordings", rec)
    err = _load_error(path.parent)
    assert (err.path, err.record, err.field) == (os.fspath(path), None, "response.body[4]")
    assert problem in err.problem and path.name in str(err)


def test_an_unknown_vertexai_method_names_file_record_and_field(tmp_path: Path) -> None:
    rec = {
        "request": _request(
            "vertexai:///embed_content",
            "/embed_content",
            {"model": "text-embedding-005", "contents": "x"},
            "g",
            "",
        ),
        "response": {"body": {"embeddings": [{"values": [0.1]}]}, "is_streaming": False},
    }
    path = _write(tmp_path / "recordings", rec)
    err = _load_error(path.parent)
    assert (err.path, err.record, err.field) == (os.fspath(path), None, "request.url")
    assert "unknown Vertex AI SDK method 'embed_content'" in err.problem
    assert "vertexai:///generate_content_stream" in err.problem


def test_a_vertex_response_that_is_no_generate_content_response_names_the_chunk(tmp_path: Path) -> None:
    _genai()  # without it the request cannot be read first (its own error, tested below)
    rec = {
        "request": _request(
            "vertexai:///generate_content_stream", "/generate_content_stream", VERTEX_CALL, "g", ""
        ),
        "response": {"body": [{"candidates": []}, {"candidates": "not a list"}], "is_streaming": True},
    }
    path = _write(tmp_path / "recordings", rec)
    err = _load_error(path.parent)
    assert (err.record, err.field) == (None, "response.body[1]")
    assert "not a GenerateContentResponse" in err.problem


def test_without_the_anthropic_sdk_raw_sse_lines_still_replay_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lines hold only JSON text: no SDK is needed to replay them, only to type them.
    rec = {
        "request": _request(
            "https://api.anthropic.com/v1/messages", "/v1/messages", {**CALL, "stream": True}, "a", ""
        ),
        "response": {"body": _raw_lines(ANTHROPIC_STREAM), "is_streaming": True},
    }
    path = _write(tmp_path / "recordings", rec)
    for name in [m for m in sys.modules if m == "anthropic" or m.startswith("anthropic.")] or ["anthropic"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    sdk_types.anthropic_names.cache_clear()
    try:
        ours = read_record(json.loads(path.read_text()))["response"]["body"]
        assert not any(
            isinstance(i, dict) and str(i.get("__type__", "")).startswith("anthropic.") for i in ours
        )
        with vcr_ext.VCR(record_mode="none").use_cassette(str(path.parent)):
            replayed = httpx.post(OFFLINE_ROOT + "/v1/messages", json={**CALL, "stream": True})
    finally:
        sdk_types.anthropic_names.cache_clear()
    assert replayed.headers["content-type"].startswith("text/event-stream")
    assert parse_whatwg(replayed.content) == parse_whatwg(ANTHROPIC_STREAM)
    assert [e.type for e in parse_whatwg(replayed.content) if isinstance(e, WhatwgEvent)] == [
        name for name, _ in ANTHROPIC_EVENTS
    ]


def test_without_google_genai_a_vertex_record_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = {
        "request": _request(
            "vertexai:///generate_content_stream", "/generate_content_stream", VERTEX_CALL, "g", ""
        ),
        "response": {"body": [dict(VERTEX_CHUNKS[0])], "is_streaming": True},
    }
    path = _write(tmp_path / "recordings", rec)
    for name in [m for m in sys.modules if m == "google.genai" or m.startswith("google.genai.")] or [
        "google.genai"
    ]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    err = _load_error(path.parent)
    assert (err.path, err.record, err.field) == (os.fspath(path), None, "request.url")
    assert "google-genai is not installed" in err.problem


# ------------------------------------------------------------------ the CLI on such records


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcr_ext.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _all_kinds(tmp_path: Path) -> Path:
    cassette = tmp_path / "recordings"
    _anthropic_record(tmp_path)
    _interactions_record(tmp_path)
    _models_record(tmp_path)
    _vertex_records(tmp_path)
    return cassette


def test_show_reads_the_later_kinds(tmp_path: Path) -> None:
    cassette = _all_kinds(tmp_path)
    shown = _cli("show", "--json", cassette)
    assert shown.returncode == 0, shown.stderr
    summaries = {(s["method"], s["route"]) for s in json.loads(shown.stdout)}
    assert ("GET", "/v1/models") in summaries  # the extra_query call, as the GET it was
    assert ("POST", "/v1/messages") in summaries
    assert len(json.loads(shown.stdout)) == 5


def test_convert_writes_the_later_kinds_as_their_http_exchanges(tmp_path: Path) -> None:
    anthropic = _anthropic()
    cassette = _all_kinds(tmp_path)
    # Our format, one file: the records carried over; it replays as the folder did.
    one_file = tmp_path / "all.json"
    converted = _cli("convert", cassette, one_file)
    assert converted.returncode == 0, converted.stderr
    offline = anthropic.Anthropic(base_url=OFFLINE_ROOT, api_key="sk-ant-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(one_file)):
        events = list(offline.messages.create(**CALL, stream=True))  # type: ignore[call-overload]
    assert events[-1].type == "message_stop"

    # A vcrpy cassette: every record as the HTTP exchange it stands for.
    yaml_file = tmp_path / "all.yaml"
    converted = _cli("convert", cassette, yaml_file, "--to", "vcrpy")
    assert converted.returncode == 0, converted.stderr
    exchanges = {
        (r.method, r.uri.split("?", 1)[0].rsplit("/", 1)[-1]): resp
        for r, resp in vcrpy_format.read_interactions(yaml_file)
    }
    body = exchanges[("POST", "messages")]["body"]["string"]
    assert (body.encode() if isinstance(body, str) else body) == ANTHROPIC_STREAM
    body = exchanges[("POST", "interactions")]["body"]["string"]
    assert (body.encode() if isinstance(body, str) else body) == INTERACTION_STREAM
    assert ("GET", "models") in exchanges
    assert ("POST", f"{GEMINI}:streamGenerateContent") in exchanges
    assert ("POST", f"{GEMINI}:generateContent") in exchanges
