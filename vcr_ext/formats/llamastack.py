"""llama-stack's recorder: what its recordings mean on the wire, and writing exactly what it writes.

llama-stack's ``api_recorder`` patches client methods, not HTTP: a record's ``body`` is
the keyword arguments of ``client.chat.completions.create(...)`` (or of the ollama
client's ``generate``/``embed``/...), its ``url`` is the client's base URL plus the route
(hence ``/v1/v1/``), its method is ``POST`` even for ``GET`` routes, and its response
objects are the SDK's pydantic objects dumped with ``model_dump(mode="json")``.

Reading: :func:`to_ours` turns such a record into the record of the HTTP interaction
behind it (:func:`wire_request`: the request on the wire, so it matches the HTTP request
a client sends when it replays; :func:`wire_response`: a recorded exception as the
response the wire carried), which is all the core ever sees. The later recorder's other
kinds are read the same way: a stream stored as its raw SSE lines (Anthropic
``/v1/messages``, Gemini ``/interactions``) is the SSE text those lines were
(:func:`raw_sse_response`); ``{"extra_query": {...}}`` in a body is the query string the
SDK sent it as; a Vertex AI SDK-call record (``url: vertexai:///...``) is the exchange
google-genai has with Vertex AI (:mod:`vcr_ext.formats.llamastack_vertex`).

Writing (``compat="llama-stack"``): :class:`LlamaStackWriter` turns an HTTP interaction
into the record llama-stack's recorder (Oct 2025, openai 2.5.0 era) would have written
for the client call behind it, byte for byte where the wire carries what it needs (see
the README for what it cannot carry, such as an empty ``extra_body``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from vcr.request import Request

from .. import canonical, codec, record, scrub, sdk_types
from . import llamastack_vertex

# Routes that are GET on the wire but that llama-stack recorded as POST with body {}.
GET_ROUTES = frozenset({"/v1/models", "/api/tags", "/api/ps", "/api/version"})
# llama-stack's call sites pass these first, then the rest of the parameters in the SDK
# signature's (alphabetical) order; an empty extra_body is appended last.
_LEADING_KEYS = ("model", "messages", "prompt", "input")
_ROUTE_KEY_ORDER: dict[str, tuple[str, ...]] = {
    "/v1/embeddings": ("model", "input", "encoding_format", "dimensions", "user"),
}

Variant = Literal["llama-stack", "llama-stack-mapping", "llama-stack-legacy"]
VARIANTS: tuple[Variant, ...] = ("llama-stack", "llama-stack-mapping", "llama-stack-legacy")


def apply_id_mapping(rec: dict[str, Any]) -> dict[str, Any]:
    """The record as llama-stack's reader sees it: ``id_normalization_mapping`` applied.

    Its later recorder writes the real ids plus a mapping to normalized ones (``file-1``);
    a replaying client knows only the normalized ids, so they replace the real ones in
    the whole record.
    """
    mapping = rec.get("id_normalization_mapping")
    if not mapping or not isinstance(mapping, dict):
        return rec
    text = json.dumps(rec)
    for normalized, original in mapping.items():
        text = text.replace(str(original), str(normalized))
    out: dict[str, Any] = json.loads(text)
    out["id_normalization_mapping"] = {}
    return out


def to_ours(rec: dict[str, Any]) -> dict[str, Any]:
    """The record of the HTTP interaction a checked llama-stack record stands for (``rec`` if the same).

    A record vcr_ext wrote from the wire passes unchanged: every rewrite below applies
    only to what no HTTP API sends.
    """
    rec = apply_id_mapping(rec)
    if llamastack_vertex.is_vertex_call(rec["request"]):
        ours = llamastack_vertex.to_ours(rec)
        vertex_route = canonical.route(ours["request"]["url"])
        return {**ours, "response": wire_response(ours["response"], vertex_route)}
    req, resp = rec["request"], rec["response"]
    url = req.get("url") or req["endpoint"]
    recorded_route = canonical.route(req.get("endpoint") or url)
    recorded = recorded_body(req)
    method, route, body = wire_request(req["method"], recorded_route, recorded)
    query = extra_query(recorded)
    wire_resp = wire_response(raw_sse_response(resp, route), route)
    if method == req["method"] and route == recorded_route and body is recorded and "body" in req:
        return rec if wire_resp is resp else {**rec, "response": wire_resp}
    request = {k: v for k, v in req.items() if k != "payload"}
    request.update(method=method, body=body)
    if route != recorded_route or query:
        parts = urlsplit(url)
        path = route if route != recorded_route else parts.path
        # The SDK appends extra_query to the query the URL already has.
        full_query = "&".join(q for q in (parts.query, query) if q)
        request["url"] = urlunsplit((parts.scheme, parts.netloc, path, full_query, ""))
        if request.get("endpoint") and route != recorded_route:
            request["endpoint"] = route
    return {**rec, "request": request, "response": wire_resp}


def wire_request(method: str, route: str, body: Any) -> tuple[str, str, Any]:
    """``(method, route, body)`` of the HTTP request behind a llama-stack record.

    Each rewrite applies only to a combination no real HTTP API has, so it never
    changes a record made from the wire.
    """
    if isinstance(body, dict) and isinstance(body.get("extra_query"), dict):
        # Sent as the query string (see extra_query), never as a body field.
        body = {k: v for k, v in body.items() if k != "extra_query"}
    if method.upper() == "POST" and route in GET_ROUTES and body in ({}, None):
        return "GET", route, None
    if isinstance(body, dict) and isinstance(body.get("extra_body"), dict):
        # The SDK sends extra_body's keys as top-level body fields.
        body = {**{k: v for k, v in body.items() if k != "extra_body"}, **body["extra_body"]}
    if isinstance(body, dict):
        if route == "/api/embeddings" and "input" in body and "prompt" not in body:
            return method, "/api/embed", body  # ollama's embed(), named by its older endpoint
        if route == "/v1/completions" and "messages" in body and "prompt" not in body:
            return method, "/v1/chat/completions", body  # a chat call recorded under completions
    return method, route, body


def extra_query(body: Any) -> str:
    """The query string an SDK call's ``extra_query`` argument is sent as (``""`` if none).

    llama-stack records the arguments of ``client.models.list(extra_query={...})`` as the
    body ``{"extra_query": {...}}``; the openai SDK sends them as the request's query.
    """
    query = body.get("extra_query") if isinstance(body, dict) else None
    if not isinstance(query, dict) or not query:
        return ""
    try:
        from openai._qs import Querystring
    except ImportError:
        # Without openai, the standard encoding (the SDK's for scalars, as JSON spells them).
        pairs = [(k, json.dumps(v) if isinstance(v, bool) or v is None else v) for k, v in query.items()]
        return urlencode(pairs, doseq=True)
    # The openai client's own encoder (its array and nested-object formats).
    return urlencode(Querystring(array_format="brackets").stringify_items(query))


def is_raw_sse_lines(response: Mapping[str, Any]) -> bool:
    """Whether a response body is a stream stored as its raw SSE lines (``["event: x", "data: {...}", ""]``).

    The later recorder stores Anthropic and Gemini ``/interactions`` streams so: a stream
    reader's lines, field lines and the blank lines between events. No record vcr_ext
    writes is one: a stream it recorded keeps its content type in ``headers``. A body
    that starts so but holds something else is one too, to be reported
    (:func:`raw_sse_problem`), not misread.
    """
    body = response.get("body")
    if response.get("is_streaming") is not True or "headers" in response or not isinstance(body, list):
        return False
    if not body or not isinstance(body[0], str):
        return False  # the usual stream, of objects: decided at its first chunk
    lines = [x for x in body if isinstance(x, str)]
    return "" in lines and any(line.startswith(("data:", "event:")) for line in lines)


_SSE_FIELDS = ("data", "event", "id", "retry")


def raw_sse_problem(lines: list[Any]) -> tuple[int, str] | None:
    """``(index, problem)`` of the first item that is not one line of an event stream, or ``None``."""
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            return i, "a stream of raw SSE lines holds a value that is not a line of text"
        if "\n" in line or "\r" in line:
            return i, "a raw SSE line holds a line break: these are not the lines a stream reader splits"
        field = line.split(":", 1)[0]
        if line and not line.startswith(":") and field not in _SSE_FIELDS:
            return i, f"{line[:60]!r} is not an SSE line (data, event, id, retry, a comment or blank)"
    return None


def raw_sse_response(response: Mapping[str, Any], route: str) -> Mapping[str, Any]:
    """A response stored as raw SSE lines, as the stream it was: per-event items, typed like live recording.

    The lines are joined back into the wire text and given to the codec, which types each
    event (Anthropic events with ``anthropic.types`` classes when the SDK is installed)
    or keeps the text whole if a per-event form would not replay the same bytes.
    """
    if not is_raw_sse_lines(response):
        return response
    lines: list[Any] = response["body"]
    found = raw_sse_problem(lines)
    if found is not None:
        raise ValueError(f"response.body[{found[0]}]: {found[1]}")
    # A stream reader's lines lost their line ends: each line ends with one again.
    text = "".join(line + "\n" for line in lines)
    stored = codec.to_stored(route, codec.SSE_CONTENT_TYPE, text.encode("utf-8"))
    out = {k: v for k, v in response.items() if k not in ("body", "is_streaming")}
    out.update(body=stored.body, is_streaming=stored.is_streaming)
    # The lines are the wire's: replayed as they are, with the stream's content type.
    out["headers"] = {"content-type": codec.SSE_CONTENT_TYPE}
    if stored.sse_done is not None:
        out["sse_done"] = stored.sse_done
    return out


def check(rec: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(field, problem)`` if a record of the later recorder's kinds cannot be read, else ``None``."""
    request, response = rec.get("request"), rec.get("response")
    if not isinstance(request, Mapping) or not isinstance(response, Mapping):
        return None
    if llamastack_vertex.is_vertex_call(request):
        try:
            llamastack_vertex.check(rec)
        except llamastack_vertex.VertexRecordError as err:
            return err.field, err.problem
        return None
    if is_raw_sse_lines(response):
        found = raw_sse_problem(response["body"])
        if found is not None:
            return f"response.body[{found[0]}]", found[1]
    return None


def is_raw_http(request: Mapping[str, Any]) -> bool:
    """Whether a record's request is one of the later recorder's raw HTTP requests.

    Its aiohttp records (rerank requests to vLLM/NVIDIA) hold ``{url, method, payload}``:
    the JSON sent, not the keyword arguments of an SDK call.
    """
    return "payload" in request and "body" not in request


def recorded_body(request: Mapping[str, Any]) -> Any:
    """The request body of a record: ``body``, or ``payload`` in a raw HTTP record."""
    return request["payload"] if is_raw_http(request) else request.get("body")


def not_replayable(rec: Mapping[str, Any]) -> str | None:
    """Why a record has no HTTP response to replay (a tool call, a client-side exception), or ``None``."""
    request = rec.get("request")
    if isinstance(request, Mapping) and not record.is_http(rec):
        what = f"{request.get('provider', '?')}.{request.get('tool_name', '?')}"
        return f"tool-invocation record ({what}): not an HTTP interaction, nothing to replay over HTTP"
    response = rec.get("response")
    if not isinstance(response, Mapping) or not response.get("is_exception") or response.get("is_streaming"):
        return None
    if _error_status(response) is None:
        data = response.get("exception_data")
        kind = data.get("type", "Exception") if isinstance(data, Mapping) else "Exception"
        message = str(response.get("exception_message") or "")[:200]
        return f"records a client-side exception ({kind}: {message}), not an HTTP response"
    return None


def wire_response(response: Mapping[str, Any], route: str) -> Mapping[str, Any]:
    """The response of a record as vcr_ext stores one: a recorded exception becomes what the wire said.

    The later recorder stores a failed call as ``is_exception`` with the exception's data
    instead of a body. A provider's HTTP error (``exception_data.status_code``) replays as
    that status and error body, so the SDK raises the same class with the same message;
    a stream that failed midway replays its chunks, then an error event.
    """
    if not response.get("is_exception"):
        return response
    error = _error_body(response, route)
    if response.get("is_streaming"):
        chunks = response.get("body")
        body = [*(chunks if isinstance(chunks, list) else []), error]
        return {"body": body, "is_streaming": True, "sse_done": False}
    return {"body": error, "is_streaming": False, "status": _error_status(response) or 500}


def _error_status(response: Mapping[str, Any]) -> int | None:
    data = response.get("exception_data")
    status = data.get("status_code") if isinstance(data, Mapping) else None
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


def _error_body(response: Mapping[str, Any], route: str) -> Any:
    """The JSON error body whose parsing gives back the recorded exception's message."""
    data = response.get("exception_data")
    data = data if isinstance(data, Mapping) else {}
    message = str(response.get("exception_message") or data.get("message") or "")
    if route.startswith("/api/"):
        return {"error": message}  # ollama's ResponseError carries the body's "error" text
    body = data.get("body")
    if body is None:
        return {"error": {"message": message}}
    if not isinstance(body, dict | list):
        return sdk_types.envelope(sdk_types.RAW_TEXT, str(body))  # a body that was not JSON
    # openai's exception keeps the body's "error" member when it has one, the whole body
    # otherwise; its message ends with the whole body, which tells which of the two it was.
    if message == f"Error code: {data.get('status_code')} - {body}":
        return body
    return {"error": body}


def _ordered_body(route: str, body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    order = _ROUTE_KEY_ORDER.get(route)
    if order is not None:
        known = [k for k in order if k in body]
        return {k: body[k] for k in [*known, *(k for k in body if k not in order)]}
    if route.startswith("/api/"):
        return body  # the ollama client's own order
    leading = [k for k in _LEADING_KEYS if k in body]
    rest = sorted(k for k in body if k not in leading)
    return {k: body[k] for k in [*leading, *rest]}


def _recorded_url(uri: str, route: str) -> str:
    parts = urlsplit(scrub.scrub_url(uri))
    if route.startswith("/api/"):
        return urlunsplit((parts.scheme, parts.netloc, route, "", ""))
    tail = route[len("/v1") :]
    base = parts.path[: -len(tail)] if tail and parts.path.endswith(tail) else parts.path
    return urlunsplit((parts.scheme, parts.netloc, base.rstrip("/") + route, "", ""))


def redump(type_name: str, payload: Any) -> Any:
    """The payload as llama-stack wrote it: the SDK object the client built, dumped again."""
    obj: Any = sdk_types.build(type_name, payload)
    return obj.model_dump(mode="json")


def normalize(data: dict[str, Any], rhash: str) -> dict[str, Any]:
    """llama-stack's ``_normalize_response``: ids, timestamps and durations of every top-level object."""
    out = dict(data)
    if "id" in out and out.get("object") != "model":
        out["id"] = f"rec-{rhash[:12]}"
    if "created" in out and out.get("object") != "model":
        out["created"] = 0
    if "created_at" in out:
        out["created_at"] = record.OLLAMA_EPOCH
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        if out.get(key) is not None:
            out[key] = 0
    return out


def models_digest(route: str, items: Iterable[Mapping[str, Any]]) -> str:
    """The 8 hex digits llama-stack puts in a model-list file name, from the model identifiers."""
    key = "model" if route == "/api/tags" else "id"
    idents = sorted({str(m.get(key)) for m in items})
    return hashlib.sha256("|".join(idents).encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class LlamaStackWriter:
    """Builds the record (and file name) llama-stack's recorder would write for an HTTP interaction."""

    variant: Variant = "llama-stack"

    def record(
        self,
        request: Request,
        response: Mapping[str, Any],
        *,
        test_id: str | None,
    ) -> tuple[str, dict[str, Any]]:
        from ..interactions import parsed_body  # interactions reads records through this module

        route = canonical.route(request.uri)
        is_json, value = parsed_body(request)
        body = _ordered_body(route, value if is_json and value is not None else {})
        url = _recorded_url(request.uri, route)
        hashed_test_id = None if self.variant == "llama-stack-legacy" else test_id
        rhash = record.request_hash("POST", url, body, hashed_test_id)
        raw = response["body"]["string"]
        raw = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
        headers: Mapping[str, Any] = response.get("headers") or {}
        content_types = [v for k, v in headers.items() if k.lower() == "content-type"]
        content_type = (
            (content_types[0][0] if isinstance(content_types[0], list) else content_types[0])
            if content_types
            else None
        )
        stored = codec.to_stored(route, content_type, raw)

        def dump(item: Any) -> Any:
            u = sdk_types.unwrap(item)
            if u.type_name is None or u.type_name.startswith("vcr_ext."):
                return u.payload
            return sdk_types.envelope(u.type_name, normalize(redump(u.type_name, u.payload), rhash))

        out_body = [dump(i) for i in stored.body] if isinstance(stored.body, list) else dump(stored.body)
        rec: dict[str, Any] = {} if self.variant == "llama-stack-legacy" else {"test_id": test_id}
        rec["request"] = {
            "method": "POST",
            "url": url,
            "headers": {},
            "body": body,
            "endpoint": route,
            "model": body.get("model", "") if isinstance(body, dict) else "",
        }
        rec["response"] = {"body": out_body, "is_streaming": stored.is_streaming}
        if self.variant == "llama-stack-mapping":
            rec["id_normalization_mapping"] = {}
        if route in record.MODEL_LIST_ROUTES and isinstance(stored.body, list):
            items = [sdk_types.unwrap(i).payload for i in stored.body]
            return f"models-{rhash}-{models_digest(route, items)}.json", rec
        return f"{rhash}.json", rec
