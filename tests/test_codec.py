"""Response bodies: wire bytes -> stored values -> the same wire, and the fallbacks that keep everything."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from vcr_ext import codec
from vcr_ext.codec import StoredBody, to_stored, to_wire
from vcr_ext.sdk_types import RAW_BASE64, RAW_TEXT, SSE_EVENT, TYPE_KEY
from vcr_ext.sse import decode_sse

CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
CHAT = "/v1/chat/completions"


def _events(wire: bytes) -> list[tuple[str | None, object]]:
    events = decode_sse(wire.decode())
    assert events is not None
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in events]


def test_chat_stream_becomes_typed_chunks_without_done(corpus_dir: Path) -> None:
    wire = (corpus_dir / "wire" / "chat_stream_openai_2025-10-27_r4u.sse").read_bytes()
    stored = to_stored(CHAT, "text/event-stream; charset=utf-8", wire)
    assert stored.is_streaming and stored.sse_done is None
    assert {item[TYPE_KEY] for item in stored.body} == {CHUNK}
    assert len(stored.body) == wire.count(b"data: ") - 1  # every event but [DONE]
    replayed, content_type = to_wire(CHAT, stored)
    assert content_type.startswith("text/event-stream")
    assert _events(replayed) == _events(wire)


@pytest.mark.parametrize(
    "name",
    ["responses_stream_openai_2025-10-27_r4u.sse", "responses_error_stream_openai_2025-10-03_swiftagent.sse"],
)
def test_responses_stream_keeps_event_names_and_no_done(corpus_dir: Path, name: str) -> None:
    wire = (corpus_dir / "wire" / name).read_bytes()
    stored = to_stored("/v1/responses", "text/event-stream", wire)
    types = [item[TYPE_KEY] for item in stored.body]
    assert all(t.startswith("openai.types.responses.") for t in types)
    assert stored.sse_done is None
    assert to_wire("/v1/responses", stored)[0] == wire


def test_every_wire_capture_round_trips(corpus_dir: Path) -> None:
    for f in sorted((corpus_dir / "wire").rglob("*.*")):
        route = "/v1/responses" if f.name.startswith("responses") else CHAT
        wire = f.read_bytes()
        assert _events(to_wire(route, to_stored(route, "text/event-stream", wire))[0]) == _events(wire), (
            f.name
        )


def test_nondefault_terminator_is_recorded() -> None:
    wire = b'data: {"id":"x","object":"chat.completion.chunk","choices":[]}\n\n'  # no [DONE]
    stored = to_stored(CHAT, "text/event-stream", wire)
    assert stored.sse_done is False
    assert to_wire(CHAT, stored)[0] == wire


def test_event_framing_that_cannot_be_derived_is_kept() -> None:
    wire = b'event: message_start\nid: 3\ndata: {"type":"message_start"}\n\ndata: [DONE]\n\n'
    stored = to_stored("/v1/messages", "text/event-stream", wire)
    assert stored.body[0][TYPE_KEY] == SSE_EVENT
    assert to_wire("/v1/messages", stored)[0] == wire


def test_event_data_that_is_not_json_is_kept_as_text() -> None:
    wire = b"data: hello\n\ndata: [DONE]\n\n"
    stored = to_stored(CHAT, "text/event-stream", wire)
    assert stored.body == [{TYPE_KEY: RAW_TEXT, "__data__": "hello"}]
    assert to_wire(CHAT, stored)[0] == wire


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(b'data: {"a":1}\n\ndata: {"b"', id="torn-last-event"),
        pytest.param(b"data: [DONE]\n\ndata: {}\n\n", id="event-after-done"),
    ],
)
def test_streams_that_would_not_round_trip_are_kept_raw(wire: bytes) -> None:
    stored = to_stored(CHAT, "text/event-stream", wire)
    assert not stored.is_streaming and stored.body[TYPE_KEY] == RAW_TEXT
    assert to_wire(CHAT, stored)[0] == wire


def test_non_utf8_body_is_kept_as_base64() -> None:
    wire = b"\xff\xfe\x00binary"
    stored = to_stored("/v1/files/x/content", "application/octet-stream", wire)
    assert stored.body == {TYPE_KEY: RAW_BASE64, "__data__": base64.b64encode(wire).decode()}
    assert to_wire("/v1/files/x/content", stored)[0] == wire


def test_json_bodies_are_typed_by_route_and_shape() -> None:
    chat = {"id": "c", "object": "chat.completion", "choices": [], "created": 1, "model": "m"}
    stored = to_stored(CHAT, "application/json", json.dumps(chat).encode())
    assert stored.body[TYPE_KEY] == "openai.types.chat.chat_completion.ChatCompletion"
    error = {"error": {"message": "bad", "type": "invalid_request_error"}}
    assert to_stored(CHAT, "application/json", json.dumps(error).encode()).body == error


def test_plain_json_that_looks_like_an_envelope_is_escaped() -> None:
    tricky = {"__type__": "x", "__data__": 1}
    stored = to_stored("/v1/other", "application/json", json.dumps(tricky).encode())
    assert stored.body != tricky
    assert json.loads(to_wire("/v1/other", stored)[0]) == tricky


def test_model_page_is_a_list_of_models_and_rewrapped() -> None:
    page = {
        "object": "list",
        "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai"}],
    }
    stored = to_stored("/v1/models", "application/json", json.dumps(page).encode())
    assert isinstance(stored.body, list) and stored.body[0][TYPE_KEY] == "openai.types.model.Model"
    assert json.loads(to_wire("/v1/models", stored)[0]) == page


def test_ollama_ndjson_stream() -> None:
    wire = b'{"model":"m","response":"Hi","done":false}\n{"model":"m","response":"","done":true}\n'
    stored = to_stored("/api/generate", "application/x-ndjson", wire)
    assert stored.is_streaming and stored.body[0][TYPE_KEY] == "ollama._types.GenerateResponse"
    assert to_wire("/api/generate", stored) == (wire, codec.NDJSON_CONTENT_TYPE)


def test_explicit_nulls_in_tool_call_deltas_are_not_replayed() -> None:
    # A llama-stack re-dump: "type": null in a continuation delta would make the SDK's
    # .stream() helper overwrite the tool call's type.
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "content": None,
                    "tool_calls": [
                        {"index": 0, "id": None, "type": None, "function": {"arguments": "{", "name": None}}
                    ],
                },
                "finish_reason": None,
            }
        ],
    }
    stored = StoredBody([{TYPE_KEY: CHUNK, "__data__": chunk}], True)
    sent = json.loads(decode_sse(to_wire(CHAT, stored, redumped=True)[0].decode())[0].data)  # type: ignore[index]
    assert sent["choices"][0]["delta"]["tool_calls"] == [{"index": 0, "function": {"arguments": "{"}}]
    assert sent["choices"][0]["delta"]["content"] is None  # nulls elsewhere stay as recorded
    # What vcr_ext captured from the wire replays as it was, nulls and all.
    verbatim = json.loads(decode_sse(to_wire(CHAT, stored)[0].decode())[0].data)  # type: ignore[index]
    assert verbatim == chunk
