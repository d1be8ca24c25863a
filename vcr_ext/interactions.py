"""A vcrpy interaction (``vcr.request.Request``, response dict) <-> a record of the format."""

from __future__ import annotations

import base64
import http
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcr.filters import AVAILABLE_DECOMPRESSORS
from vcr.request import Request

from . import canonical, codec, record, scrub, sdk_types, sse
from .codec import StoredBody
from .providers import google
from .sse import json_bytes

# Key of the private entry a loaded response dict carries (see Origin). vcrpy ignores
# keys it does not know in a response dict.
ORIGIN_KEY = "vcr_ext_origin"
_BODY_MEMO = "_vcr_ext_body"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a loaded interaction came from, so saving it again changes nothing.

    ``fingerprint`` is the status and body bytes handed to vcrpy at load; while the
    response still has them, the record is written back as it was instead of being
    rebuilt (which would lose what the body bytes do not carry: the file's name, its
    test id, keys of later recorder versions). The record is read again from
    ``source`` when a save needs it rather than kept: a cassette holds only what replay
    needs, and a record that is not rewritten is never read twice.
    """

    name: str | None
    fingerprint: tuple[int, bytes]
    source: Path | None = None
    index: int | None = None
    kept: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The record as it was loaded."""
        if self.kept is not None:
            return self.kept
        assert self.source is not None
        doc = record.read(self.source)
        rec: dict[str, Any] = doc[self.index] if self.index is not None else doc
        return rec

    def __deepcopy__(self, memo: dict[int, Any]) -> Origin:
        # Immutable by contract; vcrpy deep-copies every response it appends.
        return self

    def matches(self, response: Mapping[str, Any]) -> bool:
        try:
            body = response["body"]["string"]
            if isinstance(body, str):
                body = body.encode("utf-8")  # vcrpy's serializer path decodes bodies to text
            return (response["status"]["code"], body) == self.fingerprint
        except (KeyError, TypeError):
            return False


def origin_of(response: Mapping[str, Any]) -> Origin | None:
    """The origin of a loaded, unchanged response, else ``None``."""
    origin = response.get(ORIGIN_KEY)
    return origin if isinstance(origin, Origin) and origin.matches(response) else None


class _BodyMemo:
    """What was derived from one request body object: its parse and its match keys.

    Shared, not copied, by vcrpy's deep copies of a request: the body ``bytes`` object
    they keep is the same, and that identity is what makes the memo valid.
    """

    __slots__ = ("body", "is_json", "keys", "value")

    def __init__(self, body: object, is_json: bool, value: Any) -> None:
        self.body = body
        self.is_json = is_json
        self.value = value
        self.keys: dict[tuple[str, str], Any] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> _BodyMemo:
        return self


def body_memo(request: Request) -> _BodyMemo:
    """The memo of a request's current body, parsing it on first use."""
    body = request._body
    memo = request.__dict__.get(_BODY_MEMO)
    if isinstance(memo, _BodyMemo) and memo.body is body:
        return memo
    is_json, value = canonical.parse_json_body(body)
    memo = _BodyMemo(body, is_json, value)
    request.__dict__[_BODY_MEMO] = memo
    return memo


def parsed_body(request: Request) -> tuple[bool, Any]:
    """``(is_json, value)`` of a request body, parsed once per body object."""
    memo = body_memo(request)
    return memo.is_json, memo.value


def _request_body_bytes(body: Any) -> bytes:
    u = sdk_types.unwrap(body)
    if u.is_raw:
        return base64.b64decode(u.payload) if u.type_name == sdk_types.RAW_BASE64 else str(u.payload).encode()
    if body is None:
        return b""
    return json_bytes(body)


def to_interaction(
    rec: dict[str, Any],
    name: str | None = None,
    *,
    source: Path | None = None,
    index: int | None = None,
    as_read: dict[str, Any] | None = None,
) -> tuple[Request, dict[str, Any]]:
    """The vcrpy request and response dict a checked record of ours replays as.

    A record another tool wrote goes through its adapter first (:func:`vcr_ext.formats.read_record`).

    ``source``/``index``: the file (and position in it) the record was read from; without
    them the response keeps the record itself (or ``as_read``, the record as its file held
    it, when an adapter turned that into ``rec``) for saving it back.
    """
    req, resp = rec["request"], rec["response"]
    url = req.get("url") or req["endpoint"]
    route = canonical.route(req.get("endpoint") or url)
    body = req.get("body")
    request = Request(req["method"], url, _request_body_bytes(body), {})
    u = sdk_types.unwrap(body)
    if not u.is_raw:
        # The loader already holds the parsed body: spare the matcher a parse.
        request.__dict__[_BODY_MEMO] = _BodyMemo(request._body, True, body)
    stored = StoredBody(resp["body"], resp.get("is_streaming", False), resp.get("sse_done"))
    # A record with headers was captured from the wire by vcr_ext and replays exactly as
    # it was; one without (llama-stack's) holds re-dumped SDK objects, which get the
    # content type of their kind and lose the explicit nulls the wire never had.
    captured = "headers" in resp
    payload, content_type = codec.to_wire(route, stored, redumped=not captured)
    headers = resp["headers"] if captured else {"content-type": content_type}
    status = resp.get("status", 200)
    response = {
        "status": {"code": status, "message": _reason(status)},
        "headers": {k: [v] for k, v in headers.items()},
        "body": {"string": payload},
        ORIGIN_KEY: Origin(name, (status, payload), source, index, None if source else (as_read or rec)),
    }
    return request, response


def _utf8_text(value: Any) -> bool:
    """Whether every string in a parsed JSON value can be written as UTF-8."""
    try:
        sse.dumps_compact(value)
    except ValueError:  # pydantic-core refuses lone surrogates
        return False
    return True


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _header_values(headers: Mapping[str, Any], name: str) -> list[str]:
    for key, values in headers.items():
        if key.lower() == name:
            return [values] if isinstance(values, str) else list(values)
    return []


def _decoded(raw: bytes, encodings: Iterable[str]) -> bytes | None:
    """The body with its content-encoding undone by vcrpy's decompressors; ``None`` for an unknown one."""
    for encoding in reversed([e.strip().lower() for e in encodings if e.strip()]):
        if encoding == "identity":
            continue
        decompress = AVAILABLE_DECOMPRESSORS.get(encoding)
        if decompress is None:
            return None
        raw = decompress(raw)
    return raw


def to_record(
    request: Request,
    response: Mapping[str, Any],
    *,
    test_id: str | None,
    keep_headers: Iterable[str] = scrub.KEEP_RESPONSE_HEADERS,
    ids: record.IdMap | None = None,
) -> dict[str, Any]:
    """The record of a vcrpy interaction: request headers dropped, response body typed and normalized.

    ``ids`` carries the ids normalized by earlier records of the same cassette: a request
    that sends one back (``GET /v1/chat/completions/<id>``) is recorded with the
    normalized id, which is the one a client sees, and so sends, on replay.
    """
    ids = {} if ids is None else ids
    url = record.substitute_ids(scrub.scrub_url(request.uri), ids)
    route = canonical.route(url)
    is_json, value = parsed_body(request)
    if is_json and not _utf8_text(value):
        # JSON with a lone surrogate escape ("\ud800"): no UTF-8 record can hold its
        # parsed text, so the body is kept as the text the client sent.
        is_json, value = False, request.body if isinstance(request.body, bytes) else b""
    if is_json:
        body = record.substitute_ids(value, ids)
    else:
        raw_request = bytes(value)
        try:
            body = sdk_types.envelope(sdk_types.RAW_TEXT, raw_request.decode("utf-8"))
        except UnicodeDecodeError:
            body = sdk_types.envelope(sdk_types.RAW_BASE64, base64.b64encode(raw_request).decode("ascii"))
    model = value.get("model") if is_json and isinstance(value, dict) else None
    model = model if model is not None else google.model_of(route)  # Google names it in the path
    status = int(response["status"]["code"])
    raw_headers: Mapping[str, Any] = response.get("headers") or {}
    raw = response["body"]["string"]
    raw = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
    kept = scrub.response_headers(raw_headers, keep_headers)
    encodings = _header_values(raw_headers, "content-encoding")
    decoded = _decoded(raw, encodings) if encodings else raw
    if decoded is None:
        # An encoding we cannot undo (br, zstd without their modules): keep the exact
        # bytes and the header, so the client decodes them on replay as it did live.
        kept["content-encoding"] = ", ".join(encodings)
        stored = StoredBody(sdk_types.envelope(sdk_types.RAW_BASE64, base64.b64encode(raw).decode()), False)
    else:
        stored = codec.to_stored(route, kept.get("content-type"), decoded)
    rhash = record.request_hash(request.method, url, body, test_id)
    stored = record.normalize_body(stored, rhash, route, ids)
    return record.build(
        test_id=test_id,
        # aiohttp hands vcrpy the method as the caller spelled it ("post"); the wire, and
        # every other client, says "POST".
        method=request.method.upper(),
        url=url,
        body=body,
        endpoint=route,
        model=model if isinstance(model, str) else None,
        response=stored,
        status=status,
        headers=kept,
    )


def file_stem(rec: dict[str, Any]) -> str:
    """The file name (without ``.json``) the format gives a record: its request hash."""
    req = rec["request"]
    return record.request_hash(
        req["method"], req.get("url") or req["endpoint"], req.get("body"), rec.get("test_id")
    )
