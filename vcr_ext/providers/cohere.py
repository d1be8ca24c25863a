"""Cohere (``api.cohere.com``): which cohere SDK class each payload is, and how its streams are framed.

Read off the installed ``cohere`` SDK (7.x); without it every function here answers
``None`` and Cohere traffic is stored with generic types, which replay the same bytes.

The wire, as the SDK parses it (``cohere/v2/raw_client.py``, ``cohere/raw_base_client.py``):

- ``POST /v2/chat`` with ``"stream": true``: server-sent events, each
  ``event: <type>`` then ``data: <JSON with that "type">``, ended by ``data: [DONE]``.
  The SDK reads the ``data`` only and builds the member of its ``V2ChatStreamResponse``
  union that the JSON ``type`` names (``message-start``, ``content-delta``,
  ``tool-call-delta``, ``message-end``, ...). The ``event:`` line is derived from the
  ``type`` on replay, as for Anthropic.
- ``POST /v1/chat`` with ``"stream": true``: newline-delimited JSON sent as
  ``application/stream+json``, one object a line, typed by the v1 ``StreamedChatResponse``
  union by its ``event_type`` (``stream-start``, ``text-generation``, ``stream-end``, ...).
- Non-stream bodies: ``/v2/chat`` -> ``V2ChatResponse``, ``/v1/chat`` ->
  ``NonStreamedChatResponse``, ``/v2/embed`` -> ``EmbedByTypeResponse``, ``/v1/embed`` ->
  the ``EmbedResponse`` member its ``response_type`` names, ``/v2/rerank`` ->
  ``V2RerankResponse`` (the ``type_=`` each SDK method passes to ``construct_type``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

V2_CHAT_ROUTE = "/v2/chat"
V1_CHAT_ROUTE = "/v1/chat"
NDJSON_MEDIA_TYPE = "application/stream+json"
"""The content type of a ``/v1/chat`` stream: NDJSON by another name."""

V2_EVENT_PREFIX = "cohere.v2.types.v2chat_stream_response."
"""Module of the v2 stream event classes: their payloads are framed ``event: <type>``, then ``[DONE]``."""

# ``/v1/rerank`` is left out: vLLM, Jina and others serve that route with their own bodies.
ROUTES = frozenset({V2_CHAT_ROUTE, V1_CHAT_ROUTE, "/v2/embed", "/v1/embed", "/v2/rerank"})

# The JSON key each non-stream body must hold (with that JSON kind) to be its route's class;
# an error body (``{"id", "message": "<text>"}``) holds none of them and stays plain JSON.
_SHAPE: dict[str, tuple[str, type | tuple[type, ...]]] = {
    V2_CHAT_ROUTE: ("message", dict),
    V1_CHAT_ROUTE: ("text", str),
    "/v2/embed": ("embeddings", dict),
    "/v1/embed": ("embeddings", (dict, list)),  # floats: a list; by type: an object
    "/v2/rerank": ("results", list),
}


@dataclass(frozen=True, slots=True)
class CohereNames:
    """Class names of the cohere SDK, by what selects them."""

    v2_events: dict[str, str]
    """v2 stream: JSON ``type`` -> class."""
    v1_events: dict[str, str]
    """v1 stream: JSON ``event_type`` -> class."""
    v1_embed: dict[str, str]
    """v1 embed: JSON ``response_type`` -> class."""
    bodies: dict[str, str]
    """Non-stream route -> class (``/v1/embed`` is in :attr:`v1_embed`)."""


@functools.cache
def names() -> CohereNames | None:
    """The cohere SDK's class names, read off its own unions; ``None`` when cohere is not installed."""
    try:
        from cohere import (
            EmbedByTypeResponse,
            EmbedResponse,
            NonStreamedChatResponse,
            StreamedChatResponse,
            V2ChatResponse,
            V2RerankResponse,
        )
        from cohere.v2.types.v2chat_stream_response import V2ChatStreamResponse
    except ImportError:
        return None
    from ..sdk_types import _classes_by_type, dotted_name

    return CohereNames(
        v2_events=_classes_by_type(V2ChatStreamResponse),
        v1_events=_classes_by_type(StreamedChatResponse, key="event_type"),
        v1_embed=_classes_by_type(EmbedResponse, key="response_type"),
        bodies={
            V2_CHAT_ROUTE: dotted_name(V2ChatResponse),
            V1_CHAT_ROUTE: dotted_name(NonStreamedChatResponse),
            "/v2/embed": dotted_name(EmbedByTypeResponse),
            "/v2/rerank": dotted_name(V2RerankResponse),
        },
    )


def classify(route: str, payload: dict[str, Any], *, streaming: bool) -> str | None:
    """The cohere class of a payload sent on a Cohere ``route`` (:data:`ROUTES`), or ``None``."""
    known = names()
    if known is None:
        return None
    if streaming:
        if route == V2_CHAT_ROUTE:
            return _lookup(known.v2_events, payload.get("type"))
        if route == V1_CHAT_ROUTE:
            return _lookup(known.v1_events, payload.get("event_type"))
        return None
    key, kind = _SHAPE[route]
    if not isinstance(payload.get(key), kind):
        return None
    if route == "/v1/embed":
        return _lookup(known.v1_embed, payload.get("response_type"))
    return known.bodies[route]


def _lookup(table: dict[str, str], key: Any) -> str | None:
    return table.get(key) if isinstance(key, str) else None
