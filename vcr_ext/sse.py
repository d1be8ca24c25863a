"""Stream codecs: server-sent-event and NDJSON bytes to events and back, framed as the wire frames them.

Two readers of an event stream live here:

- :func:`parse_whatwg`, a reference implementation of the WHATWG HTML "event stream
  interpretation" rules: what a conforming client (a browser's ``EventSource``) sees in
  a body. Recording uses it to *prove* that what a replay sends means the same as what
  the server sent, instead of trusting the codec below;
- :func:`decode_sse` / :func:`encode_sse`, the codec that turns a body into the per-event
  values a record stores and back. Decoding is strict on purpose: a body it cannot
  represent faithfully (a last event with no blank line after it, a ``retry:`` the
  openai SDK reads but the standard ignores, a leading byte order mark) is reported as
  ``None`` so the caller keeps it as raw text instead of losing or inventing data.

The openai SDK's own decoder deviates from the standard in ways a replay must keep too
(it dispatches an event with empty data for a block that sets only ``event``, ``id`` or
``retry``, and at every blank line once a non-empty id was sent; it accepts any
``int()`` text as ``retry``; it keeps a BOM as part of the first field name).
:func:`openai_sdk_events` runs it, so recording can check that view as well.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pydantic_core

DONE = "[DONE]"

# Only CR, LF and CRLF end an SSE line; str.splitlines() would also split on U+2028 and
# friends, which real JSON payloads carry unescaped.
_LINE_END = re.compile(r"\r\n|\r|\n")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_BOM = "\ufeff"
# int(str) refuses more digits than sys.get_int_max_str_digits() (4300 by default).
_DIGIT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One block of an event stream (the lines up to a blank line), as the codec stores it.

    ``data`` is the data buffer (data lines joined by LF), or ``None`` when the block has
    no ``data:`` line at all: a standard client then dispatches nothing (only the
    block's ``id:``/``retry:`` take effect), which an empty ``data:`` line would change.
    """

    data: str | None
    event: str | None = None
    id: str | None = None
    retry: int | None = None


# ---------------------------------------------------------------- the WHATWG reference parser


@dataclass(frozen=True, slots=True)
class WhatwgEvent:
    """A dispatched ``MessageEvent``: its ``type``, ``data`` and ``lastEventId`` attributes."""

    type: str
    data: str
    last_event_id: str


@dataclass(frozen=True, slots=True)
class WhatwgRetry:
    """A ``retry:`` field that set the event source's reconnection time (milliseconds)."""

    milliseconds: int


@dataclass(frozen=True, slots=True)
class WhatwgLastEventId:
    """The event source's last event ID string changed at a blank line that dispatched no event.

    (When an event is dispatched, the new id is its ``last_event_id``.) A client sends
    this value as ``Last-Event-ID`` when it reconnects, so it is observable.
    """

    value: str


WhatwgItem = WhatwgEvent | WhatwgRetry | WhatwgLastEventId


def _decimal(digits: str) -> int:
    """``int(digits)`` for any number of ASCII digits (the spec sets no bound; ``int()`` does)."""
    if len(digits) <= _DIGIT_CHUNK:
        return int(digits)
    value = 0
    for start in range(0, len(digits), _DIGIT_CHUNK):
        piece = digits[start : start + _DIGIT_CHUNK]
        value = value * 10 ** len(piece) + int(piece)
    return value


def parse_whatwg(data: bytes) -> list[WhatwgItem]:
    """What a conforming client observes in an event-stream body, in order.

    Implements HTML Living Standard section 9.2.6 "Interpreting an event stream" (and the
    UTF-8 decode it starts with) to the letter, for the "web browser" dispatch steps:

    - the bytes are UTF-8 decoded: one leading BOM is dropped, invalid sequences become
      U+FFFD (Python's ``errors="replace"`` replaces maximal subparts, as the Encoding
      standard does);
    - lines end with CRLF, LF or CR; text after the last line end is an unfinished line
      and is discarded with whatever event is pending ("the incomplete event is not
      dispatched");
    - a line starting with ``:`` is a comment; otherwise the field name is the text up to
      the first ``:`` (the whole line if there is none) and the value the rest, less one
      leading space; names are case-sensitive;
    - ``event`` sets the type buffer; ``data`` appends the value and a LF to the data
      buffer; ``id`` sets the last event ID buffer unless the value contains U+0000;
      ``retry`` sets the reconnection time if the value is one or more ASCII digits;
      any other field is ignored;
    - a blank line sets the last event ID string from its buffer (never reset), then,
      if the data buffer is empty, clears the buffers and dispatches nothing; else it
      dispatches an event of type ``message`` (or the type buffer, if not empty) with
      the data less its final LF.

    An empty ``retry`` value is ignored, as WHATWG's web-platform-tests
    (``eventsource/format-field-retry-empty``) and browsers have it.
    """
    text = data.decode("utf-8", errors="replace")
    if text.startswith(_BOM):
        text = text[1:]
    lines = _LINE_END.split(text)
    lines.pop()  # the text after the final line end: not a line (yet), so discarded
    items: list[WhatwgItem] = []
    data_buffer: list[str] = []
    type_buffer = ""
    id_buffer = ""
    last_event_id = ""
    for line in lines:
        if not line:
            changed = id_buffer != last_event_id
            last_event_id = id_buffer
            if data_buffer:
                items.append(WhatwgEvent(type_buffer or "message", "\n".join(data_buffer), last_event_id))
            elif changed:
                items.append(WhatwgLastEventId(last_event_id))
            data_buffer, type_buffer = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            type_buffer = value
        elif field == "data":
            data_buffer.append(value)
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and _ASCII_DIGITS.fullmatch(value):
            items.append(WhatwgRetry(_decimal(value)))
    return items


# ---------------------------------------------------------------- comparing what two streams mean


def same_json(a: Any, b: Any) -> bool:
    """Whether two parsed JSON values are the same value to a reader, types included.

    Stricter than ``==``: ``1``, ``1.0`` and ``True`` differ, ``0.0`` and ``-0.0`` differ,
    object key order counts (a client iterates it), and a non-finite float is never
    the same as anything (``NaN``/``Infinity`` are not JSON; keep the server's text).
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    if isinstance(a, float):
        return math.isfinite(a) and a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def same_data(live: str, replayed: str) -> bool:
    """Whether a replayed event's data means what the live event's data meant.

    The same text, or two JSON texts of the same value (:func:`same_json`) as Python's
    ``json`` reads them, which is how the openai SDK reads every event's data. That is
    the fidelity a typed record gives: it stores the value, and replays it as compact
    JSON, the way api.openai.com writes it (so byte for byte, for OpenAI's own streams).
    """
    if live == replayed:
        return True
    try:
        return same_json(json.loads(live), json.loads(replayed))
    except ValueError:
        return False


def same_whatwg(live: list[WhatwgItem], replayed: list[WhatwgItem]) -> bool:
    """Whether two :func:`parse_whatwg` results are the same observations, data by :func:`same_data`."""
    if len(live) != len(replayed):
        return False
    for a, b in zip(live, replayed, strict=True):
        if isinstance(a, WhatwgEvent) and isinstance(b, WhatwgEvent):
            if (a.type, a.last_event_id) != (b.type, b.last_event_id) or not same_data(a.data, b.data):
                return False
        elif a != b:
            return False
    return True


SDKEvent = tuple[str | None, str, str | None, int | None]
"""``(event, data, id, retry)`` of one ``openai._streaming.ServerSentEvent``."""


def openai_sdk_events(data: bytes) -> list[SDKEvent] | None:
    """The events the installed openai SDK's stream decoder yields for ``data``; ``None`` without one.

    Used when recording only (the replay path never imports an SDK). The decoder is the
    SDK's private ``SSEDecoder``, imported lazily and optional on purpose: the check it
    feeds falls back to the WHATWG reference alone if a future SDK moves it.
    """
    try:
        from openai._streaming import SSEDecoder
    except ImportError:
        return None
    return [(e.event, e.data, e.id, e.retry) for e in SSEDecoder().iter_bytes(iter([data]))]


def same_sdk_events(live: list[SDKEvent], replayed: list[SDKEvent]) -> bool:
    """Whether two :func:`openai_sdk_events` results are the same events, data by :func:`same_data`."""
    return len(live) == len(replayed) and all(
        (a[0], a[2], a[3]) == (b[0], b[2], b[3]) and same_data(a[1], b[1])
        for a, b in zip(live, replayed, strict=True)
    )


# ---------------------------------------------------------------- the codec


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


def _retry_value(value: str) -> tuple[bool, int | None]:
    """``(representable, milliseconds)`` of a ``retry:`` value (``None`` ms: every reader ignores it).

    A value of ASCII digits sets the reconnection time for the standard and for the
    openai SDK alike and is stored as its integer (leading zeros mean nothing to
    either). Any other value is ignored by the standard, but the SDK keeps whatever
    ``int()`` accepts (``+5``, `` 5``, non-ASCII digits): dropping such a line would
    change what the SDK yields and re-writing it would change what the standard sees,
    so it is not representable.
    """
    try:
        number = int(value)
    except ValueError:
        # Not a number to anyone, or ASCII digits past int()'s length limit (which the
        # SDK ignores and the standard does not): only the latter is a problem.
        return (not _ASCII_DIGITS.fullmatch(value), None)
    return (_ASCII_DIGITS.fullmatch(value) is not None, number)


def decode_sse(body: str) -> list[SSEEvent] | None:
    """The blocks of an SSE body that a reader acts on, or ``None`` if they cannot be stored faithfully.

    Each blank-line-terminated block that sets something (data, event, id or retry)
    becomes one :class:`SSEEvent`; comments, unknown fields and ``id`` values holding
    U+0000 are dropped, as every reader ignores them. A block that sets nothing is
    dropped too, except once a non-empty id has been sent: the openai SDK then
    dispatches an empty event at every blank line, so it is kept as ``SSEEvent(None)``.
    """
    if body.startswith(_BOM):
        # The standard drops a leading BOM; the openai SDK reads it as part of the first
        # field name. No re-encoding without it says the same to both.
        return None
    events: list[SSEEvent] = []
    data: list[str] = []
    event: str | None = None
    event_id: str | None = None
    retry: int | None = None
    pending = False  # a field line was read since the last blank line
    last_id = ""  # the id readers keep across events
    lines = _LINE_END.split(body)
    if lines[-1] == "":
        lines.pop()  # the text after the final line end, not a line
    for line in lines:
        if not line:
            if data or event is not None or event_id is not None or retry is not None:
                events.append(SSEEvent("\n".join(data) if data else None, event, event_id, retry))
            elif last_id:
                events.append(SSEEvent(None))
            data, event, event_id, retry, pending = [], None, None, None, False
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        pending = True
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            if "\0" not in value:
                event_id = last_id = value
        elif field == "retry":
            representable, number = _retry_value(value)
            if not representable or (number is not None and retry is not None):
                # Two reconnection times set in one block: one retry line cannot say so.
                return None
            retry = number if number is not None else retry
    # A block still pending here had no blank line after it: no reader dispatched it,
    # but what the server said is kept, as raw text.
    if pending:
        return None
    return events


def encode_sse(events: list[SSEEvent]) -> bytes:
    """SSE bytes for ``events``: ``event:``, ``id:``, ``retry:``, then ``data:`` lines and a blank line."""
    parts: list[str] = []
    for ev in events:
        if ev.event is not None:
            parts.append(f"event: {ev.event}\n")
        if ev.id is not None:
            parts.append(f"id: {ev.id}\n")
        if ev.retry is not None:
            parts.append(f"retry: {ev.retry}\n")
        if ev.data is not None:
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
