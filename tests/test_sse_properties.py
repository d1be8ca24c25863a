"""Property tests: whatever event stream a server sends, its replay means the same to every client.

For byte streams a server may send (events built from ``data``/``event``/``id``/``retry``
fields, comments and unknown fields, any line ends, JSON or other data, ``[DONE]``, odd
unicode with lone-surrogate escapes, a BOM; and plain random bytes), recording then
replaying (``to_wire(to_stored(...))``) on the chat completions route, the Responses route
and an unknown route must give bytes that

(a) the WHATWG reference parser reads as the same events (type, data, last event id),
    reconnection times and id changes, in the same order;
(b) the openai SDK's own decoder (``openai._streaming.SSEDecoder``) reads as the same
    events (event, data, id, retry), or fails the same way (bytes that are not UTF-8);
(c) ``openai.Stream`` turns into the same values, or the same error;

and the stored body must survive being written as a record and read back.

"The same data" is the same text, or, for JSON, the same value with its types and key
order (the openai SDK parses every event's data; a record stores the value). The
comparison here is written independently of ``vcr_ext.sse.same_data``.

Runs are reproducible and bounded: ``derandomize=True`` and
``VCR_EXT_HYPOTHESIS_EXAMPLES`` examples per test (default 150).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import openai
import openai._streaming
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcr_ext import record
from vcr_ext.codec import StoredBody, to_stored, to_wire
from vcr_ext.sdk_types import TYPE_KEY
from vcr_ext.sse import WhatwgEvent, parse_whatwg

EXAMPLES = int(os.environ.get("VCR_EXT_HYPOTHESIS_EXAMPLES", "150"))
PROPERTY = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # derandomized: nothing to remember between runs, and no .hypothesis/ in the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUTES = ["/v1/chat/completions", "/v1/responses", "/v1/unknown"]
SSE = "text/event-stream"

# ---------------------------------------------------------------- what a stream means


def _canon(value: Any) -> Any:
    """A parsed JSON value as a hashable form where 1, 1.0 and True differ and key order counts."""
    if isinstance(value, dict):
        return ("object", tuple((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_canon(v) for v in value))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def _data_meaning(data: str) -> Any:
    try:
        return ("json", _canon(json.loads(data)))
    except ValueError:
        return ("text", data)


def whatwg_meaning(wire: bytes) -> list[Any]:
    """(a): the reference parser's observations, data by meaning."""
    return [
        ("event", item.type, _data_meaning(item.data), item.last_event_id)
        if isinstance(item, WhatwgEvent)
        else item
        for item in parse_whatwg(wire)
    ]


def sdk_meaning(wire: bytes) -> list[Any]:
    """(b): what the SDK's decoder yields, up to and with the error it raises."""
    seen: list[Any] = []
    try:
        for sse in openai._streaming.SSEDecoder().iter_bytes(iter([wire])):
            seen.append((sse.event, _data_meaning(sse.data), sse.id, sse.retry))
    except UnicodeDecodeError as err:
        seen.append(("raised", repr(err)))
    return seen


@cache
def _client() -> openai.OpenAI:
    """A client for ``openai.Stream`` to decode with; it never sends a request."""
    return openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)


# The transport module the installed SDK builds responses with (httpx2 for openai 3, httpx for 2).
_HTTP = getattr(openai._streaming, "httpx2", None) or openai._streaming.httpx


def stream_meaning(wire: bytes, route: str) -> list[Any]:
    """(c): the values ``openai.Stream`` yields for a response with this body, then its error if any."""
    request = _HTTP.Request("POST", f"http://127.0.0.1:9{route}")
    response = _HTTP.Response(200, content=wire, request=request, headers={"content-type": SSE})
    seen: list[Any] = []
    try:
        for value in openai.Stream(cast_to=object, response=response, client=_client()):
            seen.append(_canon(value))
    except Exception as err:  # any failure the SDK raises is part of what the client sees
        seen.append(("raised", type(err).__name__, str(err)))
    return seen


def assert_replays_the_same(live: bytes) -> None:
    """Record ``live`` on each route, replay it: (a), (b) and (c) hold, and the record loads."""
    for route in ROUTES:
        stored = to_stored(route, SSE, live)
        replayed, _ = to_wire(route, stored)
        assert whatwg_meaning(replayed) == whatwg_meaning(live), route
        assert sdk_meaning(replayed) == sdk_meaning(live), route
        assert stream_meaning(replayed, route) == stream_meaning(live, route), route
        # The record is written as UTF-8 JSON, read back and checked as a cassette is when
        # opened: it must load, and its replay must not change.
        rec = record.build(
            test_id=None,
            method="POST",
            url=f"http://127.0.0.1:9{route}",
            body={},
            endpoint=route,
            model=None,
            response=stored,
            headers={"content-type": SSE},
        )
        back = record.check(json.loads(record.dumps(rec).encode("utf-8")), "<property>", None)["response"]
        again = StoredBody(back["body"], back["is_streaming"], back.get("sse_done"))
        assert to_wire(route, again)[0] == replayed, route


# ---------------------------------------------------------------- what servers send

# Characters that trip up line splitting, JSON or UTF-8: separators str.splitlines() would
# split on, NUL, a BOM inside the text, astral and accented letters, SSE's own colon.
SPECIAL_CHARS = ["\u2028", "\u2029", "\x85", "\x00", "\ufeff", "\U0001f600", "\u00e9", " ", ":", "\t"]
LONE_SURROGATES = ["\ud800", "\udfff", "\udc00", "\ud83d"]
# codec="utf-8": hypothesis's characters() draws lone surrogates now and then otherwise.
odd_chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL_CHARS))
line_text = st.text(odd_chars, max_size=8).map(lambda s: s.replace("\r", "").replace("\n", ""))
# Inside JSON strings a lone surrogate is legal, written as a \\uXXXX escape.
odd_text = st.text(st.one_of(odd_chars, odd_chars, odd_chars, st.sampled_from(LONE_SURROGATES)), max_size=8)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=8,
)


def chat_chunk(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A chat completion chunk (typed as ChatCompletionChunk on the chat route) with ``text`` content."""
    choice = st.fixed_dictionaries(
        {"index": st.just(0), "delta": st.fixed_dictionaries({"content": text}), "finish_reason": st.none()}
    )
    return st.fixed_dictionaries(
        {
            "id": line_text,
            "object": st.just("chat.completion.chunk"),
            "created": st.integers(0, 2**40),
            "model": st.just("gpt-4o"),
            "choices": st.lists(choice, max_size=1),
        }
    )


def responses_event(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A Responses API stream event (typed by its ``type`` on the Responses route)."""
    return st.fixed_dictionaries(
        {"type": st.sampled_from(RESPONSES_TYPES), "sequence_number": st.integers(0, 99), "delta": text}
    )


RESPONSES_TYPES = ["response.created", "response.output_text.delta", "response.completed", "error"]
error_objects = st.fixed_dictionaries({"error": st.fixed_dictionaries({"message": odd_text})})
# Shaped like a chunk or an event at first sight (so classified as one), with any values.
lookalikes = st.one_of(
    st.fixed_dictionaries({"object": st.just("chat.completion.chunk"), "choices": json_values}),
    st.fixed_dictionaries({"type": st.sampled_from(RESPONSES_TYPES), "response": json_values}),
)


@st.composite
def json_text(draw: st.DrawFn) -> str:
    """A JSON text of some value, written compact (as OpenAI does) or otherwise, maybe over several lines."""
    value = draw(
        st.one_of(chat_chunk(odd_text), responses_event(odd_text), error_objects, lookalikes, json_values)
    )
    style = draw(st.sampled_from(["compact", "spaced", "ascii", "indented"]))
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        ascii_only = style == "ascii"
    except UnicodeEncodeError:
        ascii_only = True  # a lone surrogate can only be written as an escape
    if style == "indented":
        return json.dumps(value, indent=1, ensure_ascii=ascii_only)
    separators = (",", ":") if style == "compact" else (", ", ": ")
    return json.dumps(value, separators=separators, ensure_ascii=ascii_only)


data_texts = st.one_of(
    json_text(),
    line_text,
    st.sampled_from(["[DONE]", "[DONE] and more", "", '"\\ud800"', '{"a":"\\udfff\\ud83d"}', "NaN", "1e400"]),
)
retry_values = st.one_of(
    st.integers(0, 10**7).map(str),
    st.integers(0, 999).map(lambda n: f"00{n}"),
    st.sampled_from(["", "abc", "+5", " 5", "5 ", "\u00b2", "\u0665", "1_0", "-1", "1.5"]),
)
event_names = st.one_of(st.sampled_from([*RESPONSES_TYPES, "ping", "", "done", "thread.message"]), line_text)
id_values = st.one_of(st.sampled_from(["", "1", "42", "a\x00b", "\x00"]), line_text)


@st.composite
def field_lines(draw: st.DrawFn) -> list[str]:
    """The lines of one field (several for multi-line data), a comment, or an unknown field."""
    kind = draw(
        st.sampled_from(["data", "data", "data", "event", "id", "retry", "comment", "unknown", "bare"])
    )
    sep = draw(st.sampled_from([": ", ":", ":  "]))
    if kind == "data":
        return [f"data{sep}{line}" for line in draw(data_texts).split("\n")]
    if kind == "event":
        return [f"event{sep}{draw(event_names)}"]
    if kind == "id":
        return [f"id{sep}{draw(id_values)}"]
    if kind == "retry":
        return [f"retry{sep}{draw(retry_values)}"]
    if kind == "comment":
        return [f":{draw(line_text)}"]
    if kind == "unknown":
        return [f"{draw(st.sampled_from(['foo', 'Data', 'dat', 'data ', 'ID']))}{sep}{draw(line_text)}"]
    return [draw(st.sampled_from(["data", "event", "id", "retry", "bogus"]))]  # a name and no colon


line_ends = st.sampled_from(["\n", "\n", "\r", "\r\n"])


def rarely(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (not ``integers(0, n) == 0``: hypothesis favours small integers)."""
    return st.sampled_from([False] * (n - 1) + [True])


@st.composite
def block_fields(draw: st.DrawFn) -> list[list[str]]:
    """The fields of one block: any mix, an event as servers usually frame one, or a keep-alive."""
    kind = draw(st.sampled_from(["any", "any", "event", "event", "keep-alive"]))
    if kind == "keep-alive":
        return [[":" + draw(st.sampled_from(["", " keep-alive", " OPENROUTER PROCESSING"]))]]
    if kind == "any":
        return draw(st.lists(field_lines(), max_size=4))
    framing = [
        [f"{name}: {draw(values)}"]
        for name, values in (("event", event_names), ("id", id_values))
        if draw(st.booleans())
    ]
    return [*framing, [f"data: {line}" for line in draw(data_texts).split("\n")]]


@st.composite
def server_streams(draw: st.DrawFn) -> bytes:
    """An event stream as a server may write it, as bytes."""
    parts: list[str] = []
    if draw(rarely(10)):
        parts.append("\ufeff")
    for _ in range(draw(st.integers(0, 6))):
        for field in draw(block_fields()):
            parts.extend(line + draw(line_ends) for line in field)
        parts.append(draw(line_ends))  # the blank line that dispatches the block
    ending = draw(st.sampled_from(["done"] * 4 + ["nothing"] * 3 + ["framed-done", "comment", "torn"]))
    if ending == "done":
        parts.append("data: [DONE]\n\n")
    elif ending == "framed-done":
        framing = draw(st.sampled_from(["event: done", "event:", "id: 9", "id:", "retry: 50", "retry: x"]))
        parts.append(f"{framing}\ndata: [DONE]\n\n")
    elif ending == "torn":
        parts.extend(line + draw(line_ends) for line in draw(field_lines()))
    elif ending == "comment":
        parts.append(": bye")
    wire = "".join(parts).encode("utf-8")
    if draw(rarely(15)):
        # Bytes that are not UTF-8: a stray byte, an encoded surrogate, a truncated sequence.
        junk = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xe2\x82", b"\xc0\xaf"]))
        at = draw(st.integers(0, len(wire)))
        wire = wire[:at] + junk + wire[at:]
    return wire


@st.composite
def openai_streams(draw: st.DrawFn) -> tuple[str, bytes]:
    """A stream framed exactly as api.openai.com frames it: chat chunks and [DONE], or Responses events.

    OpenAI writes UTF-8 text unescaped, so its strings hold no lone surrogate here.
    """

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    text = st.text(odd_chars, max_size=8)
    if draw(st.booleans()):
        chunks = draw(st.lists(chat_chunk(text), min_size=1, max_size=5))
        body = "".join(f"data: {compact(c)}\n\n" for c in chunks)
        return "/v1/chat/completions", (body + "data: [DONE]\n\n").encode()
    events = draw(st.lists(responses_event(text), min_size=1, max_size=5))
    body = "".join(f"event: {e['type']}\ndata: {compact(e)}\n\n" for e in events)
    return "/v1/responses", body.encode()


SSE_ALPHABET = st.sampled_from(
    ["data", "event", "id", "retry", ":", " ", "\n", "\r", "[DONE]", "{}", '"', "x", "\x00"]
)

# ---------------------------------------------------------------- the properties


@PROPERTY
@given(server_streams())
def test_replay_of_a_server_stream_means_the_same(live: bytes) -> None:
    assert_replays_the_same(live)


@PROPERTY
@given(st.binary(max_size=200))
def test_replay_of_random_bytes_means_the_same(live: bytes) -> None:
    assert_replays_the_same(live)


@PROPERTY
@given(st.lists(SSE_ALPHABET, max_size=40).map(lambda parts: "".join(parts).encode()))
def test_replay_of_sse_shaped_noise_means_the_same(live: bytes) -> None:
    assert_replays_the_same(live)


@PROPERTY
@given(openai_streams())
def test_openai_streams_are_stored_typed_and_replayed_byte_for_byte(
    route_and_wire: tuple[str, bytes],
) -> None:
    route, live = route_and_wire
    stored = to_stored(route, SSE, live)
    assert stored.is_streaming
    assert all(isinstance(item, dict) and item[TYPE_KEY].startswith("openai.types.") for item in stored.body)
    assert to_wire(route, stored)[0] == live
