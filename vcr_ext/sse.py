"""Stream codecs: server-sent-event and NDJSON bytes to events and back, framed as the wire frames them.

Decoding follows the WHATWG event-stream rules the openai SDK implements (lines end in
CR, LF or CRLF; ``:`` starts a comment; one space after the colon is optional; a blank
line dispatches the event). Decoding is strict on purpose: a body that would not
re-encode to the same events (a last event with no blank line after it, which the SDK
silently drops) is reported as ``None`` so the caller keeps it as raw text instead of
losing or inventing data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pydantic_core

DONE = "[DONE]"

# Only CR, LF and CRLF end an SSE line; str.splitlines() would also split on U+2028 and
# friends, which real JSON payloads carry unescaped.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched server-sent event."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


def json_bytes(value: Any) -> bytes:
    """JSON the way api.openai.com writes it: no spaces, UTF-8 text left unescaped.

    pydantic-core's encoder (pydantic is already a dependency of the SDK) writes the
    same JSON values as ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` about
    four times faster, and replay encodes every chunk of every stream it plays.
    """
    return pydantic_core.to_json(value)


def dumps_compact(value: Any) -> str:
    """:func:`json_bytes` as text."""
    return pydantic_core.to_json(value).decode("utf-8")


def decode_sse(body: str) -> list[SSEEvent] | None:
    """The events of an SSE body, or ``None`` if the body is not a clean event stream."""
    events: list[SSEEvent] = []
    data: list[str] = []
    event: str | None = None
    event_id: str | None = None
    retry: int | None = None
    pending = False
    lines = _LINE_END.split(body)
    if lines and lines[-1] == "":
        lines.pop()  # the text after the final line end, not a line
    for line in lines:
        if not line:
            if pending:
                events.append(SSEEvent("\n".join(data), event, event_id, retry))
            data, event, event_id, retry, pending = [], None, None, None, False
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        pending = True
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            event_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)
        else:
            # An unknown field is legal SSE but would not survive a re-encode.
            return None
    # An event still pending here had no blank line after it: the SDK never saw it.
    if pending:
        return None
    return events


def encode_sse(events: list[SSEEvent]) -> bytes:
    """SSE bytes for ``events``: ``event:`` before ``data:``, a blank line after each."""
    parts: list[str] = []
    for ev in events:
        if ev.event is not None:
            parts.append(f"event: {ev.event}\n")
        if ev.id is not None:
            parts.append(f"id: {ev.id}\n")
        if ev.retry is not None:
            parts.append(f"retry: {ev.retry}\n")
        for line in ev.data.split("\n"):
            parts.append(f"data: {line}\n")
        parts.append("\n")
    return "".join(parts).encode("utf-8")


def decode_ndjson(body: str) -> list[Any] | None:
    """The JSON values of an NDJSON body (one per line), or ``None`` if a line is not JSON."""
    values: list[Any] = []
    for line in _LINE_END.split(body):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except ValueError:
            return None
    if not body.endswith("\n") and body:
        # Ollama ends every line, the last one included; anything else is not what we re-encode.
        return None
    return values


def encode_ndjson(values: list[Any]) -> bytes:
    """NDJSON bytes: one compact JSON value a line, each line ended."""
    return b"".join(json_bytes(v) + b"\n" for v in values)
