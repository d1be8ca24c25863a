"""Response bodies: wire bytes -> the format's ``response.body`` and back, exactly as the wire framed them.

Recording turns a body into per-event typed values (SSE, NDJSON) or one typed value
(JSON); replay re-encodes those values to the bytes a client expects. Anything that
would not survive that round trip (a torn event stream, text that is not JSON, bytes
that are not UTF-8) is kept whole as a raw envelope, so nothing the server said is lost.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from . import sdk_types
from .sdk_types import DATA_KEY, RAW_BASE64, RAW_TEXT, SSE_EVENT, TYPE_KEY, Unwrapped, envelope, store, unwrap
from .sse import (
    DONE,
    SSEEvent,
    decode_ndjson,
    decode_sse,
    dumps_compact,
    encode_ndjson,
    encode_sse,
    json_bytes,
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
    """Ollama's native API streams NDJSON; everything else we know streams SSE."""
    return route.startswith("/api/")


def _default_done(items: list[Any]) -> bool:
    # Responses API streams just end; chat and completion streams send [DONE].
    return not any(sdk_types.is_responses_event(u.type_name, u.payload) for u in map(unwrap, items))


def _raw(text_or_bytes: str | bytes) -> StoredBody:
    if isinstance(text_or_bytes, str):
        return StoredBody(envelope(RAW_TEXT, text_or_bytes), False)
    return StoredBody(envelope(RAW_BASE64, base64.b64encode(text_or_bytes).decode("ascii")), False)


def _sse_item(route: str, ev: SSEEvent) -> Any:
    try:
        payload = json.loads(ev.data)
    except ValueError:
        value: Any = envelope(RAW_TEXT, ev.data)
        derived_event = None
    else:
        type_name = sdk_types.classify(route, payload, streaming=True)
        value = store(payload, type_name)
        derived_event = payload["type"] if sdk_types.is_responses_event(type_name, payload) else None
    if ev.event == derived_event and ev.id is None and ev.retry is None:
        return value
    framing = {"event": ev.event, "id": ev.id, "retry": ev.retry}
    return envelope(SSE_EVENT, {**{k: v for k, v in framing.items() if v is not None}, "data": value})


def to_stored(route: str, content_type: str | None, raw: bytes) -> StoredBody:
    """The record form of a response body sent on ``route`` with ``content_type``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _raw(raw)
    media = _media_type(content_type)
    if media == "text/event-stream":
        events = decode_sse(text)
        if events is None:
            return _raw(text)
        done = bool(events) and events[-1].data == DONE
        body_events = events[:-1] if done else events
        if any(ev.data == DONE for ev in body_events):
            return _raw(text)  # events after [DONE] are invisible to the SDK; keep them verbatim
        items = [_sse_item(route, ev) for ev in body_events]
        return StoredBody(items, True, None if done == _default_done(items) else done)
    if media == "application/x-ndjson" or (is_ndjson_route(route) and text.count("\n") > 1):
        values = decode_ndjson(text)
        if values is None:
            return _raw(text)
        return StoredBody([store(v, sdk_types.classify(route, v, streaming=True)) for v in values], True)
    if not text.strip():
        return _raw(text)
    try:
        payload = json.loads(text)
    except ValueError:
        return _raw(text)
    if route == "/v1/models" and _is_model_page(payload):
        model = sdk_types.classify("/v1/models", {"object": "model"}, streaming=False)
        return StoredBody([store(m, model) for m in payload["data"]], False)
    return StoredBody(store(payload, sdk_types.classify(route, payload, streaming=False)), False)


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
        u = unwrap(framing.get("data"))
        event = framing.get("event")
    else:
        event = u.payload["type"] if sdk_types.is_responses_event(u.type_name, u.payload) else None
    if u.type_name == RAW_TEXT:
        data = u.payload
    elif redumped and u.type_name is not None and u.type_name.endswith(".ChatCompletionChunk"):
        data = dumps_compact(_wire_chunk(u.payload))
    else:
        data = dumps_compact(u.payload)
    return SSEEvent(data, event, framing.get("id"), framing.get("retry"))


_RESPONSES_PREFIX = "openai.types.responses."


def _sse_bytes(items: list[Any], redumped: bool, sse_done: bool | None) -> bytes:
    """The SSE stream of stored items, terminated as its kind (or the recording) says.

    Replay runs this for every stream it plays, so a typed payload (nearly every item)
    is framed here directly; anything else goes through :func:`_event`.
    """
    parts: list[bytes] = []
    responses_events = False
    for item in items:
        type_name = item.get(TYPE_KEY) if type(item) is dict and len(item) == 2 else None
        if isinstance(type_name, str) and not type_name.startswith("vcr_ext.") and DATA_KEY in item:
            payload = item[DATA_KEY]
            if type_name.startswith(_RESPONSES_PREFIX) and isinstance(payload, dict):
                kind = payload.get("type")
                if isinstance(kind, str):
                    responses_events = True
                    parts.append(b"event: " + kind.encode("utf-8") + b"\n")
            elif redumped and type_name.endswith(".ChatCompletionChunk"):
                payload = _wire_chunk(payload)
            # Compact JSON has no raw newline, so one data line carries it.
            parts.append(b"data: " + json_bytes(payload) + b"\n\n")
            continue
        parts.append(encode_sse([_event(item, redumped)]))
    # Responses API streams just end; chat and completion streams send [DONE].
    if sse_done if sse_done is not None else not responses_events:
        parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


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
            return encode_ndjson([unwrap(i).payload for i in items]), NDJSON_CONTENT_TYPE
        return _sse_bytes(items, redumped, stored.sse_done), SSE_CONTENT_TYPE
    if isinstance(stored.body, list):
        page = {"object": "list", "data": [unwrap(i).payload for i in stored.body]}
        return json_bytes(page), JSON_CONTENT_TYPE
    u = unwrap(stored.body)
    if u.is_raw:
        return _raw_bytes(u), TEXT_CONTENT_TYPE if u.type_name == RAW_TEXT else BINARY_CONTENT_TYPE
    return json_bytes(u.payload), JSON_CONTENT_TYPE
