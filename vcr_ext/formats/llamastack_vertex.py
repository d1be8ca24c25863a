"""llama-stack's Vertex AI SDK-call records, read as the HTTP exchange google-genai has with Vertex AI.

Its later recorder records google-genai calls, not HTTP: ``url`` is
``vertexai:///<method>`` (``generate_content``, ``generate_content_stream``), ``body`` the
keyword arguments of ``client.models.<method>(...)``, and ``response.body`` the
``GenerateContentResponse`` objects the call returned, dumped as plain dicts (pydantic
``model_dump(mode="json")``: snake_case field names, as the SDK's own ``to_json_dict``
writes them; a ``{"__type__", "__data__"}`` envelope around one is read too).

Nothing of the conversion is written here, the SDK's own code does it both ways:

- the request is what google-genai sends for those arguments: its converter
  ``models._GenerateContentParameters_to_vertex`` builds the JSON body and the model path,
  its ``BaseApiClient._build_request`` the URL
  (``https://<location>-aiplatform.googleapis.com/v1beta1/projects/<p>/locations/<l>/publishers/google/models/<model>:streamGenerateContent?alt=sse``);
- the response is each dumped object validated back into ``GenerateContentResponse``
  and dumped by alias (camelCase), which is the Vertex wire JSON: the SDK's
  ``_GenerateContentResponse_from_vertex`` only renames the top-level wire keys to the
  field names, and pydantic reads the nested camelCase by the same aliases. Fields the
  SDK fills in itself (``sdk_http_response`` from the headers, the automatic function
  calling history, ``parsed``) are not on the wire and are left out.

The record carries no project or location (the url has no host); ``provider_metadata``'s
``project`` and ``location`` are used when present, placeholders otherwise. Matching
does not look at them: a request is matched by its route, which starts at ``models/``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import canonical, codec, sdk_types

SCHEME = "vertexai"
# The google-genai methods the recorder names, and the Vertex REST method each calls.
METHODS: dict[str, tuple[str, bool]] = {
    "generate_content": ("{model}:generateContent", False),
    "generate_content_stream": ("{model}:streamGenerateContent?alt=sse", True),
}
DEFAULT_PROJECT = "vertexai-project"
DEFAULT_LOCATION = "us-central1"
# Filled in by the SDK on the client side, never sent by Vertex AI.
CLIENT_SIDE_FIELDS = frozenset({"sdk_http_response", "automatic_function_calling_history", "parsed"})
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
SSE_CONTENT_TYPE = "text/event-stream"


class VertexRecordError(ValueError):
    """A Vertex AI SDK-call record that cannot be read as HTTP: ``field`` is where, ``problem`` why."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"field '{field}': {problem}")


@dataclass(frozen=True)
class WireExchange:
    """The HTTP exchange behind one SDK call: the request sent, the response body and its type."""

    url: str
    body: dict[str, Any]
    response: bytes
    content_type: str
    streaming: bool


def is_vertex_call(request: Any) -> bool:
    """Whether a record's request is a google-genai SDK call (``url: vertexai:///<method>``)."""
    url = request.get("url") if isinstance(request, Mapping) else None
    return isinstance(url, str) and urlsplit(url).scheme == SCHEME


def sdk_method(request: Mapping[str, Any]) -> str:
    """The google-genai method a Vertex record names (``generate_content_stream``)."""
    return urlsplit(str(request.get("url"))).path.strip("/")


@functools.cache
def _api_client(project: str, location: str) -> Any:
    """google-genai's own Vertex API client, used only to build requests (it never sends one)."""
    from google.auth import credentials
    from google.genai._api_client import BaseApiClient

    # Never asked for a token: building a request does not authenticate it. (Held as Any:
    # google-auth's constructor is untyped, and mypy may run without google-auth.)
    anonymous: Any = credentials.AnonymousCredentials
    return BaseApiClient(vertexai=True, project=project, location=location, credentials=anonymous())


def _metadata(request: Mapping[str, Any], key: str, default: str) -> str:
    meta = request.get("provider_metadata")
    value = meta.get(key) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) and value else default


def _first_error(err: Exception) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{first.get('msg')} (at {where})" if where else str(first.get("msg"))
    return str(err)


def wire_request(request: Mapping[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """``(url, JSON body, streaming)`` of the HTTP request google-genai sends for a recorded call."""
    method = sdk_method(request)
    if method not in METHODS:
        known = ", ".join(f"{SCHEME}:///{m}" for m in METHODS)
        raise VertexRecordError("request.url", f"unknown Vertex AI SDK method {method!r}: expected {known}")
    try:
        from google.genai import _common, models, types
    except ImportError as err:
        raise VertexRecordError(
            "request.url",
            "a Vertex AI SDK-call record is read with google-genai's own converters, "
            f"and google-genai is not installed ({err})",
        ) from None
    kwargs = request.get("body")
    if not isinstance(kwargs, dict) or not isinstance(kwargs.get("model"), str):
        raise VertexRecordError("request.body", f"expected the keyword arguments of {method}(model=..., ...)")
    try:
        params = types._GenerateContentParameters.model_validate(kwargs)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise VertexRecordError("request.body", f"not arguments of {method}: {_first_error(err)}") from None
    client = _api_client(
        _metadata(request, "project", DEFAULT_PROJECT), _metadata(request, "location", DEFAULT_LOCATION)
    )
    # As the SDK's Models._generate_content(_stream) does, step by step.
    converted = models._GenerateContentParameters_to_vertex(client, params, None, params)
    path_template, streaming = METHODS[method]
    path = path_template.format_map(converted.get("_url") or {})
    converted.pop("config", None)
    body = _common.encode_unserializable_types(_common.convert_to_dict(converted))
    built = client._build_request("post", path, body, None)
    return str(built.url), dict(built.data), streaming


def wire_json(item: Any, field: str) -> dict[str, Any]:
    """The Vertex wire JSON of one recorded ``GenerateContentResponse`` dump."""
    from google.genai import types

    payload = sdk_types.unwrap(item).payload
    if not isinstance(payload, dict):
        raise VertexRecordError(field, "expected a GenerateContentResponse object")
    try:
        obj = types.GenerateContentResponse.model_validate(payload)
    except ValueError as err:
        raise VertexRecordError(field, f"not a GenerateContentResponse: {_first_error(err)}") from None
    wire: dict[str, Any] = obj.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude=set(CLIENT_SIDE_FIELDS)
    )
    return wire


def wire_exchange(request: Mapping[str, Any], response: Mapping[str, Any]) -> WireExchange:
    """The HTTP exchange a Vertex AI SDK-call record stands for; a :class:`VertexRecordError` if none."""
    url, body, streaming = wire_request(request)
    recorded = response.get("body")
    if streaming:
        if not isinstance(recorded, list):
            raise VertexRecordError("response.body", "a stream record holds a list of objects")
        # Vertex AI frames each chunk as one data line; the stream just ends (no [DONE]).
        chunks = [wire_json(item, f"response.body[{i}]") for i, item in enumerate(recorded)]
        text = "".join(f"data: {json.dumps(c, separators=(',', ':'))}\n\n" for c in chunks)
        return WireExchange(url, body, text.encode("utf-8"), SSE_CONTENT_TYPE, True)
    payload = wire_json(recorded, "response.body")
    return WireExchange(url, body, json.dumps(payload).encode("utf-8"), JSON_CONTENT_TYPE, False)


def check(rec: Mapping[str, Any]) -> None:
    """Raise :class:`VertexRecordError` if a Vertex AI SDK-call record cannot be read as HTTP."""
    request, response = rec.get("request"), rec.get("response")
    if isinstance(request, Mapping) and is_vertex_call(request) and isinstance(response, Mapping):
        if response.get("is_exception"):
            wire_request(request)
        else:
            wire_exchange(request, response)


def to_ours(rec: dict[str, Any]) -> dict[str, Any]:
    """Our record of the HTTP exchange behind a Vertex AI SDK-call record (the core types its body)."""
    request, response = rec["request"], rec["response"]
    if response.get("is_exception"):
        # A failed call: the request as sent; the error is rebuilt by the llama-stack adapter.
        url, body, _ = wire_request(request)
        return {**rec, "request": _our_request(request, url, body)}
    exchange = wire_exchange(request, response)
    route = canonical.route(exchange.url)
    stored = codec.to_stored(route, exchange.content_type, exchange.response)
    ours: dict[str, Any] = {
        "body": stored.body,
        "is_streaming": stored.is_streaming,
        # Headers given, the replay sends this content type and the body as it is: wire JSON.
        "headers": {"content-type": exchange.content_type},
    }
    if stored.sse_done is not None:
        ours["sse_done"] = stored.sse_done
    return {**rec, "request": _our_request(request, exchange.url, exchange.body), "response": ours}


def _our_request(request: Mapping[str, Any], url: str, body: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    out.update(method="POST", url=url, body=body, endpoint=urlsplit(url).path)
    return out
