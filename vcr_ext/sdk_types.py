"""``__type__`` <-> SDK class: which SDK class a payload is, and the typed envelope around it.

A stored value is one of:

- ``{"__type__": "<module.Class>", "__data__": <JSON>}``: the payload of an SDK pydantic
  class (openai, ollama, anthropic). ``__data__`` is the JSON exactly as the server sent it, so a
  replay re-encodes what the wire carried, and ``Class.model_validate(__data__)`` still
  rebuilds the object for readers such as llama-stack;
- a plain JSON value: JSON that no SDK class fits (error bodies, unknown providers);
- ``{"__type__": "vcr_ext.raw.Text", "__data__": "<text>"}``: a body that is not JSON;
- ``{"__type__": "vcr_ext.raw.Base64", "__data__": "<base64>"}``: bytes that are not UTF-8;
- ``{"__type__": "vcr_ext.raw.JSON", "__data__": <JSON>}``: plain JSON that itself looks
  like an envelope, escaped so it cannot be misread;
- ``{"__type__": "vcr_ext.sse.Event", "__data__": {"event", "id", "retry", "data"}}``: an
  SSE event whose framing (event name, id, retry) cannot be derived from its payload.

Replay needs no SDK: a type name is only resolved when recording and, at load, by
:mod:`vcr_ext.typed_check` for the SDKs that are installed (skipped for the others).
"""

from __future__ import annotations

import functools
import importlib
import typing
from dataclasses import dataclass
from typing import Any

from .providers import cohere, google

TYPE_KEY = "__type__"
DATA_KEY = "__data__"
RAW_TEXT = "vcr_ext.raw.Text"
RAW_BASE64 = "vcr_ext.raw.Base64"
RAW_JSON = "vcr_ext.raw.JSON"
SSE_EVENT = "vcr_ext.sse.Event"
RAW_TYPES = frozenset({RAW_TEXT, RAW_BASE64})

# The ollama client is optional; its class paths are stable and written without importing it.
_OLLAMA = {
    "/api/generate": "ollama._types.GenerateResponse",
    "/api/chat": "ollama._types.ChatResponse",
    "/api/embed": "ollama._types.EmbedResponse",
    "/api/embeddings": "ollama._types.EmbeddingsResponse",
    "/api/ps": "ollama._types.ProcessResponse",
    "/api/tags": "ollama._types.ListResponse",
    "/api/show": "ollama._types.ShowResponse",
}


# Anthropic Messages: the routes, and the prefix of the classes whose stream events the
# wire frames with ``event: <type>`` (every event Anthropic sends is so framed).
ANTHROPIC_MESSAGES_ROUTE = "/v1/messages"
ANTHROPIC_COUNT_TOKENS_ROUTE = "/v1/messages/count_tokens"
_ANTHROPIC_PREFIX = "anthropic.types."
_RESPONSES_PREFIX = "openai.types.responses."
EVENT_NAMED_PREFIXES = (_RESPONSES_PREFIX, _ANTHROPIC_PREFIX, cohere.V2_EVENT_PREFIX)
"""Type-name prefixes of payloads a stream frames with ``event: <payload type>``."""
DONE_AFTER_NAMED_PREFIXES = (cohere.V2_EVENT_PREFIX,)
"""Of those, the ones whose stream still ends with ``data: [DONE]`` (Cohere v2; the others just end)."""
UNTERMINATED_PREFIXES = (google.STREAM_TYPE_PREFIX,)
"""Type-name prefixes of stream payloads whose streams end without ``data: [DONE]`` (and name no event)."""


def envelope(type_name: str, data: Any) -> dict[str, Any]:
    """The typed envelope, keys in the format's order."""
    return {TYPE_KEY: type_name, DATA_KEY: data}


def is_envelope(value: Any) -> bool:
    """Whether ``value`` is a ``{"__type__", "__data__"}`` envelope."""
    return isinstance(value, dict) and TYPE_KEY in value and DATA_KEY in value and len(value) == 2


def store(payload: Any, type_name: str | None) -> Any:
    """The stored form of a JSON payload: typed, plain, or escaped plain."""
    if type_name is not None:
        return envelope(type_name, payload)
    if isinstance(payload, dict) and TYPE_KEY in payload:
        return envelope(RAW_JSON, payload)
    return payload


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """A stored value taken apart: its type name (``None`` for plain JSON) and payload."""

    type_name: str | None
    payload: Any

    @property
    def is_raw(self) -> bool:
        return self.type_name in RAW_TYPES


def unwrap(value: Any) -> Unwrapped:
    """Take a stored value apart (the inverse of :func:`store` and the raw envelopes)."""
    if isinstance(value, dict) and TYPE_KEY in value and DATA_KEY in value:
        type_name = value[TYPE_KEY]
        if type_name == RAW_JSON:
            return Unwrapped(None, value[DATA_KEY])
        return Unwrapped(type_name if isinstance(type_name, str) else None, value[DATA_KEY])
    return Unwrapped(None, value)


def dotted_name(cls: type) -> str:
    """``module.Class``, the name llama-stack writes and ``model_validate`` readers import."""
    return f"{cls.__module__}.{cls.__qualname__}"


def sdk_class(type_name: str) -> Any:
    """The class a ``__type__`` names (``openai.types.chat.chat_completion.ChatCompletion``), nested too."""
    module_name, _, attr = type_name.rpartition(".")
    parts = [attr]
    while module_name:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module_name, _, outer = module_name.rpartition(".")
            parts.insert(0, outer)
            continue
        target: Any = module
        for part in parts:
            target = getattr(target, part)
        return target
    raise ImportError(f"cannot import {type_name}")


def build(type_name: str, payload: Any) -> Any:
    """The object a client builds from this payload on the wire.

    openai objects without validation (``construct_type``), as the SDK builds response
    bodies (real providers send objects ``model_validate`` rejects); ollama objects with
    ``Cls(**data)``, as the ollama client does.
    """
    cls = sdk_class(type_name)
    if type_name.startswith("openai."):
        from openai._models import construct_type

        return construct_type(type_=cls, value=payload)
    return cls(**payload)


@functools.cache
def _openai_names() -> dict[str, str]:
    from openai.types import Completion, CreateEmbeddingResponse, Model
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.responses import Response

    return {
        "chunk": dotted_name(ChatCompletionChunk),
        "chat": dotted_name(ChatCompletion),
        "completion": dotted_name(Completion),
        "embeddings": dotted_name(CreateEmbeddingResponse),
        "model": dotted_name(Model),
        "response": dotted_name(Response),
    }


@functools.cache
def responses_event_types() -> dict[str, str]:
    """Responses API stream event ``type`` -> class name, read off the SDK's own union."""
    from openai.types.responses.response_stream_event import ResponseStreamEvent

    return _classes_by_type(ResponseStreamEvent)


def _classes_by_type(union: Any, key: str = "type") -> dict[str, str]:
    """``key`` literal -> class name of each model of an SDK's (possibly Annotated) union of events."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    names: dict[str, str] = {}
    for cls in typing.get_args(union):
        field = cls.model_fields.get(key)
        if field is None:
            continue
        for literal in typing.get_args(field.annotation):
            names[literal] = dotted_name(cls)
    return names


@functools.cache
def anthropic_names() -> dict[str, str] | None:
    """Anthropic Messages ``type`` -> class name (stream events, ``message``, ``error``), read off the SDK.

    ``None`` when the anthropic SDK is not installed: its traffic is then stored with
    generic types (and replays the same events all the same). The stream event classes come
    from the SDK's own ``RawMessageStreamEvent`` union; ``ping`` has no class there and
    stays untyped.
    """
    try:
        from anthropic.types import ErrorResponse, Message, MessageTokensCount, RawMessageStreamEvent
    except ImportError:
        return None
    names = _classes_by_type(RawMessageStreamEvent)
    names["error"] = dotted_name(ErrorResponse)
    names["message"] = dotted_name(Message)
    names["count_tokens"] = dotted_name(MessageTokensCount)
    return names


def _classify_anthropic(route: str, payload: dict[str, Any], *, streaming: bool) -> str | None:
    names = anthropic_names()
    if names is None:
        return None
    if route == ANTHROPIC_COUNT_TOKENS_ROUTE:
        ok = not streaming and set(payload) == {"input_tokens"}
        return names["count_tokens"] if ok else None
    kind = payload.get("type")
    if not isinstance(kind, str):
        return None
    if streaming:
        # Stream events, the error event included, are typed by their "type".
        return names.get(kind) if kind not in ("message", "count_tokens") else None
    return names["message"] if kind == "message" else None  # an error body stays plain JSON


def _is_error(payload: Any) -> bool:
    return isinstance(payload, dict) and bool(payload.get("error")) and "choices" not in payload


def classify(route: str, payload: Any, *, streaming: bool) -> str | None:
    """The SDK class name that fits ``payload`` sent on ``route``, or ``None`` if none does.

    The route decides the candidate class and the payload's shape confirms it. Classes
    are not validated: real providers send objects the SDK accepts from the wire but
    ``model_validate`` rejects (``finish_reason: null``, ``object: ""``).
    """
    if not isinstance(payload, dict):
        return None
    if route.startswith("/v1/responses") and streaming:
        # Stream events, the error event included, are typed by their "type".
        event_type = payload.get("type")
        return responses_event_types().get(event_type) if isinstance(event_type, str) else None
    if route in (ANTHROPIC_MESSAGES_ROUTE, ANTHROPIC_COUNT_TOKENS_ROUTE):
        return _classify_anthropic(route, payload, streaming=streaming)
    if route in cohere.ROUTES:
        return cohere.classify(route, payload, streaming=streaming)
    if route.startswith("/model/"):  # Amazon Bedrock (imported here: it imports this module)
        from .providers import bedrock

        return bedrock.classify(route, payload, streaming=streaming)
    google_type = google.classify(route, payload)
    if google_type is not None or google.is_google_route(route):
        return google_type
    if _is_error(payload):
        return None
    if route.startswith("/api/"):
        return _OLLAMA.get(route)
    names = _openai_names()
    if route in ("/v1/chat/completions", "/v1/completions") and "choices" in payload:
        if route == "/v1/completions":
            return names["completion"]
        return names["chunk"] if streaming else names["chat"]
    if route.startswith("/v1/chat/completions/") and payload.get("object") == "chat.completion":
        return names["chat"]  # a stored completion fetched (or updated) by id
    if route == "/v1/embeddings" and isinstance(payload.get("data"), list):
        return names["embeddings"]
    if route.startswith("/v1/models") and payload.get("object") == "model":
        return names["model"]
    if route.startswith("/v1/responses") and payload.get("object") == "response":
        return names["response"]
    return None


def is_responses_event(type_name: str | None, payload: Any) -> bool:
    """Whether the wire frames this payload with ``event: <type>`` (the Responses API does)."""
    return (
        type_name is not None
        and type_name.startswith(_RESPONSES_PREFIX)
        and isinstance(payload, dict)
        and isinstance(payload.get("type"), str)
    )


def derived_event(type_name: str | None, payload: Any) -> str | None:
    """The ``event:`` name the wire frames this stream payload with, derived from its ``type``.

    OpenAI Responses API events, Anthropic Messages events and Cohere v2 chat events are
    sent as ``event: <type>`` before their ``data:`` line; other streams name no event. Read off
    the type name only, so replay needs no SDK.
    """
    if type_name is None or not type_name.startswith(EVENT_NAMED_PREFIXES) or not isinstance(payload, dict):
        return None
    kind = payload.get("type")
    return kind if isinstance(kind, str) else None
