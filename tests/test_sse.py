"""The SSE and NDJSON codecs, and the WHATWG reference parser, as tables of wire texts.

The reference parser's table is made of the examples of the HTML Living Standard
(section 9.2.6, "Interpreting an event stream") and of WHATWG's web-platform-tests
(``eventsource/format-*``), with the results those documents state: the reference is
checked against something the code under test did not produce.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vcr_ext.sse import (
    SSEEvent,
    WhatwgEvent,
    WhatwgItem,
    WhatwgLastEventId,
    WhatwgRetry,
    decode_ndjson,
    decode_sse,
    encode_ndjson,
    encode_sse,
    parse_whatwg,
    same_data,
    same_json,
)


def msg(data: str, last_event_id: str = "", type: str = "message") -> WhatwgEvent:
    return WhatwgEvent(type, data, last_event_id)


# ---------------------------------------------------------------- the WHATWG reference parser

SPEC_EXAMPLES: list[tuple[str, bytes, list[WhatwgItem]]] = [
    (
        "spec-stock-ticker",  # 9.2.6: "data: YHOO" ... one event of three lines
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [msg("YHOO\n+2\n10")],
    ),
    (
        "spec-comment-and-ids",  # 9.2.6: the id field with no value resets the last event ID
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
        [msg("first event", "1"), msg("second event", ""), msg(" third event", "")],
    ),
    (
        "spec-empty-data",  # 9.2.6: the last block is discarded, not followed by a blank line
        b"data\n\ndata\ndata\n\ndata:",
        [msg(""), msg("\n")],
    ),
    (
        "spec-space-after-colon-is-optional",  # 9.2.6: two identical events
        b"data:test\n\ndata: test\n\n",
        [msg("test"), msg("test")],
    ),
    (
        "spec-event-types",  # 9.2.5 example: add / remove / add
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [msg("73857293", type="add"), msg("2153", type="remove"), msg("113411", type="add")],
    ),
    (
        "wpt-format-bom",  # only the first BOM is dropped; a later one is part of a field name
        b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3\n\n",
        [msg("1"), msg("3")],
    ),
    (
        "wpt-format-bom-2",  # two BOMs: the second makes the first field unknown
        b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3\n\n",
        [msg("2"), msg("3")],
    ),
    (
        "wpt-format-field-parsing",  # case-sensitive names, NUL, leading spaces, CR line ends
        b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n"
        b" data:32\ndata:4\n\n",
        [msg("\x00\n 2\n1\n3\n\n4")],
    ),
    (
        "wpt-format-field-unknown",
        b"data:1\nfoo\nfoo: bar\ndata:2\n\n",
        [msg("1\n2")],
    ),
    (
        "wpt-format-field-event-empty",  # an empty event type means "message"
        b"event: \ndata:data\n\n",
        [msg("data")],
    ),
    (
        "wpt-format-field-retry",  # leading zeros are digits like any other
        b"retry:03000\ndata:x\n\n",
        [WhatwgRetry(3000), msg("x")],
    ),
    (
        "wpt-format-field-retry-bogus",  # not all digits: ignored
        b"retry:3000\nretry:1000x\ndata:x\n\n",
        [WhatwgRetry(3000), msg("x")],
    ),
    (
        "wpt-format-field-retry-empty",  # no value: ignored
        b"retry\ndata:test\n\n",
        [msg("test")],
    ),
    (
        "wpt-format-field-id-persists",  # the last event ID is never reset by a dispatch
        b"id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n",
        [msg("1", "1"), msg("2", "1"), msg("3", "2"), msg("4", "2")],
    ),
    (
        "wpt-format-field-id-null",  # an id with U+0000 anywhere is ignored
        b"id:\x00\x00\ndata:1\n\nid:x\x00\ndata:2\n\nid:\x00x\ndata:3\n\nid:x\x00x\ndata:4\n\n"
        b"id: \x00\ndata:5\n\n",
        [msg("1"), msg("2"), msg("3"), msg("4"), msg("5")],
    ),
    (
        "id-with-nul-keeps-the-previous-id",
        b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
        [msg("a", "1"), msg("b", "1")],
    ),
    (
        "chromium-last-event-id-updated-when-data-is-empty",  # and an empty id resets it
        b"id:9\n\ndata:x\n\nid:\n\ndata:y\n\n",
        [WhatwgLastEventId("9"), msg("x", "9"), WhatwgLastEventId(""), msg("y", "")],
    ),
    (
        "wpt-format-data-before-final-empty-line",  # an unfinished event is not dispatched
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2",
        [WhatwgRetry(1000), msg("test1")],
    ),
    (
        "wpt-format-leading-space",  # only one space is dropped; a tab is data
        b"data:\ttest\rdata: \ndata:test\n\n",
        [msg("\ttest\n\ntest")],
    ),
    (
        "wpt-format-newlines",  # CRLF, LF and CR all end a line; CR CRLF is a line end and a blank line
        b"data:test\r\ndata\ndata:test\r\r\n",
        [msg("test\n\ntest")],
    ),
    (
        "wpt-format-comments",  # ":" CRLF is one comment line, not a comment and a blank line
        b"data:1\r:\x00\n:\r\ndata:2\n:"
        + b"x" * 2048
        + b"\rdata:3\n:data:fail\r:"
        + b"x" * 2048
        + b"\ndata:4\n\n",
        [msg("1\n2\n3\n4")],
    ),
    (
        "wpt-format-null-character",  # U+0000 is data like any other character
        b"data:\x00\n\n",
        [msg("\x00")],
    ),
    (
        "wpt-format-utf-8",
        "data:ok\u2026\n\n".encode(),
        [msg("ok\u2026")],
    ),
    (
        "no-data-line-dispatches-nothing-but-its-id-takes-effect",
        b"event: ping\nid: 9\nretry: 5\n\ndata: x\n\n",
        [WhatwgRetry(5), WhatwgLastEventId("9"), msg("x", "9")],
    ),
    (
        "invalid-utf-8-is-replaced",  # UTF-8 decode: each maximal bad subpart is one U+FFFD
        b"data: \xff\xe2\x82A\n\n",
        [msg("\ufffd\ufffdA")],
    ),
    (
        "retry-set-in-an-unfinished-block-still-counts",  # a retry line acts when read
        b"data: x\n\nretry: 7\n",
        [msg("x"), WhatwgRetry(7)],
    ),
    ("empty-body", b"", []),
]


@pytest.mark.parametrize(("wire", "expected"), [pytest.param(w, e, id=name) for name, w, e in SPEC_EXAMPLES])
def test_parse_whatwg_matches_the_standard(wire: bytes, expected: list[WhatwgItem]) -> None:
    assert parse_whatwg(wire) == expected


def test_parse_whatwg_reads_retry_values_past_int_s_digit_limit() -> None:
    # int(str) refuses this many digits (sys.get_int_max_str_digits); the standard sets no bound.
    (retry,) = parse_whatwg(b"retry: " + b"1" * 5000 + b"\n")
    assert retry == WhatwgRetry((10**5000 - 1) // 9)  # 5000 ones


# ---------------------------------------------------------------- comparing data


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ('{"a":1}', '{"a": 1}', True),
        ('"\\u00e9"', '"\u00e9"', True),
        ('{"a":1}', '{"a":1.0}', False),
        ("1", "true", False),
        ('{"a":1,"b":2}', '{"b":2,"a":1}', False),  # key order is what a client iterates
        ("0.0", "-0.0", False),
        ("NaN", "NaN", True),  # the same text is the same data, whatever it means
        ("[NaN]", "[ NaN]", False),
        ("x", "x ", False),
    ],
)
def test_same_data(a: str, b: str, same: bool) -> None:
    assert same_data(a, b) is same


def test_same_json_is_stricter_than_equality() -> None:
    assert same_json({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not same_json(True, 1)
    assert not same_json(float("inf"), float("inf"))


# ---------------------------------------------------------------- the codec


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
        pytest.param("data\n\n", [SSEEvent("")], id="data-without-colon"),
        pytest.param("id:\ndata: x\n\n", [SSEEvent("x", None, "")], id="empty-id"),
        pytest.param("id: a\x00b\ndata: x\n\n", [SSEEvent("x")], id="id-with-nul-is-ignored"),
        pytest.param("retry: abc\ndata: x\n\n", [SSEEvent("x")], id="retry-not-digits-is-ignored"),
        pytest.param("retry: \u00b2\ndata: x\n\n", [SSEEvent("x")], id="retry-superscript-is-ignored"),
        pytest.param("retry: 007\ndata: x\n\n", [SSEEvent("x", retry=7)], id="retry-leading-zeros"),
        pytest.param("bogus: x\ndata: y\n\n", [SSEEvent("y")], id="unknown-field-is-ignored"),
        pytest.param("event: ping\n\n", [SSEEvent(None, "ping")], id="no-data-line"),
        pytest.param("\n\n: c\n\ndata: x\n\n", [SSEEvent("x")], id="blocks-that-set-nothing"),
        pytest.param(
            "id: 1\ndata: x\n\n: c\n\n",
            [SSEEvent("x", None, "1"), SSEEvent(None)],
            id="a-blank-block-after-an-id-dispatches-in-the-openai-sdk",
        ),
    ],
)
def test_decode_sse(wire: str, events: list[SSEEvent]) -> None:
    assert decode_sse(wire) == events


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param("data: x\n\ndata: torn", id="last-event-without-blank-line"),
        pytest.param("data: x\n\nid: 3\n", id="last-block-without-blank-line"),
        pytest.param("\ufeffdata: x\n\n", id="byte-order-mark"),
        pytest.param("retry: +5\ndata: x\n\n", id="retry-only-the-openai-sdk-reads"),
        pytest.param("retry: \u0665\ndata: x\n\n", id="retry-of-non-ascii-digits"),
        pytest.param("retry: 1\nretry: 2\ndata: x\n\n", id="two-retries-in-one-block"),
        pytest.param(f"retry: {'9' * 5000}\ndata: x\n\n", id="retry-past-int-s-digit-limit"),
    ],
)
def test_decode_sse_refuses_what_would_not_round_trip(wire: str) -> None:
    assert decode_sse(wire) is None


def test_encode_sse_frames_as_openai() -> None:
    wire = encode_sse([SSEEvent('{"type":"response.created"}', "response.created"), SSEEvent("[DONE]")])
    assert wire == b'event: response.created\ndata: {"type":"response.created"}\n\ndata: [DONE]\n\n'


def test_encode_sse_writes_no_data_line_for_an_event_without_data() -> None:
    assert encode_sse([SSEEvent(None, "ping", "3"), SSEEvent(None)]) == b"event: ping\nid: 3\n\n\n"


def test_sse_round_trip_of_real_wire_bytes(corpus_dir: Path) -> None:
    files = sorted(Path(corpus_dir, "wire").rglob("*.*"))
    assert files
    for f in files:
        text = f.read_text("utf-8")
        events = decode_sse(text)
        assert events is not None, f
        assert encode_sse(events).decode("utf-8") == text, f
        assert parse_whatwg(encode_sse(events)) == parse_whatwg(f.read_bytes()), f


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
