"""Canonical requests: the API route of a URL and the canonical form of a JSON body.

Two requests that the API would treat the same get the same canonical form, so the
matcher, the cassette index and the miss explanation all read from this one module.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

# First path segments of the OpenAI REST API. A path that has no ``v1`` segment (Azure's
# ``/openai/deployments/<name>/chat/completions``, base URLs without ``/v1``) is routed
# from the first of these it contains.
OPENAI_RESOURCES = frozenset(
    {
        "assistants",
        "audio",
        "batches",
        "chat",
        "completions",
        "containers",
        "conversations",
        "embeddings",
        "evals",
        "files",
        "fine_tuning",
        "images",
        "models",
        "moderations",
        "realtime",
        "responses",
        "threads",
        "uploads",
        "vector_stores",
    },
)

FLOAT_DIGITS = 5


def route(url_or_path: str) -> str:
    """The API route of a URL, independent of scheme, host, port and base path.

    ``https://h/openai/v1/v1/chat/completions?api-version=x`` -> ``/v1/chat/completions``;
    Ollama's native ``/api/...`` routes are kept as they are.
    """
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path.split("?", 1)[0]
    segments = [s for s in path.split("/") if s]
    if "api" in segments:
        at = segments.index("api")
        if at + 1 < len(segments) and "v1" not in segments[at + 1 :]:
            return "/" + "/".join(segments[at:])
    if "v1" in segments:
        last = len(segments) - 1 - segments[::-1].index("v1")
        return "/v1/" + "/".join(segments[last + 1 :]) if last + 1 < len(segments) else "/v1"
    for at, segment in enumerate(segments):
        if segment in OPENAI_RESOURCES:
            return "/v1/" + "/".join(segments[at:])
    return "/" + "/".join(segments)


def parse_json_body(body: object) -> tuple[bool, Any]:
    """``(True, value)`` for a JSON body, ``(False, bytes)`` for anything else.

    Besides bytes and text, vcrpy's stubs hand over what the client was given: a list
    of byte chunks (iterator bodies), or, from aiohttp, the ``json=``/``data=`` object.
    """
    if body is None or body == b"" or body == "":
        return True, None
    if isinstance(body, list) and all(isinstance(chunk, bytes) for chunk in body):
        body = b"".join(body)
    if isinstance(body, (dict, list, tuple)):
        try:
            return True, json.loads(json.dumps(body))
        except (TypeError, ValueError):
            return False, repr(body).encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, (bytes, str)):
        return False, repr(body).encode("utf-8")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        return True, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, raw


def canonical_value(value: Any) -> Any:
    """A JSON value with float noise removed (floats rounded to 5 places, as the format hashes them)."""
    if isinstance(value, dict):
        return {k: canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_value(v) for v in value]
    if isinstance(value, float):
        rounded = round(value, FLOAT_DIGITS)
        # 1.0 and 1 are the same number to the API; compare them as one.
        return int(rounded) if rounded.is_integer() else rounded
    return value


def body_key(is_json: bool, value: Any) -> str | bytes:
    """A hashable key equal for canonically equal bodies (raw bytes compare exactly)."""
    if not is_json:
        return bytes(value)
    return json.dumps(canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
