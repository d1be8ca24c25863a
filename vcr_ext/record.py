"""The recording format: building a record in the format's key order, checking one on read, the request hash.

A record is kept as a plain ``dict`` (what ``json`` gives and takes), so loading costs
one parse and writing one dump; this module owns its shape. See
``docs/recording-format.md`` in the shared material and the README's "What a cassette
looks like" for the fields.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic_core

from . import formats, sdk_types, typed_check
from .codec import StoredBody
from .errors import CassetteFormatError
from .json_values import map_strings
from .providers import bedrock

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
    """The JSON of a recording file; a :class:`CassetteFormatError` naming the file if it is not JSON.

    Anything that is not a readable file (a directory, a symlink loop or a link to
    nothing, no permission) is named too: the caller asks only about paths that exist.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        if isinstance(err, FileNotFoundError) and path.is_symlink():
            problem = "is a symbolic link to nothing"
        else:
            problem = f"cannot be read: {err.strerror or err}"
        raise CassetteFormatError(path, None, "(file)", problem) from err
    return parse(data, path)


def parse(data: bytes | str, path: str | os.PathLike[str]) -> Any:
    """The JSON value of a recording's text; a :class:`CassetteFormatError` naming ``path`` if not JSON."""
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


def records_of(doc: Any, path: str | os.PathLike[str]) -> list[tuple[int | None, Any]]:
    """``(index, record)`` of each record of a parsed file: one record (index ``None``) or a list.

    An empty list is no cassette at all: it is refused rather than taken for a missing
    cassette, which vcrpy would record again and so overwrite.
    """
    if not isinstance(doc, list):
        return [(None, doc)]
    if not doc:
        raise CassetteFormatError(
            path, None, "(file)", "is an empty list: a cassette file holds one record or a list of records"
        )
    return list(enumerate(doc))


def is_http(record: Mapping[str, Any]) -> bool:
    """Whether a record is an HTTP interaction (tool-invocation records are not)."""
    request = record.get("request")
    return isinstance(request, dict) and ("method" in request or "url" in request or "endpoint" in request)


def is_tool_invocation(record: Mapping[str, Any]) -> bool:
    """Whether a record is llama-stack's record of a tool call: ``{provider, tool_name, kwargs}``."""
    request = record.get("request")
    return isinstance(request, dict) and "tool_name" in request and not is_http(record)


def skip_reason(record: Any, path: str | os.PathLike[str], index: int | None) -> str | None:
    """Why a record is kept out of replay (``None``: it replays); an error if it cannot be there at all.

    llama-stack writes each tool call and each client-side failure as a file of its own,
    which a cassette skips with the reason. A list of records is vcr_ext's own layout,
    which only ever holds HTTP interactions, so a tool record in one is an error, not a
    silent skip. A record that is neither HTTP nor a tool call is left to :func:`check`,
    which names the field it lacks.
    """
    if not isinstance(record, dict) or not (is_http(record) or is_tool_invocation(record)):
        return None
    reason = formats.not_replayable(record)
    if reason is not None and index is not None and not is_http(record):
        problem = f"{reason}; a list of records holds HTTP records only"
        raise CassetteFormatError(path, index, "request", problem)
    return reason


# Methods whose requests carry no body: a record of one may leave request.body out.
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_OWN_TYPES = (
    sdk_types.RAW_TEXT,
    sdk_types.RAW_BASE64,
    sdk_types.RAW_JSON,
    sdk_types.SSE_EVENT,
    bedrock.FRAME,  # one AWS event-stream frame (Amazon Bedrock)
)


def check(record: Any, path: str | os.PathLike[str], index: int | None) -> dict[str, Any]:
    """``record`` if it is a readable HTTP record, else a :class:`CassetteFormatError` naming the field.

    Run on every record when a cassette is opened, so that nothing wrong on disk is
    found halfway through a test (as a request miss, or as an SDK object built from
    garbage): typed payloads are checked against their SDK class (see
    :mod:`vcr_ext.typed_check`).
    """

    def fail(field: str, problem: str) -> CassetteFormatError:
        return CassetteFormatError(path, index, field, problem)

    if not isinstance(record, dict):
        raise fail("(record)", f"expected a JSON object, got {typed_check.describe(record)}")
    request = record.get("request")
    if not isinstance(request, dict):
        raise fail("request", "missing, or not an object")
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise fail("request.method", f"expected an HTTP method, got {method!r}")
    url, endpoint = request.get("url"), request.get("endpoint")
    for name, value in (("url", url), ("endpoint", endpoint)):
        if value is not None and not isinstance(value, str):
            raise fail(f"request.{name}", f"expected a string, got {typed_check.describe(value)}")
    if not url and not endpoint:
        raise fail("request.url", "neither request.url nor request.endpoint is a non-empty string")
    if "body" in request:
        _check_raw_request_body(request["body"], fail)
    elif not formats.has_request_body(request) and method.upper() not in _BODYLESS_METHODS:
        # Replayed without it, the request would only ever be reported as a miss.
        raise fail("request.body", f"missing: a {method} record holds its request body (null for none)")
    mapping = record.get("id_normalization_mapping")
    if mapping is not None:
        _check_id_mapping(mapping, fail)
    response = record.get("response")
    if not isinstance(response, dict):
        raise fail("response", "missing, or not an object")
    if "body" not in response:
        raise fail("response.body", "missing")
    body = response["body"]
    streaming = response.get("is_streaming", False)
    if not isinstance(streaming, bool):
        raise fail("response.is_streaming", f"expected true or false, got {streaming!r}")
    if streaming and not isinstance(body, list):
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
    if isinstance(body, list) and not _all_fit(body):
        # A stream's chunks, or (not streaming) the items of a models page. This loop runs
        # for every chunk of every stream, so the usual item, an SDK object's envelope, is
        # checked right here, with the test of its type looked up once per stream;
        # anything else goes through _check_stored.
        tested, fits = None, None
        for i, item in enumerate(body):
            if type(item) is not dict or sdk_types.TYPE_KEY not in item:
                continue  # plain JSON
            type_name = item[sdk_types.TYPE_KEY]
            if type(type_name) is str and sdk_types.DATA_KEY in item and not type_name.startswith("vcr_ext."):
                if type_name != tested:
                    tested, fits = type_name, typed_check.fits_test(type_name)
                data = item[sdk_types.DATA_KEY]
                if fits is not None and not fits(data):
                    found = typed_check.mismatch(type_name, data)  # why, and where
                    if found is not None:
                        raise fail(f"response.body[{i}].__data__{found.path}", found.problem)
            else:
                _check_stored(item, f"response.body[{i}]", fail, in_stream=streaming)
    elif type(body) is dict and sdk_types.TYPE_KEY in body:
        _check_stored(body, "response.body", fail, in_stream=False)
    underivable = bedrock.underivable_frame(body) if streaming and bedrock.is_stream(body) else None
    if underivable is not None:  # an event-stream item whose frame headers replay cannot know
        raise fail(f"response.body[{underivable[0]}].__type__", underivable[1])
    foreign = formats.check(record)  # another recorder's kinds (llama-stack's raw SSE lines, Vertex calls)
    if foreign is not None:
        raise fail(*foreign)
    return record


Fail = Callable[[str, str], CassetteFormatError]


def _all_fit(body: list[Any]) -> bool:
    """Whether every item is an SDK object's envelope of one type, all fitting it (tested in one call).

    The usual stream; any other list, or one with an item that does not fit, is then
    gone through item by item to find which and why.
    """
    first = body[0] if body else None
    type_name = first.get(sdk_types.TYPE_KEY) if type(first) is dict else None
    if type(type_name) is not str or type_name.startswith("vcr_ext."):
        return False
    data_key, type_key = sdk_types.DATA_KEY, sdk_types.TYPE_KEY
    payloads = [
        item[data_key]
        for item in body
        if type(item) is dict and item.get(type_key) == type_name and data_key in item
    ]
    if len(payloads) != len(body):
        return False
    test = typed_check.all_fit_test(type_name)
    return test is None or test(payloads)


def _check_stored(value: dict[str, Any], field: str, fail: Fail, *, in_stream: bool) -> None:
    """A stored response value with a ``__type__``: an envelope whose type is known and whose data fits it.

    vcr_ext stores a plain JSON object that has a ``__type__`` key of its own in a
    ``vcr_ext.raw.JSON`` envelope, and llama-stack types only SDK objects, so any
    ``__type__`` in a response body is meant as an envelope.
    """
    type_name = value[sdk_types.TYPE_KEY]
    if not isinstance(type_name, str):
        raise fail(f"{field}.__type__", f"expected a type name, got {typed_check.describe(type_name)}")
    if sdk_types.DATA_KEY not in value:
        raise fail(
            f"{field}.__data__",
            f'missing: a value with a "__type__" is an envelope {{"__type__", "__data__"}} ({type_name})',
        )
    data = value[sdk_types.DATA_KEY]
    data_field = f"{field}.__data__"
    if type_name.startswith("vcr_ext."):
        if type_name in (sdk_types.RAW_TEXT, sdk_types.RAW_BASE64):
            _check_raw(type_name, data, data_field, fail)
        elif type_name == sdk_types.SSE_EVENT:
            _check_event(data, data_field, fail, in_stream=in_stream)
        elif type_name == bedrock.FRAME:
            _check_frame(data, data_field, fail, in_stream=in_stream)
        elif type_name != sdk_types.RAW_JSON:
            known = ", ".join(_OWN_TYPES)
            raise fail(f"{field}.__type__", f"unknown vcr_ext type {type_name!r}: expected one of {known}")
        return
    mismatch = typed_check.check(type_name, data)
    if mismatch is not None:
        raise fail(data_field + mismatch.path, mismatch.problem)


def _check_raw(type_name: str, data: Any, field: str, fail: Fail) -> None:
    if not isinstance(data, str):
        raise fail(field, f"{type_name} holds a string, got {typed_check.describe(data)}")
    if type_name == sdk_types.RAW_BASE64:
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as err:
            raise fail(field, f"{type_name} holds base64 text: {err}") from err


def _check_event(data: Any, field: str, fail: Fail, *, in_stream: bool) -> None:
    """A ``vcr_ext.sse.Event``: the framing of one event of a stream, and its stored payload."""
    if not in_stream:
        raise fail(field, f"{sdk_types.SSE_EVENT} frames an event of a stream: only a streamed chunk is one")
    if not isinstance(data, dict):
        got = typed_check.describe(data)
        raise fail(field, f"expected an object of event, id, retry and data, got {got}")
    for key in ("event", "id"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise fail(f"{field}.{key}", f"expected a string, got {typed_check.describe(data[key])}")
    retry = data.get("retry")
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool)):
        raise fail(f"{field}.retry", f"expected an integer, got {typed_check.describe(retry)}")
    if "data" not in data:
        return  # a block with no data line (``event: ping``): it replays as one, dispatching nothing
    payload = data["data"]
    if type(payload) is dict and sdk_types.TYPE_KEY in payload:
        # The payload of one event: not itself an event.
        _check_stored(payload, f"{field}.data", fail, in_stream=False)


def _check_frame(data: Any, field: str, fail: Fail, *, in_stream: bool) -> None:
    """A ``vcr_ext.eventstream.Frame``: one AWS event-stream message, its headers explicit."""
    found = bedrock.frame_problem(data) if in_stream else ("", f"{bedrock.FRAME} is one frame of a stream")
    if found is not None:
        raise fail(field + found[0], found[1])
    payload = data["payload"]
    if type(payload) is dict and sdk_types.TYPE_KEY in payload:
        _check_stored(payload, f"{field}.payload", fail, in_stream=False)


def _check_raw_request_body(body: Any, fail: Fail) -> None:
    # Request bodies are stored as sent (a JSON body with a "__type__" key of its own is
    # not escaped), so only vcr_ext's raw envelopes are looked at.
    if sdk_types.is_envelope(body) and body[sdk_types.TYPE_KEY] in sdk_types.RAW_TYPES:
        _check_raw(body[sdk_types.TYPE_KEY], body[sdk_types.DATA_KEY], "request.body.__data__", fail)


def _check_id_mapping(mapping: Any, fail: Fail) -> None:
    # Applied as text replacements over the whole record: an empty or non-text original
    # would corrupt every string of it.
    if not isinstance(mapping, dict):
        raise fail("id_normalization_mapping", f"expected an object, got {typed_check.describe(mapping)}")
    for normalized, original in mapping.items():
        if not isinstance(original, str) or not original:
            raise fail(f"id_normalization_mapping.{normalized}", "expected an original id, non-empty text")
