"""Response bodies: wire bytes -> the format's ``response.body`` and back, exactly as the wire framed them.

Recording turns a body into per-event typed values (SSE, NDJSON) or one typed value
(JSON); replay re-encodes those values to the bytes a client expects. Anything that
would not survive that round trip (a torn event stream, text that is not JSON, bytes
that are not UTF-8) is kept whole as a raw envelope, so nothing the server said is lost.

An event stream is faithful by construction: before its per-event form is kept, the
bytes :func:`to_wire` will send for it are parsed, with the WHATWG reference parser and
with the openai SDK's decoder, and must give the same events, ids and reconnection
times as the live bytes; otherwise the body is kept raw. The check runs when recording
only; replay does no more work than encoding.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from . import sdk_types, typed_check
from .providers import bedrock, cohere, google
from .sdk_types import (
    DATA_KEY,
    DONE_AFTER_NAMED_PREFIXES,
    EVENT_NAMED_PREFIXES,
    RAW_BASE64,
    RAW_JSON,
    RAW_TEXT,
    SSE_EVENT,
    TYPE_KEY,
    Unwrapped,
    envelope,
    store,
    unwrap,
)
from .sse import (
    DONE,
    SDKEvent,
    SSEEvent,
    decode_ndjson,
    decode_sse,
    dumps_compact,
    encode_ndjson,
    encode_sse,
    json_bytes,
    openai_sdk_events,
    parse_whatwg,
    same_data,
    same_json,
    same_sdk_events,
    same_whatwg,
)

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
NDJSON_CONTENT_TYPE = "application/x-ndjson"
JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
BINARY_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class StoredBody:
    """What a response body becomes in a record.

    ``sse_done`` is ``None`` when the stream's ``data: [DONE]`` terminator is what its
    kind always has (chat and completion streams end with it, Responses streams do not),
    and says so explicitly only when a server deviated.
    """

    body: Any
    is_streaming: bool
    sse_done: bool | None = None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_ndjson_route(route: str) -> bool:
    """Ollama's native API and Cohere's v1 chat stream NDJSON; everything else we know streams SSE."""
    return route.startswith("/api/") or route == cohere.V1_CHAT_ROUTE


def _default_done(items: list[Any]) -> bool:
    # Responses API and Anthropic Messages streams (events named by their type) and
    # Google's streams just end; chat and completion streams, and Cohere v2's named
    # events, send [DONE].
    return all(
        (sdk_types.derived_event(u.type_name, u.payload) is None and not _unterminated(u.type_name))
        or (u.type_name or "").startswith(DONE_AFTER_NAMED_PREFIXES)
        for u in map(unwrap, items)
    )


def _unterminated(type_name: str | None) -> bool:
    return type_name is not None and type_name.startswith(sdk_types.UNTERMINATED_PREFIXES)


def _raw(text_or_bytes: str | bytes) -> StoredBody:
    if isinstance(text_or_bytes, str):
        return StoredBody(envelope(RAW_TEXT, text_or_bytes), False)
    return StoredBody(envelope(RAW_BASE64, base64.b64encode(text_or_bytes).decode("ascii")), False)


def _reencodes(payload: Any, text: str) -> bool:
    """Whether the compact JSON a replay writes for ``payload`` (parsed from ``text``) reads back as it.

    Not so for a lone surrogate escape such as ``"\\ud800"`` (valid JSON, but no UTF-8
    text can hold it, so neither the record nor the replay could), ``NaN``, or a number
    past the float range; such a value is kept as the text the server sent.
    """
    try:
        replayed = dumps_compact(payload)
    except ValueError:  # pydantic-core refuses lone surrogates
        return False
    # Compact JSON (what OpenAI sends) comes back as the same text: no second parse.
    return replayed == text or same_json(json.loads(replayed), payload)


def _type_of(route: str, payload: Any, *, streaming: bool) -> str | None:
    """The SDK class to type ``payload`` with, or ``None`` to store it as plain JSON.

    A payload its class can never hold (``"choices": "oops"`` on the chat route) is not
    typed: a cassette is checked against the classes when opened (record.check), and
    a recording must load. Plain JSON replays the same bytes.
    """
    type_name = sdk_types.classify(route, payload, streaming=streaming)
    if type_name is not None and typed_check.check(type_name, payload) is not None:
        return None
    return type_name


def _data_value(route: str, data: str) -> tuple[Any, str | None]:
    """The stored form of one event's data, and the ``event:`` name a replay derives from it.

    JSON data is stored as its value (typed when an SDK class fits) if a replay gives
    the client the same value (:func:`_reencodes`); other data is kept as its text.
    """
    try:
        payload = json.loads(data)
    except ValueError:
        return envelope(RAW_TEXT, data), None
    if not _reencodes(payload, data):
        return envelope(RAW_TEXT, data), None
    type_name = _type_of(route, payload, streaming=True)
    return store(payload, type_name), sdk_types.derived_event(type_name, payload)


def _sse_item(route: str, ev: SSEEvent) -> Any:
    """One stored body item: the data's stored value alone when its framing can be derived from it."""
    framing = {"event": ev.event, "id": ev.id, "retry": ev.retry}
    kept = {k: v for k, v in framing.items() if v is not None}
    if ev.data is None:
        # No data line: a standard reader dispatches nothing, so none is invented on replay.
        return envelope(SSE_EVENT, kept)
    value, derived_event = _data_value(route, ev.data)
    if ev.event == derived_event and ev.id is None and ev.retry is None:
        return value
    return envelope(SSE_EVENT, {**kept, "data": value})


def _replays_same(route: str, live: bytes, stored: StoredBody) -> bool:
    """Whether the bytes :func:`to_wire` makes of ``stored`` mean to a client what ``live`` meant.

    Checked with the WHATWG reference parser (events with their type, data and last
    event id, reconnection times, ids set without an event, in order) and with the
    openai SDK's own decoder, whose view differs from the standard's (see
    :mod:`vcr_ext.sse`), and, for Anthropic Messages streams, with the anthropic SDK's
    decoder too, for Google's with google-genai's own reader. Data compares as text, or
    as the same JSON value.
    """
    try:
        replayed, _ = to_wire(route, stored)
    except (ValueError, TypeError):  # nothing to replay from, so nothing to keep but the text
        return False
    if replayed == live:
        return True  # the usual case (OpenAI's own framing): the same bytes parse the same
    if not same_whatwg(parse_whatwg(live), parse_whatwg(replayed)):
        return False
    live_sdk = openai_sdk_events(live)
    if live_sdk is not None and not same_sdk_events(live_sdk, openai_sdk_events(replayed) or []):
        return False
    if route in (sdk_types.ANTHROPIC_MESSAGES_ROUTE, sdk_types.ANTHROPIC_COUNT_TOKENS_ROUTE):
        live_anthropic = _anthropic_sdk_events(live)
        if live_anthropic is not None:
            return same_sdk_events(live_anthropic, _anthropic_sdk_events(replayed) or [])
    if google.is_google_route(route):
        live_google = google.sdk_chunks(live)
        if live_google is not None:
            return _same_chunks(live_google, google.sdk_chunks(replayed) or [])
    return True


def _same_chunks(live: list[str], replayed: list[str]) -> bool:
    """Whether google-genai reads the same chunks (as text, or as the same JSON value) from both streams."""
    return len(live) == len(replayed) and all(map(same_data, live, replayed))


def _anthropic_sdk_events(data: bytes) -> list[SDKEvent] | None:
    """The events the installed anthropic SDK's stream decoder yields for ``data``; ``None`` without one.

    Its decoder is the SDK's private ``SSEDecoder`` (like openai's, imported lazily and
    optional): Anthropic streams are checked with the decoder of the SDK that reads them.
    """
    try:
        from anthropic._streaming import SSEDecoder
    except ImportError:
        return None
    return [(e.event, e.data, e.id, e.retry) for e in SSEDecoder().iter_bytes(iter([data]))]


def _sse_body(route: str, raw: bytes, text: str) -> StoredBody:
    """An event-stream body as per-event items, or whole as raw text if those would not replay the same."""
    events = decode_sse(text)
    if events is None:
        return _raw(text)
    # The SDK stops reading at the first data starting with [DONE]: whatever follows is
    # invisible to it, so a stream going on after one is kept verbatim.
    first_done = next(
        (i for i, ev in enumerate(events) if ev.data is not None and ev.data.startswith(DONE)), None
    )
    if first_done is not None and first_done != len(events) - 1:
        return _raw(text)
    # Only a bare "data: [DONE]" is the terminator; one with event:/id:/retry: lines is
    # stored as an event so that replay sends those lines too.
    done = bool(events) and events[-1] == SSEEvent(DONE)
    items = [_sse_item(route, ev) for ev in (events[:-1] if done else events)]
    stored = StoredBody(items, True, None if done == _default_done(items) else done)
    # Faithful by construction: whatever the codec missed, a body whose replay would
    # differ is kept as the text the server sent. This costs a parse at record time only.
    return stored if _replays_same(route, raw, stored) else _raw(text)


def to_stored(route: str, content_type: str | None, raw: bytes) -> StoredBody:
    """The record form of a response body sent on ``route`` with ``content_type``."""
    if _media_type(content_type) == bedrock.CONTENT_TYPE:  # AWS event-stream frames (Bedrock)
        frames = bedrock.to_items(route, raw)
        return StoredBody(frames, True) if frames is not None else _raw(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _raw(raw)
    media = _media_type(content_type)
    if media == "text/event-stream":
        return _sse_body(route, raw, text)
    # Ollama's streams are told by their route (some servers send no NDJSON content type);
    # Cohere's /v1/chat answers JSON too, so its stream is told by its content type only.
    if media in (NDJSON_CONTENT_TYPE, cohere.NDJSON_MEDIA_TYPE) or (
        route.startswith("/api/") and text.count("\n") > 1
    ):
        values = decode_ndjson(text)
        if values is None or not all(_reencodes(v, "") for v in values):
            return _raw(text)
        if media == cohere.NDJSON_MEDIA_TYPE and encode_ndjson(values) != raw:
            return _raw(text)  # Cohere's lines are compact JSON: replay sends its bytes, or the text
        return StoredBody([store(v, _type_of(route, v, streaming=True)) for v in values], True)
    if not text.strip():
        return _raw(text)
    try:
        payload = json.loads(text)
    except ValueError:
        return _raw(text)
    if not _reencodes(payload, text):
        return _raw(text)
    if isinstance(payload, list):
        # A body stored as a list is a models page (llama-stack's form) and replays
        # re-wrapped as one: a JSON array the server sent is escaped so it replays as sent.
        return StoredBody(envelope(RAW_JSON, payload), False)
    if route == "/v1/models" and _is_model_page(payload):
        models = [store(m, _type_of(route, m, streaming=False)) for m in payload["data"]]
        return StoredBody(models, False)
    return StoredBody(store(payload, _type_of(route, payload, streaming=False)), False)


def _is_model_page(payload: Any) -> bool:
    # llama-stack stores a models list as the list of its Model items; do so only when
    # the page holds nothing else, so that re-wrapping it on replay loses nothing.
    return (
        isinstance(payload, dict)
        and set(payload) == {"object", "data"}
        and payload["object"] == "list"
        and isinstance(payload["data"], list)
        and all(isinstance(m, dict) and m.get("object") == "model" for m in payload["data"])
    )


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _wire_chunk(payload: Any) -> Any:
    """A chat chunk as OpenAI sends it: no explicit nulls inside tool-call deltas.

    Recorders that re-dump validated SDK objects (llama-stack) write ``"type": null``
    into continuation deltas; the SDK's ``.stream()`` helper then overwrites the
    accumulated ``type`` and fails. Real OpenAI omits those keys, so dropping them
    gives the client what the live API gave.
    """
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list):
        return payload
    changed = False
    new_choices = []
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        if isinstance(delta, dict) and isinstance(calls, list) and any(_has_null(c) for c in calls):
            choice = {**choice, "delta": {**delta, "tool_calls": [_without_nulls(c) for c in calls]}}
            changed = True
        new_choices.append(choice)
    return {**payload, "choices": new_choices} if changed else payload


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_null(v) for v in value.values())
    return False


def _event(item: Any, redumped: bool) -> SSEEvent:
    u = unwrap(item)
    framing: dict[str, Any] = {}
    if u.type_name == SSE_EVENT:
        framing = u.payload
        event = framing.get("event")
        if "data" not in framing:  # a block with no data line (``"data": null`` is JSON null)
            return SSEEvent(None, event, framing.get("id"), framing.get("retry"))
        u = unwrap(framing["data"])
    else:
        event = sdk_types.derived_event(u.type_name, u.payload)
    if u.type_name == RAW_TEXT:
        data = u.payload
    elif redumped and u.type_name is not None and u.type_name.endswith(".ChatCompletionChunk"):
        data = dumps_compact(_wire_chunk(u.payload))
    else:
        data = dumps_compact(u.payload)
    return SSEEvent(data, event, framing.get("id"), framing.get("retry"))


def _sse_bytes(items: list[Any], redumped: bool, sse_done: bool | None) -> bytes:
    """The SSE stream of stored items, terminated as its kind (or the recording) says.

    Replay runs this for every stream it plays, so a typed payload (nearly every item)
    is framed here directly; anything else goes through :func:`_event`.
    """
    payloads = _one_type_payloads(items)
    if payloads is not None:
        # The usual stream, chunks of one SDK class and no event names: framed in one join.
        chunk_type, data = payloads
        if redumped and chunk_type.endswith(".ChatCompletionChunk"):
            data = [_wire_chunk(p) for p in data]
        terminated = not _unterminated(chunk_type) if sse_done is None else sse_done
        done = b"data: [DONE]\n\n" if terminated else b""
        return b"data: " + b"\n\ndata: ".join([json_bytes(p) for p in data]) + b"\n\n" + done
    parts: list[bytes] = []
    named_events = False  # or Google's chunks: streams that end without [DONE]
    for item in items:
        type_name = item.get(TYPE_KEY) if type(item) is dict and len(item) == 2 else None
        if isinstance(type_name, str) and not type_name.startswith("vcr_ext.") and DATA_KEY in item:
            payload = item[DATA_KEY]
            named_events = named_events or _unterminated(type_name)
            if type_name.startswith(EVENT_NAMED_PREFIXES) and isinstance(payload, dict):
                kind = payload.get("type")
                if isinstance(kind, str):
                    named_events = named_events or not type_name.startswith(DONE_AFTER_NAMED_PREFIXES)
                    parts.append(b"event: " + kind.encode("utf-8") + b"\n")
            elif redumped and type_name.endswith(".ChatCompletionChunk"):
                payload = _wire_chunk(payload)
            # Compact JSON has no raw newline, so one data line carries it.
            parts.append(b"data: " + json_bytes(payload) + b"\n\n")
            continue
        parts.append(encode_sse([_event(item, redumped)]))
    # Streams of named events (Responses API, Anthropic) just end; chat and completion
    # streams, and Cohere v2's, send [DONE] (as :func:`_default_done` says).
    if sse_done if sse_done is not None else not named_events:
        parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def _one_type_payloads(items: list[Any]) -> tuple[str, list[Any]] | None:
    """(type, payloads) when every item is a typed envelope of one SDK class sent without an event name."""
    first = items[0] if items else None
    type_name = first.get(TYPE_KEY) if type(first) is dict else None
    if type(type_name) is not str or type_name.startswith(("vcr_ext.", *EVENT_NAMED_PREFIXES)):
        return None
    payloads = [
        item[DATA_KEY]
        for item in items
        if type(item) is dict and len(item) == 2 and item.get(TYPE_KEY) == type_name and DATA_KEY in item
    ]
    return (type_name, payloads) if len(payloads) == len(items) else None


def _raw_bytes(u: Unwrapped) -> bytes:
    if u.type_name == RAW_BASE64:
        return base64.b64decode(u.payload)
    return str(u.payload).encode("utf-8")


def to_wire(route: str, stored: StoredBody, *, redumped: bool = False) -> tuple[bytes, str]:
    """The body bytes and default content type a client receives for a stored body.

    ``redumped``: the payloads are SDK objects dumped again (llama-stack's recorder), not
    wire JSON; chat chunks then lose the explicit nulls in tool-call deltas that the
    wire never carries (see :func:`_wire_chunk`).
    """
    if stored.is_streaming:
        items = stored.body if isinstance(stored.body, list) else [stored.body]
        if is_ndjson_route(route):
            media = cohere.NDJSON_MEDIA_TYPE if route == cohere.V1_CHAT_ROUTE else NDJSON_CONTENT_TYPE
            return encode_ndjson([unwrap(i).payload for i in items]), media
        if bedrock.is_stream(items):
            return bedrock.encode(items), bedrock.CONTENT_TYPE
        return _sse_bytes(items, redumped, stored.sse_done), SSE_CONTENT_TYPE
    if isinstance(stored.body, list):
        page = {"object": "list", "data": [unwrap(i).payload for i in stored.body]}
        return json_bytes(page), JSON_CONTENT_TYPE
    u = unwrap(stored.body)
    if u.is_raw:
        return _raw_bytes(u), TEXT_CONTENT_TYPE if u.type_name == RAW_TEXT else BINARY_CONTENT_TYPE
    return json_bytes(u.payload), JSON_CONTENT_TYPE
