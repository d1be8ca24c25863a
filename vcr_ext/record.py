"""The recording format: building a record in the format's key order, checking one on read, the request hash.

A record is kept as a plain ``dict`` (what ``json`` gives and takes), so loading costs
one parse and writing one dump; this module owns its shape. See
``docs/recording-format.md`` in the shared material and the README's "What a cassette
looks like" for the fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic_core

from . import sdk_types
from .codec import StoredBody
from .errors import CassetteFormatError
from .json_values import map_strings

# Model-list routes are shared infrastructure in llama-stack: their hash leaves out the test id.
MODEL_LIST_ROUTES = frozenset({"/api/tags", "/v1/models", "/v1/openai/v1/models"})
OLLAMA_EPOCH = "1970-01-01T00:00:00.000000Z"
_OLLAMA_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
# Objects whose id and timestamp are per-call noise. A Responses API ``resp_...`` id is
# not: later requests send it back as ``previous_response_id``, so it stays as recorded.
_NORMALIZED_OBJECTS = frozenset({"chat.completion", "chat.completion.chunk", "text_completion"})
_FLOAT_IN_STRING = re.compile(r"(-?\d+\.\d{4,})")


def _normalize_for_hash(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalize_for_hash(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_for_hash(v) for v in value]
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return _FLOAT_IN_STRING.sub(lambda m: f"{float(m.group(0)):.5f}", value)
    return value


def request_hash(method: str, url: str, body: Any, test_id: str | None) -> str:
    """The format's request hash (the file name): sha256 of method, URL path, rounded body, test id."""
    path = urlsplit(url).path
    normalized: dict[str, Any] = {
        "method": method.upper(),
        "endpoint": path,
        "body": _normalize_for_hash(body),
    }
    if path not in MODEL_LIST_ROUTES:
        normalized["test_id"] = test_id
    return hashlib.sha256(json.dumps(normalized, sort_keys=True).encode()).hexdigest()


IdMap = dict[str, str]
"""Real ids -> the normalized ids that replaced them, shared by the records of one cassette."""


def normalize_payload(payload: Any, rhash: str, route: str, ids: IdMap | None = None) -> Any:
    """A payload with the format's normalized ids and timestamps (a new dict; key order kept).

    With ``ids``, an id already normalized in this cassette keeps the name it got
    there (a stored completion fetched again by id), and new ones are added to it.
    """
    if not isinstance(payload, dict):
        return payload
    if route.startswith("/api/"):
        out = dict(payload)
        if isinstance(out.get("created_at"), str):
            out["created_at"] = OLLAMA_EPOCH
        for key in _OLLAMA_DURATIONS:
            if out.get(key) is not None:
                out[key] = 0
        return out
    if payload.get("object") in _NORMALIZED_OBJECTS:
        out = dict(payload)
        if "id" in out:
            original = out["id"]
            normalized = f"rec-{rhash[:12]}"
            if ids is not None and isinstance(original, str):
                normalized = ids.setdefault(original, normalized)
            out["id"] = normalized
        if "created" in out:
            out["created"] = 0
        return out
    return payload


def substitute_ids(value: Any, ids: IdMap) -> Any:
    """``value`` with every real id of ``ids`` replaced by its normalized id (in every string)."""
    if not ids:
        return value

    def substitute(text: str) -> str:
        for original, normalized in ids.items():
            if original in text:
                text = text.replace(original, normalized)
        return text

    return map_strings(value, substitute)


def normalize_body(stored: StoredBody, rhash: str, route: str, ids: IdMap | None = None) -> StoredBody:
    """Normalize every typed payload of a stored body (plain and raw values stay as recorded)."""

    def one(value: Any) -> Any:
        u = sdk_types.unwrap(value)
        if u.type_name is None or u.type_name.startswith("vcr_ext."):
            return value
        return sdk_types.envelope(u.type_name, normalize_payload(u.payload, rhash, route, ids))

    body = [one(v) for v in stored.body] if isinstance(stored.body, list) else one(stored.body)
    return StoredBody(body, stored.is_streaming, stored.sse_done)


def build(
    *,
    test_id: str | None,
    method: str,
    url: str,
    body: Any,
    endpoint: str,
    model: str | None,
    response: StoredBody,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A record with the format's keys in the format's order.

    ``status``, ``headers`` and ``sse_done`` follow ``is_streaming`` only when they say
    something: a 200 response, and a stream whose terminator is the usual one, look
    exactly like the reference recording.
    """
    resp: dict[str, Any] = {"body": response.body, "is_streaming": response.is_streaming}
    if status != 200:
        resp["status"] = status
    if headers:
        resp["headers"] = headers
    if response.sse_done is not None:
        resp["sse_done"] = response.sse_done
    return {
        "test_id": test_id,
        "request": {
            "method": method,
            "url": url,
            "headers": {},
            "body": body,
            "endpoint": endpoint,
            "model": model,
        },
        "response": resp,
    }


def dumps(record: Any, *, ascii_only: bool = False) -> str:
    """The format's text: 2-space indent and a trailing newline.

    Non-ASCII text is written as is so a reviewer can read it; ``ascii_only`` writes
    ``\\uXXXX`` escapes as Python's ``json.dump`` default (and llama-stack) does.
    """
    return json.dumps(record, indent=2, ensure_ascii=ascii_only) + "\n"


def read(path: Path) -> Any:
    """The JSON of a recording file; a :class:`CassetteFormatError` naming the file if it is not JSON."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CassetteFormatError(path, None, "(file)", f"cannot be read: {err}") from err
    try:
        # pydantic-core parses the same values as json.loads, a third faster.
        return pydantic_core.from_json(data)
    except ValueError:
        pass
    # Parse again with the standard library: its errors point at the offending character.
    try:
        return json.loads(data)
    except UnicodeDecodeError as err:
        raise CassetteFormatError(path, None, "(file)", f"is not UTF-8 text: {err}") from err
    except json.JSONDecodeError as err:
        raise CassetteFormatError(
            path, None, "(file)", f"is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from err


def is_http(record: Mapping[str, Any]) -> bool:
    """Whether a record is an HTTP interaction (tool-invocation records are not)."""
    request = record.get("request")
    return isinstance(request, dict) and ("method" in request or "url" in request or "endpoint" in request)


def check(record: Any, path: str, index: int | None) -> dict[str, Any]:
    """``record`` if it is a readable HTTP record, else a :class:`CassetteFormatError` naming the field."""

    def fail(field: str, problem: str) -> CassetteFormatError:
        return CassetteFormatError(path, index, field, problem)

    if not isinstance(record, dict):
        raise fail("(record)", f"expected a JSON object, got {type(record).__name__}")
    request = record.get("request")
    if not isinstance(request, dict):
        raise fail("request", "missing, or not an object")
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise fail("request.method", f"expected an HTTP method, got {method!r}")
    url, endpoint = request.get("url"), request.get("endpoint")
    if not isinstance(url, str) and not isinstance(endpoint, str):
        raise fail("request.url", "neither request.url nor request.endpoint is a string")
    response = record.get("response")
    if not isinstance(response, dict):
        raise fail("response", "missing, or not an object")
    if "body" not in response:
        raise fail("response.body", "missing")
    streaming = response.get("is_streaming", False)
    if not isinstance(streaming, bool):
        raise fail("response.is_streaming", f"expected true or false, got {streaming!r}")
    if streaming and not isinstance(response["body"], list):
        raise fail("response.body", "is_streaming is true, so the body must be a list of chunks")
    status = response.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise fail("response.status", f"expected an HTTP status code, got {status!r}")
    headers = response.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise fail("response.headers", "expected an object of header name -> string value")
    done = response.get("sse_done")
    if done is not None and not isinstance(done, bool):
        raise fail("response.sse_done", f"expected true or false, got {done!r}")
    return record
