"""Response bodies: wire bytes -> stored values -> the same wire, and the fallbacks that keep everything."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from unittest.mock import ANY

import pytest

from vcr_ext import codec, record
from vcr_ext.codec import StoredBody, to_stored, to_wire
from vcr_ext.sdk_types import RAW_BASE64, RAW_TEXT, SSE_EVENT, TYPE_KEY
from vcr_ext.sse import WhatwgEvent, WhatwgLastEventId, decode_sse, parse_whatwg

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


# ---------------------------------------------------------------- odd but legal event streams
#
# Each wire below once replayed as something a client reads differently (or crashed the
# recorder); now a replay dispatches exactly the live events, ids and retries, for the
# WHATWG reference parser and for the openai SDK's decoder.

CHUNK_A = b'{"id":"a","object":"chat.completion.chunk","choices":[]}'
CHUNK_B = b'{"id":"b","object":"chat.completion.chunk","choices":[]}'


def _sdk_events(wire: bytes) -> list[object]:
    """What the openai SDK's decoder yields, up to and with the error it raises (bytes not UTF-8)."""
    from openai._streaming import SSEDecoder

    seen: list[object] = []
    try:
        for e in SSEDecoder().iter_bytes(iter([wire])):
            seen.append((e.event, e.data, e.id, e.retry))
    except UnicodeDecodeError as err:
        seen.append(repr(err))
    return seen


def _replay(route: str, wire: bytes) -> tuple[StoredBody, bytes]:
    stored = to_stored(route, "text/event-stream", wire)
    replayed = to_wire(route, stored)[0]
    # Every data text here is compact JSON or not JSON, so the parses must be equal as they are.
    assert parse_whatwg(replayed) == parse_whatwg(wire)
    assert _sdk_events(replayed) == _sdk_events(wire)
    return stored, replayed


@pytest.mark.parametrize(
    "retry", ["\u00b2", "abc", "1.5", ""], ids=["superscript-two", "letters", "dot", "empty"]
)
def test_retry_that_is_not_ascii_digits_is_ignored(retry: str) -> None:
    # "²".isdigit() is true but int("²") raises: the decoder crashed on it.
    wire = f"retry: {retry}\n".encode() + b"data: " + CHUNK_A + b"\n\ndata: [DONE]\n\n"
    stored, replayed = _replay(CHAT, wire)
    assert stored.body == [{TYPE_KEY: CHUNK, "__data__": json.loads(CHUNK_A)}]  # typed, not raw
    assert replayed == b"data: " + CHUNK_A + b"\n\ndata: [DONE]\n\n"


def test_retry_only_the_openai_sdk_reads_keeps_the_stream_verbatim() -> None:
    wire = b"retry: +5\ndata: " + CHUNK_A + b"\n\ndata: [DONE]\n\n"  # int("+5") == 5; the standard ignores it
    stored, replayed = _replay(CHAT, wire)
    assert stored.body[TYPE_KEY] == RAW_TEXT and replayed == wire


def test_empty_id_resets_the_last_event_id() -> None:
    wire = b"id: 7\ndata: " + CHUNK_A + b"\n\nid:\n\ndata: " + CHUNK_B + b"\n\ndata: [DONE]\n\n"
    _, replayed = _replay(CHAT, wire)
    assert parse_whatwg(replayed)[:3] == [
        WhatwgEvent("message", CHUNK_A.decode(), "7"),
        WhatwgLastEventId(""),
        WhatwgEvent("message", CHUNK_B.decode(), ""),
    ]


def test_empty_id_on_an_event_is_kept() -> None:
    wire = b"id: 7\ndata: " + CHUNK_A + b"\n\nid:\ndata: " + CHUNK_B + b"\n\ndata: [DONE]\n\n"
    stored, _ = _replay(CHAT, wire)
    assert stored.body[1] == {TYPE_KEY: SSE_EVENT, "__data__": {"id": "", "data": ANY}}


def test_id_with_nul_is_ignored_as_every_reader_ignores_it() -> None:
    wire = b"id: 1\ndata: " + CHUNK_A + b"\n\nid: x\x00y\ndata: " + CHUNK_B + b"\n\ndata: [DONE]\n\n"
    stored, _ = _replay(CHAT, wire)
    assert stored.body[1] == {TYPE_KEY: CHUNK, "__data__": json.loads(CHUNK_B)}  # no id recorded for it


def test_id_with_nul_alone_dispatches_nothing() -> None:
    _replay(CHAT, b"id: a\x00b\n\ndata: " + CHUNK_A + b"\n\ndata: [DONE]\n\n")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"id":"a","object":"chat.completion.chunk","choices":[],"x":"\\ud800"}', id="chunk"),
        pytest.param(b'"\\udfff\\ud800"', id="string"),
        pytest.param(b'{"k\\ud83d":1}', id="key"),
    ],
)
def test_lone_surrogate_escape_in_chunk_json_is_kept_as_its_text(data: bytes) -> None:
    # Valid JSON, but json.loads makes a str no UTF-8 writer or pydantic-core can encode:
    # the recording used to crash while writing it.
    wire = b"data: " + CHUNK_A + b"\n\ndata: " + data + b"\n\ndata: [DONE]\n\n"
    stored, replayed = _replay(CHAT, wire)
    assert stored.body[1] == {TYPE_KEY: RAW_TEXT, "__data__": data.decode()}
    assert replayed == wire
    text = record.dumps({"body": stored.body})  # what the persister writes, as UTF-8
    assert json.loads(text.encode("utf-8"))["body"] == stored.body


def test_lone_surrogate_escape_in_a_json_body_is_kept_as_its_text() -> None:
    wire = b'{"object":"chat.completion","choices":[],"x":"\\ud800"}'
    stored = to_stored(CHAT, "application/json", wire)
    assert stored.body == {TYPE_KEY: RAW_TEXT, "__data__": wire.decode()}
    assert to_wire(CHAT, stored)[0] == wire


@pytest.mark.parametrize(
    "framing", [b"event: done\n", b"id: 9\n", b"retry: 100\n"], ids=["event", "id", "retry"]
)
def test_framing_of_the_done_event_is_replayed(framing: bytes) -> None:
    wire = b"data: " + CHUNK_A + b"\n\n" + framing + b"data: [DONE]\n\n"
    stored, replayed = _replay(CHAT, wire)
    assert stored.body[0] == {TYPE_KEY: CHUNK, "__data__": json.loads(CHUNK_A)}
    assert replayed == wire


@pytest.mark.parametrize(
    "block", [b"event: ping\n\n", b"id: 4\n\n", b"retry: 250\n\n", b"event: ping\nid: 4\nretry: 1\n\n"]
)
def test_event_without_data_line_is_not_dispatched_on_replay(block: bytes) -> None:
    # Replayed with an invented "data: " line, a standard client dispatched an empty event.
    wire = b"data: " + CHUNK_A + b"\n\n" + block + b"data: " + CHUNK_B + b"\n\ndata: [DONE]\n\n"
    _replay("/v1/responses", wire)
    stored, _ = _replay(CHAT, wire)
    # Kept per event, readable, not as the whole stream's text: the block is an event with no "data".
    assert stored.is_streaming
    assert [item.get(TYPE_KEY) for item in stored.body] == [CHUNK, SSE_EVENT, CHUNK]
    assert "data" not in stored.body[1]["__data__"]
    rec = {
        "request": {"method": "POST", "url": "http://h/v1/chat/completions", "body": {}},
        "response": {"body": stored.body, "is_streaming": True},
    }
    assert record.check(rec, "c.json", None) is rec  # and a load accepts it


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(b"\xef\xbb\xbfdata: " + CHUNK_A + b"\n\ndata: [DONE]\n\n", id="leading-bom"),
        pytest.param(b"data: " + CHUNK_A + b"\r\rdata: [DONE]\r\r", id="cr-line-ends"),
        pytest.param(b"data: " + CHUNK_A + b"\r\n\r\ndata: [DONE]\r\n\r\n", id="crlf-line-ends"),
        pytest.param(b"data: " + CHUNK_A + b"\r\n\ndata: [DONE]\n\r", id="mixed-line-ends"),
        pytest.param(b": hi\ndata: " + CHUNK_A + b"\n: there\n\n: bye\n\ndata: [DONE]\n\n", id="comments"),
        pytest.param(b"data\n\ndata: [DONE]\n\n", id="data-without-colon"),
        pytest.param(b"event\ndata: " + CHUNK_A + b"\n\n", id="field-name-without-value"),
        pytest.param(b"data: x\ndata: y\ndata:\n\ndata: [DONE]\n\n", id="multiple-data-lines"),
        pytest.param(b"data: " + CHUNK_A + b"\n\ndata: " + CHUNK_B, id="final-event-without-blank-line"),
        pytest.param(b"data: " + CHUNK_A + b"\n\ndata: \xff\xfe\n\n", id="not-utf-8"),
        pytest.param(b"foo: bar\ndata: " + CHUNK_A + b"\n\n", id="unknown-field"),
        pytest.param(b"id: 1\ndata: " + CHUNK_A + b"\n\n: keep-alive\n\n", id="keep-alive-after-an-id"),
        pytest.param(b"data: [DONE]\n\ndata: " + CHUNK_A + b"\n\n", id="event-after-done"),
        pytest.param(b"data: [DONE] and more\n\n", id="done-prefix"),
        pytest.param(b'data: {"a":NaN}\n\ndata: {"b":1e400}\n\n', id="not-finite-numbers"),
    ],
)
@pytest.mark.parametrize("route", [CHAT, "/v1/responses", "/v1/unknown"])
def test_odd_streams_replay_the_same_events(wire: bytes, route: str) -> None:
    _replay(route, wire)


def test_json_that_is_not_compact_is_stored_as_its_value() -> None:
    # What a client reads is the value (the SDK parses every event's data): it is kept
    # typed, and replayed as compact JSON, the same value.
    wire = b'data: {"id": "a", "object": "chat.completion.chunk", "choices": []}\n\ndata: [DONE]\n\n'
    stored = to_stored(CHAT, "text/event-stream", wire)
    assert stored.body == [{TYPE_KEY: CHUNK, "__data__": json.loads(CHUNK_A)}]
    assert to_wire(CHAT, stored)[0] == b"data: " + CHUNK_A + b"\n\ndata: [DONE]\n\n"


def test_json_over_two_data_lines_replays_as_the_same_value_on_one() -> None:
    wire = b'data: {"a":\ndata: 1}\n\n'
    stored = to_stored("/v1/unknown", "text/event-stream", wire)
    replayed = to_wire("/v1/unknown", stored)[0]
    assert replayed == b'data: {"a":1}\n\n'
    (live_event,), (replayed_event,) = parse_whatwg(wire), parse_whatwg(replayed)
    assert isinstance(live_event, WhatwgEvent) and isinstance(replayed_event, WhatwgEvent)
    assert json.loads(live_event.data) == json.loads(replayed_event.data) == {"a": 1}


@pytest.mark.parametrize(
    ("route", "wire", "content_type"),
    [
        (CHAT, b'data: {"object":"chat.completion.chunk","choices":"oops"}\n\n', "text/event-stream"),
        (CHAT, b'{"object":"chat.completion","choices":{"a":1}}', "application/json"),
    ],
    ids=["chunk", "json-body"],
)
def test_payload_its_class_cannot_hold_is_stored_plain_so_the_record_loads(
    route: str, wire: bytes, content_type: str
) -> None:
    # Typed by its route and shape, the record failed record.check when the cassette was opened.
    stored = to_stored(route, content_type, wire)
    rec = record.build(
        test_id=None, method="POST", url=route, body={}, endpoint=route, model=None, response=stored
    )
    record.check(rec, "<test>", None)
    assert to_wire(route, stored)[0] == wire


@pytest.mark.parametrize("wire", [b"[]", b'[{"object":"model","id":"m"}]', b"[1,2]"])
def test_json_array_body_replays_as_sent_not_as_a_models_page(wire: bytes) -> None:
    # A list body is how a models page is stored, and replays re-wrapped in {"object": "list", ...}.
    stored = to_stored(CHAT, "application/json", wire)
    assert to_wire(CHAT, stored)[0] == wire
