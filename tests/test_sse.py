"""The SSE and NDJSON codecs, as tables of wire texts."""

from __future__ import annotations

import pytest

from vcr_ext.sse import SSEEvent, decode_ndjson, decode_sse, encode_ndjson, encode_sse


@pytest.mark.parametrize(
    ("wire", "events"),
    [
        pytest.param('data: {"a":1}\n\n', [SSEEvent('{"a":1}')], id="one-data-event"),
        pytest.param("data:x\n\n", [SSEEvent("x")], id="space-after-colon-is-optional"),
        pytest.param("data: x\r\n\r\n", [SSEEvent("x")], id="crlf-line-ends"),
        pytest.param("data: x\r\rdata: y\r\r", [SSEEvent("x"), SSEEvent("y")], id="cr-line-ends"),
        pytest.param(": keep-alive\n\ndata: x\n\n", [SSEEvent("x")], id="comments-are-not-events"),
        pytest.param("event: ping\ndata: {}\n\n", [SSEEvent("{}", "ping")], id="event-name"),
        pytest.param("data: a\ndata: b\n\n", [SSEEvent("a\nb")], id="multi-line-data-joined-by-lf"),
        pytest.param("id: 7\nretry: 10\ndata: x\n\n", [SSEEvent("x", None, "7", 10)], id="id-and-retry"),
        pytest.param('data: "\u2028"\n\n', [SSEEvent('"\u2028"')], id="unicode-line-separator-is-data"),
        pytest.param("", [], id="empty-body"),
    ],
)
def test_decode_sse(wire: str, events: list[SSEEvent]) -> None:
    assert decode_sse(wire) == events


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param("data: x\n\ndata: torn", id="last-event-without-blank-line"),
        pytest.param("bogus: x\n\n", id="unknown-field"),
    ],
)
def test_decode_sse_refuses_what_would_not_round_trip(wire: str) -> None:
    assert decode_sse(wire) is None


def test_encode_sse_frames_as_openai() -> None:
    wire = encode_sse([SSEEvent('{"type":"response.created"}', "response.created"), SSEEvent("[DONE]")])
    assert wire == b'event: response.created\ndata: {"type":"response.created"}\n\ndata: [DONE]\n\n'


def test_sse_round_trip_of_real_wire_bytes(corpus_dir: object) -> None:
    from pathlib import Path

    files = sorted(Path(str(corpus_dir), "wire").rglob("*.*"))
    assert files
    for f in files:
        text = f.read_text("utf-8")
        events = decode_sse(text)
        assert events is not None, f
        assert encode_sse(events).decode("utf-8") == text, f


def test_ndjson_round_trip() -> None:
    wire = '{"done":false,"response":"Hi"}\n{"done":true}\n'
    values = decode_ndjson(wire)
    assert values == [{"done": False, "response": "Hi"}, {"done": True}]
    assert encode_ndjson(values).decode() == wire


@pytest.mark.parametrize(
    "wire", ['{"a":1}\nnot json\n', '{"a":1}'], ids=["line-not-json", "no-final-newline"]
)
def test_ndjson_refuses_what_would_not_round_trip(wire: str) -> None:
    assert decode_ndjson(wire) is None
