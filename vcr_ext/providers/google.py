"""Google Gemini API and Vertex AI: their routes, the google-genai classes of their payloads, their streams.

The Gemini API (``generativelanguage.googleapis.com/v1beta/models/<m>:generateContent``)
and Vertex AI (``<region>-aiplatform.googleapis.com/v1/projects/<p>/locations/<l>/``
``publishers/google/models/<m>:streamGenerateContent``) name the model in the path and
the call after a colon. Their streams (``?alt=sse``)
are ``data: {...}`` events with no event name and no ``[DONE]``; google-genai builds
each chunk into a ``GenerateContentResponse``. The SDK converts the wire JSON (camelCase)
before building its object, so a ``__data__`` stays the wire JSON and its ``__type__``
only names the class the SDK builds from it.

Nothing here imports the SDK at module import: google-genai is optional, and replay
needs none of it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# An API version segment of Google's REST paths: v1, v1beta, v1beta1, v1alpha.
_VERSION = re.compile(r"^v1(?:(?:alpha|beta)\d*)?$")
# Top-level collections of the Gemini API that follow a version segment.
_GEMINI_RESOURCES = frozenset(
    {
        "models",
        "tunedModels",
        "files",
        "cachedContents",
        "fileSearchStores",
        "batches",
        "operations",
        "corpora",
        "generatedFiles",
        "authTokens",
    }
)

STREAM_TYPE_PREFIX = "google.genai."
"""Type-name prefix of payloads whose streams name no event and end without ``data: [DONE]``."""

# Wire method (after the colon) -> key of :func:`names` for the class the SDK builds.
_METHODS = {
    "generateContent": "generate",
    "streamGenerateContent": "generate",
    "countTokens": "count_tokens",
    "computeTokens": "compute_tokens",
    "embedContent": "embed",
    "batchEmbedContents": "embed",
}
# How the ``name`` of a google-genai ``Model`` starts (Gemini, Vertex AI, tuned models).
_MODEL_NAME_PREFIXES = ("models/", "publishers/", "tunedModels/")
# Keys a payload of each kind must have one of (an empty body is also a valid response).
_SHAPES = {
    "count_tokens": ("totalTokens",),
    "compute_tokens": ("tokensInfo",),
    "embed": ("embedding", "embeddings"),
}
# google-genai's models all inherit one ``mode="before"`` validator that only logs a
# warning and returns its input unchanged; it reshapes nothing, so the classes can be
# checked structurally (see :mod:`vcr_ext.typed_check`).
PASS_THROUGH_VALIDATORS = frozenset({"google.genai._common.BaseModel._check_field_type_mismatches"})


def route(segments: list[str]) -> str | None:
    """The route of a Gemini API or Vertex AI native path, from its version segment on; ``None`` if not one.

    ``/v1beta/models/<m>:streamGenerateContent`` stays as it is (the model and the call
    are the route); Vertex's ``/v1/projects/<p>/locations/<l>/publishers/google/models/<m>:generateContent``
    drops the project and location (the account, like an Azure deployment's host) to
    ``/v1/publishers/google/models/<m>:generateContent``; an upload keeps its
    ``/upload`` prefix. Plain ``/v1/models...`` (the Gemini API's v1, or OpenAI) and the
    OpenAI-compatible endpoints (``/v1beta/openai/...``, Vertex ``endpoints/openapi``)
    are not Google-native: ``None``, routed the OpenAI way.
    """
    for at, segment in enumerate(segments):
        if not _VERSION.match(segment):
            continue
        rest = segments[at + 1 :]
        if len(rest) >= 5 and rest[0] == "projects" and rest[2] == "locations":
            rest = rest[4:]  # Vertex AI: the project and location are the account, not the call
            if rest[:2] == ["endpoints", "openapi"]:
                return None
        elif rest[:1] == ["publishers"]:  # Vertex AI express mode: no project in the path
            pass
        elif segment == "v1" or not rest or rest[0] not in _GEMINI_RESOURCES:
            continue
        prefix = "/upload" if at > 0 and segments[at - 1] == "upload" else ""
        return f"{prefix}/{segment}/" + "/".join(rest)
    return None


@functools.cache
def names() -> dict[str, str] | None:
    """Kind of payload -> the google-genai class name the SDK builds from it; ``None`` without the SDK.

    Without google-genai the traffic is stored with generic types and replays the same bytes.
    """
    try:
        from google.genai import types
    except ImportError:
        return None
    classes = {
        "generate": types.GenerateContentResponse,
        "count_tokens": types.CountTokensResponse,
        "compute_tokens": types.ComputeTokensResponse,
        "embed": types.EmbedContentResponse,
        "model": types.Model,
        "models": types.ListModelsResponse,
    }
    return {kind: f"{cls.__module__}.{cls.__qualname__}" for kind, cls in classes.items()}


def _kind(route_: str, payload: dict[str, Any]) -> str | None:
    """The kind of payload ``route_`` returns (a key of :func:`names`), confirmed by its shape."""
    _, colon, method = route_.rpartition("/")[2].partition(":")
    if colon:
        kind = _METHODS.get(method) if "/models/" in route_ else None
        if kind is None:
            return None
        shape = _SHAPES.get(kind)
        return kind if shape is None or not payload or set(shape) & set(payload) else None
    # OpenAI's models and pages of them (on the same ``/v1/models`` routes) have an "object".
    if "object" in payload:
        return None
    collection = route_.rstrip("/").split("/")
    if collection[-1] == "models" and isinstance(payload.get("models", []), list):
        return "models"  # a page of models (an empty page is ``{}``)
    name = payload.get("name")
    if len(collection) >= 2 and collection[-2] == "models" and isinstance(name, str):
        return "model" if name.startswith(_MODEL_NAME_PREFIXES) else None
    return None


def classify(route_: str, payload: dict[str, Any]) -> str | None:
    """The google-genai class of a payload sent on a Google route.

    ``None`` for an error body, a route or shape no class is known for, or without the SDK.
    The Gemini API's v1 lists and gets models on OpenAI's routes (``/v1/models``,
    ``/v1/models/<m>``): there the payload's shape alone tells them apart.
    """
    if "error" in payload or not (is_google_route(route_) or route_.startswith("/v1/models")):
        return None
    kind = _kind(route_, payload)
    table = names() if kind is not None else None
    return table.get(kind) if table is not None and kind is not None else None


@functools.lru_cache(maxsize=1024)  # asked for every payload recorded, of a handful of routes
def is_google_route(route_: str) -> bool:
    """Whether ``route_`` (a result of :func:`vcr_ext.canonical.route`) is a Gemini or Vertex native call."""
    segments = [s for s in route_.split("/") if s]
    if route(segments) is not None:
        return True
    # The Gemini API's plain v1 shares OpenAI's ``/v1/models`` prefix: its calls have a colon.
    last = segments[-1] if segments else ""
    return segments[:2] == ["v1", "models"] and last.partition(":")[2] in _METHODS


def sdk_chunks(data: bytes) -> list[str] | None:
    """The chunk texts google-genai's own stream reader takes from ``data``; ``None`` without the SDK.

    The SDK reads streams its own way (``data: `` with its space, blank-line ends,
    other lines buffered as raw JSON), not as the WHATWG standard does; a recorded
    stream is checked with that reader too. Its reader is private (``HttpResponse``),
    imported lazily: if a future SDK moves it, the check falls back to the standard's.
    """
    try:
        import httpx
        from google.genai._api_client import HttpResponse
    except ImportError:
        return None
    try:
        reader = HttpResponse({}, httpx.Response(200, content=data))
        return list(reader._iter_response_stream())
    except (AttributeError, TypeError):
        return None


def model_of(route_: str) -> str | None:
    """The model a Gemini or Vertex AI call names in its path (``gemini-2.5-flash``); ``None`` elsewhere.

    Google sends no ``model`` in the request body: the record's ``request.model`` comes from here.
    """
    if not is_google_route(route_):
        return None
    segments = route_.split("/")
    if len(segments) < 3 or segments[-2] != "models":
        return None
    model, colon, _ = segments[-1].partition(":")
    return model if colon and model else None
