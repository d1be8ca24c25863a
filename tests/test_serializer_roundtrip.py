"""Property tests: records of the recording format survive being written and read back, unchanged.

Three round trips, over hypothesis-generated records (nested JSON values with odd
unicode, integers past 64 bits, floats, nulls; streaming bodies of typed chunks, raw
text, framed events, plain JSON; statuses, headers, ``sse_done``):

- ``record.dumps`` to a file and ``record.read`` back, in both the readable (UTF-8) and
  the ``ascii_only`` form;
- the vcrpy serializer: ``serializer.deserialize`` then ``serializer.serialize`` (with
  vcrpy's deep copy in between) gives back the very records;
- a live interaction recorded (``interactions.to_record``), replayed
  (``to_interaction``) and recorded again gives the same record: recording is a fixed
  point of replay, so re-recording unchanged traffic changes no file.

"Equal" is strict: ``1``, ``1.0`` and ``True`` differ, and so does key order.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vcr.request import Request

from vcr_ext import record, serializer
from vcr_ext.codec import StoredBody
from vcr_ext.interactions import ORIGIN_KEY, to_interaction, to_record
from vcr_ext.sdk_types import RAW_BASE64, RAW_TEXT, SSE_EVENT

EXAMPLES = int(os.environ.get("VCR_EXT_HYPOTHESIS_EXAMPLES", "150"))
PROPERTY = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
CHAT = "openai.types.chat.chat_completion.ChatCompletion"
ROUTES = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/unknown", "/api/chat"]


def canon(value: Any) -> Any:
    """A JSON value in a form where equality is strict: types and key order count."""
    if isinstance(value, dict):
        return ("object", tuple((k, canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(canon(v) for v in value))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


# ---------------------------------------------------------------- records of the format

SPECIAL_CHARS = ["\u2028", "\u2029", "\x00", "\ufeff", "\U0001f600", "\u00e9", "\\", '"', "\n", "\t"]
# codec="utf-8": hypothesis's characters() draws lone surrogates now and then otherwise.
texts = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL_CHARS)), max_size=8)
# Lone surrogates only fit the ascii_only form (as \uXXXX escapes): UTF-8 cannot hold them.
# A high surrogate right before a low one is no lone surrogate: JSON reads that pair of
# escapes as the one character they encode, and so does every value read from a wire.
texts_with_surrogates = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\ud800", "\udfff", "\udbff"]),
        st.sampled_from(SPECIAL_CHARS),
    ),
    max_size=8,
).filter(lambda s: not re.search("[\ud800-\udbff][\udc00-\udfff]", s))


@cache
def json_values(text: st.SearchStrategy[str] = texts) -> st.SearchStrategy[Any]:
    """Nested JSON values; keys never start an envelope (a stored ``__type__`` means one).

    Strategies are built once (cached): building one per draw costs more than drawing.
    """
    keys = text.filter(lambda k: k not in ("__type__", "__data__"))
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**40), max_value=10**40)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=6,
    )


@cache
def chat_chunks(text: st.SearchStrategy[str] = texts) -> st.SearchStrategy[dict[str, Any]]:
    delta = st.fixed_dictionaries({"content": st.none() | text}, optional={"role": st.just("assistant")})
    choice = st.fixed_dictionaries(
        {"index": st.integers(0, 3), "delta": delta, "finish_reason": st.none() | st.just("stop")}
    )
    return st.fixed_dictionaries(
        {
            "id": text,
            "object": st.just("chat.completion.chunk"),
            "created": st.integers(0, 2**40),
            "model": text,
            "choices": st.lists(choice, max_size=2),
        },
        optional={"usage": st.none(), "obfuscation": text},
    )


@cache
def stream_items(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """One stored event of a stream: a typed chunk, plain JSON, raw text, or a framed event."""
    values = json_values(text)
    framed = st.fixed_dictionaries(
        {"data": values | st.builds(lambda t: {"__type__": RAW_TEXT, "__data__": t}, text)},
        optional={"event": text, "id": text, "retry": st.integers(0, 10**12)},
    )
    return st.one_of(
        st.builds(lambda c: {"__type__": CHUNK, "__data__": c}, chat_chunks(text)),
        values,
        st.builds(lambda t: {"__type__": RAW_TEXT, "__data__": t}, text),
        st.builds(lambda f: {"__type__": SSE_EVENT, "__data__": f}, framed),
    )


@cache
def whole_bodies(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    completion = st.fixed_dictionaries(
        {"id": text, "object": st.just("chat.completion"), "created": st.integers(0, 2**40), "model": text},
        optional={"choices": st.just([]), "usage": st.none()},
    )
    return st.one_of(
        json_values(text),
        st.builds(lambda c: {"__type__": CHAT, "__data__": c}, completion),
        st.builds(lambda t: {"__type__": RAW_TEXT, "__data__": t}, text),
        st.builds(
            lambda b: {"__type__": RAW_BASE64, "__data__": b}, st.sampled_from(["", "AAEC/w==", "aGk="])
        ),
    )


@st.composite
def records(draw: st.DrawFn, text: st.SearchStrategy[str] = texts) -> dict[str, Any]:
    """A record as vcr_ext writes one, built with the format's own builder."""
    route = draw(st.sampled_from(ROUTES))
    streaming = draw(st.booleans())
    body = draw(st.lists(stream_items(text), max_size=4)) if streaming else draw(whole_bodies(text))
    header_names = st.sampled_from(["content-type", "x-request-id", "retry-after"])
    return record.build(
        test_id=draw(st.none() | text),
        method=draw(st.sampled_from(["POST", "GET", "DELETE"])),
        url=f"https://api.example.com{route}",
        body=draw(json_values(text)),
        endpoint=route,
        model=draw(st.none() | text),
        response=StoredBody(body, streaming, draw(st.none() | st.booleans()) if streaming else None),
        status=draw(st.sampled_from([200, 200, 201, 400, 429, 500])),
        headers=draw(st.dictionaries(header_names, text, max_size=2)),
    )


# ---------------------------------------------------------------- the round trips


@PROPERTY
@given(st.lists(records(), min_size=1, max_size=2))
def test_records_read_back_equal_what_was_written(recs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "cassette.json")
        path.write_text(record.dumps(recs), encoding="utf-8")
        assert canon(record.read(path)) == canon(recs)


@PROPERTY
@given(st.lists(records(texts_with_surrogates), min_size=1, max_size=2))
def test_ascii_only_records_read_back_equal_what_was_written(recs: list[dict[str, Any]]) -> None:
    text = record.dumps(recs, ascii_only=True)
    assert text.isascii()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "cassette.json")
        path.write_text(text, encoding="ascii")
        assert canon(record.read(path)) == canon(recs)


@PROPERTY
@given(st.lists(records(), min_size=1, max_size=2))
def test_vcrpy_serializer_gives_back_the_records_it_read(recs: list[dict[str, Any]]) -> None:
    loaded = serializer.deserialize(record.dumps(recs))
    assert len(loaded["interactions"]) == len(recs)
    # vcrpy deep-copies what it loaded before handing it back to save.
    saved = serializer.serialize(copy.deepcopy(loaded))
    assert canon(json.loads(saved)) == canon(recs)


# ---------------------------------------------------------------- recording is a fixed point of replay


@st.composite
def live_interactions(draw: st.DrawFn) -> tuple[Request, dict[str, Any]]:
    """A request and the response a server gave it, as vcrpy hands them to a persister."""
    route = draw(st.sampled_from(["/v1/chat/completions", "/v1/responses", "/v1/unknown"]))
    request_body = json.dumps(draw(json_values()), ensure_ascii=draw(st.booleans())).encode()
    headers = {"x-request-id": ["req_1"], "date": ["Mon, 01 Jan 2024 00:00:00 GMT"]}
    if draw(st.booleans()):
        chunks = draw(st.lists(chat_chunks() | json_values(), max_size=4))
        separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
        events = [f"data: {json.dumps(c, separators=separators, ensure_ascii=False)}\n\n" for c in chunks]
        body = ("".join(events) + "data: [DONE]\n\n").encode()
        headers["content-type"] = ["text/event-stream; charset=utf-8"]
    else:
        body = json.dumps(draw(json_values()), indent=draw(st.none() | st.just(2))).encode()
        headers["content-type"] = ["application/json"]
    status = draw(st.sampled_from([200, 400, 500]))
    response = {"status": {"code": status, "message": "x"}, "headers": headers, "body": {"string": body}}
    return Request("POST", f"https://api.example.com{route}", request_body, {}), response


@PROPERTY
@given(live_interactions(), st.none() | texts)
def test_recording_a_replayed_interaction_gives_the_same_record(
    live: tuple[Request, dict[str, Any]], test_id: str | None
) -> None:
    request, response = live
    first = to_record(request, response, test_id=test_id)
    record.check(first, "<first>", None)  # what was recorded loads
    replay_request, replay_response = to_interaction(first)
    again = to_record(
        replay_request, {k: v for k, v in replay_response.items() if k != ORIGIN_KEY}, test_id=test_id
    )
    assert canon(again) == canon(first)
    assert to_interaction(again)[1]["body"]["string"] == replay_response["body"]["string"]
    if response["headers"]["content-type"] == ["application/json"]:
        # What a client parses from the replayed body is what it parsed live.
        live_value = json.loads(response["body"]["string"])
        assert canon(json.loads(replay_response["body"]["string"])) == canon(live_value)
