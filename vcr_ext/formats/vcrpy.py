"""Plain vcrpy cassettes (YAML or JSON serializer) <-> records of the format.

A vcrpy cassette is ``{"version": 1, "interactions": [{"request": ..., "response": ...}]}``
written by vcrpy's YAML or JSON serializer. What real cassettes hold, and this module
reads:

- ``request``: ``method``, ``uri``, ``body`` (text, ``!!binary`` bytes, ``null``, or
  ``{string: ...}``), ``headers`` as a dict of lists (or of plain strings);
- ``response``: ``status: {code, message}``, ``headers`` as a dict of lists, ``body:
  {string: ...}`` holding the body as the server sent it: a whole SSE stream in one
  string, gzip/deflate/br bytes as ``!!binary`` (with ``content-encoding``), any binary
  body as ``!!binary``;
- cassettes from before vcrpy 1.0: a bare list of interactions whose request has
  ``protocol``/``host``/``port``/``path`` instead of ``uri``, and response headers as a
  list of ``"Name: value"`` lines (vcrpy's own migration rules are applied);
- ``{"requests": [...], "responses": [...]}``, vcrpy's in-memory cassette dict, which
  some tools write as is.

YAML is read with vcrpy's safe loader (no ``!!python/object`` tag is ever executed),
JSON with its JSON serializer; requests are built with ``vcr.request.Request._from_dict``
and response bodies made bytes with ``vcr.serializers.compat.convert_to_bytes``, so a
cassette means here what it means to vcrpy. Each interaction then becomes a record with
:func:`vcr_ext.interactions.to_record`, the recorder's own path: request headers
dropped, compression undone, SSE typed per event, ids normalized.

Writing (:func:`write`) goes the other way with :func:`vcr_ext.interactions.to_interaction`
(what replay would serve) and vcrpy's ``vcr.serialize.serialize``, so plain vcrpy
replays the result as vcr_ext would have.
"""

from __future__ import annotations

import base64
import gzip
import http
import io
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import yaml
from vcr import migration
from vcr import serialize as vcr_serialize
from vcr.filters import AVAILABLE_DECOMPRESSORS
from vcr.request import Request
from vcr.serializers import compat, jsonserializer, yamlserializer

from .. import atomic, record, scrub
from ..errors import CassetteFormatError, VcrExtError
from ..interactions import ORIGIN_KEY, to_interaction, to_record
from ..secrets import SecretScanner
from . import read_record

__all__ = [
    "SERIALIZERS",
    "Serializer",
    "UnwritableCassetteError",
    "VcrpyCassetteError",
    "dumps",
    "interaction_records",
    "is_vcrpy_cassette",
    "read",
    "read_interactions",
    "serializer_for",
    "write",
]

Serializer = Literal["yaml", "json"]
SERIALIZERS: dict[str, Any] = {"yaml": yamlserializer, "json": jsonserializer}
YAML_SUFFIXES = (".yaml", ".yml")
# Tags vcrpy < 1.0 wrote for its own objects; its migration strips them before a safe load.
_OLD_TAGS = ("!!python/object:vcr.request.Request", "!!python/object/apply:")
_BODY_KEYS = frozenset({"string", "base64_string", "encoding"})


class VcrpyCassetteError(CassetteFormatError):
    """A vcrpy cassette that cannot be read: names the file, the interaction (0-based) and the field."""

    def __init__(
        self, path: str | os.PathLike[str], interaction: int | None, field: str, problem: str
    ) -> None:
        super().__init__(path, interaction, field, problem)
        self.interaction = interaction
        where = self.path if interaction is None else f"{self.path}, interaction {interaction}"
        # vcrpy calls them interactions; "record" would point at our format.
        self.args = (f"{where}: field '{field}': {problem}",)


class UnwritableCassetteError(VcrExtError, ValueError):
    """Records that the chosen vcrpy serializer cannot hold (binary bodies in JSON)."""


# -- reading ----------------------------------------------------------------------


def serializer_for(path: str | os.PathLike[str], text: str | None = None) -> Serializer:
    """The serializer a cassette file was written with: by its suffix, else by its first character."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in YAML_SUFFIXES or text is None:
        return "yaml"
    return "json" if text.lstrip()[:1] in ("{", "[") else "yaml"


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise VcrpyCassetteError(path, None, "(file)", f"cannot be read: {err.strerror or err}") from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        # Both serializers write UTF-8; binary bodies are base64 inside !!binary.
        raise VcrpyCassetteError(path, None, "(file)", f"is not UTF-8 text: {err}") from err


def _parse(path: Path, text: str) -> Any:
    """The cassette's document, parsed by the serializer vcrpy would use for it."""
    if serializer_for(path, text) == "json":
        try:
            return jsonserializer.deserialize(text)
        except json.JSONDecodeError as err:
            problem = f"is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
            raise VcrpyCassetteError(path, None, "(file)", problem) from err
    if any(tag in text for tag in _OLD_TAGS):
        # A cassette of vcrpy < 1.0 pickled its requests; vcrpy's migration strips those tags.
        text = migration.preprocess_yaml(text)
    try:
        return yamlserializer.deserialize(text)
    except yaml.constructor.ConstructorError as err:
        # An unsafe tag (!!python/object/apply:...) or a bad !!binary value: vcrpy cannot load it either.
        problem = f"cannot be read by vcrpy's safe YAML loader: {err.problem}{_mark(err)}"
        raise VcrpyCassetteError(path, None, "(file)", problem) from err
    except yaml.YAMLError as err:
        detail = getattr(err, "problem", None) or str(err)
        raise VcrpyCassetteError(path, None, "(file)", f"is not valid YAML: {detail}{_mark(err)}") from err


def _mark(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _looks_like_old_request(request: Any) -> bool:
    return isinstance(request, dict) and "uri" not in request and {"host", "path"} <= request.keys()


def _shape(doc: Any) -> str | None:
    """Which vcrpy layout a parsed document has (``"v1"``, ``"old"``, ``"dict"``), or ``None``."""
    if isinstance(doc, dict):
        if "interactions" in doc:
            return "v1"
        if isinstance(doc.get("requests"), list) and isinstance(doc.get("responses"), list):
            return "dict"
        return None
    if isinstance(doc, list) and doc and all(isinstance(i, dict) for i in doc):
        first = doc[0]
        request = first.get("request")
        if (
            "response" in first
            and isinstance(request, dict)
            and ("uri" in request or _looks_like_old_request(request))
        ):
            return "old"
    return None


def is_vcrpy_cassette(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file holding a vcrpy cassette (any version's layout, YAML or JSON).

    Only the top-level shape is looked at, so a cassette with a bad interaction is still
    one (reading it then names what is wrong). A file of our own format is not one: its
    requests have a ``url``, vcrpy's a ``uri``.
    """
    file = Path(path)
    if not file.is_file():
        return False
    try:
        return _shape(_parse(file, _text(file))) is not None
    except CassetteFormatError:
        return False


def _raw_interactions(path: Path, doc: Any) -> list[tuple[Any, Any, bool]]:
    """``(request, response, old layout)`` of each interaction of a parsed cassette, unchecked."""
    shape = _shape(doc)
    if shape == "v1":
        version = doc.get("version", 1)
        if version != 1:
            problem = f"is {version!r}: vcrpy has only ever written version 1"
            raise VcrpyCassetteError(path, None, "version", problem)
        items = doc["interactions"]
        if not isinstance(items, list):
            raise VcrpyCassetteError(path, None, "interactions", f"must be a list, not {_kind(items)}")
        out: list[tuple[Any, Any, bool]] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise VcrpyCassetteError(path, i, "(interaction)", f"must be a mapping, not {_kind(item)}")
            for key in ("request", "response"):
                if key not in item:
                    raise VcrpyCassetteError(path, i, key, "is missing")
            out.append((item["request"], item["response"], False))
        return out
    if shape == "dict":
        requests, responses = doc["requests"], doc["responses"]
        if len(requests) != len(responses):
            problem = f"has {len(requests)} requests and {len(responses)} responses: they come in pairs"
            raise VcrpyCassetteError(path, None, "responses", problem)
        return [(q, r, False) for q, r in zip(requests, responses, strict=True)]
    if shape == "old":
        out = []
        for i, item in enumerate(doc):
            for key in ("request", "response"):
                if key not in item:
                    raise VcrpyCassetteError(path, i, key, "is missing")
            out.append((item["request"], item["response"], _looks_like_old_request(item["request"])))
        return out
    problem = (
        "is not a vcrpy cassette: expected a mapping with 'version: 1' and a list of "
        f"'interactions' (each a request and a response), found {_kind(doc)}"
    )
    raise VcrpyCassetteError(path, None, "(file)", problem)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r:.40}"


def _headers(value: Any, field: str, fail: _Fail) -> dict[str, list[str]]:
    """Headers in vcrpy's shape, a dict of lists of strings, from any shape a cassette holds them in."""
    out: dict[str, list[str]] = {}

    def add(name: Any, values: Any, where: str) -> None:
        if not isinstance(name, str):
            fail(where, f"a header name must be text, not {_kind(name)}")
        items = values if isinstance(values, list | tuple) else [values]
        for v in items:
            if isinstance(v, bytes):
                v = v.decode("latin-1")
            elif isinstance(v, bool) or not isinstance(v, str | int | float):
                fail(f"{where}.{name}", f"a header value must be text, not {_kind(v)}")
            # YAML reads an unquoted `content-length: 70` as a number; on the wire it is text.
            out.setdefault(name, []).append(str(v))

    if value is None:
        return out
    if isinstance(value, dict):
        for name, values in value.items():
            add(name, values, field)
        return out
    if isinstance(value, list | tuple):
        # vcrpy < 1.0 wrote response headers as raw "Name: value\r\n" lines and request
        # headers as a frozenset of pairs (a list holding the list of pairs once untagged).
        items: Sequence[Any] = value
        if (
            len(items) == 1
            and isinstance(items[0], list | tuple)
            and all(isinstance(p, list | tuple) for p in items[0])
        ):
            items = items[0]
        for i, item in enumerate(items):
            if isinstance(item, str):
                name, sep, rest = item.partition(":")
                if not sep:
                    fail(f"{field}[{i}]", f"is not a 'Name: value' header line: {item!r:.60}")
                add(name.strip(), rest.strip(), field)
            elif isinstance(item, list | tuple) and len(item) == 2:
                add(item[0], item[1], field)
            else:
                fail(
                    f"{field}[{i}]",
                    f"must be a 'Name: value' line or a [name, value] pair, not {_kind(item)}",
                )
        return out
    fail(field, f"must be a mapping of header names to lists of values, not {_kind(value)}")


class _Fail:
    """Raises the error of one interaction's field."""

    def __init__(self, path: Path, index: int) -> None:
        self.path, self.index = path, index

    def __call__(self, field: str, problem: str) -> NoReturn:
        raise VcrpyCassetteError(self.path, self.index, field, problem)


def _body_value(value: Any, field: str, fail: _Fail) -> Any:
    """The body out of ``{string: ...}`` (or Ruby VCR's ``{base64_string: ...}``), else as it is."""
    if isinstance(value, dict) and value and value.keys() <= _BODY_KEYS:
        if "base64_string" in value:
            try:
                return base64.b64decode(str(value["base64_string"]), validate=False)
            except ValueError as err:
                fail(f"{field}.base64_string", f"is not base64: {err}")
        if "string" not in value:
            fail(f"{field}.string", "is missing")
        return value["string"]
    return value


def _parsed_body(value: Any) -> str:
    """A JSON body some projects' serializers store parsed, under ``parsed_body``, as its text.

    pydantic-ai's test serializer (copied by other projects) writes JSON bodies that way and
    gives them back with ``json.dumps``: the same text is what its own replay sent.
    """
    return json.dumps(value)


def _request(raw: Any, old: bool, fail: _Fail) -> Request:
    if not isinstance(raw, dict):
        fail("request", f"must be a mapping, not {_kind(raw)}")
    raw = dict(raw)
    if old:
        # vcrpy's migration: protocol, host, port and path make the uri.
        for key in migration.PARTS:
            if key not in raw:
                fail(f"request.{key}", "is missing (a cassette of vcrpy < 1.0 names the URL by its parts)")
        parts = {k: raw.pop(k) for k in migration.PARTS}
        if parts["protocol"] not in ("http", "https"):
            fail("request.protocol", f"must be http or https, not {_kind(parts['protocol'])}")
        try:
            parts["port"] = int(parts["port"])
        except (TypeError, ValueError):
            fail("request.port", f"must be a port number, not {_kind(parts['port'])}")
        raw["uri"] = migration.build_uri(**parts)
    for key in ("method", "uri"):
        if key not in raw:
            fail(f"request.{key}", "is missing")
        if not isinstance(raw[key], str) or not raw[key]:
            fail(f"request.{key}", f"must be non-empty text, not {_kind(raw[key])}")
    parts_ = urlsplit(raw["uri"])
    if not parts_.scheme or not parts_.netloc:
        fail("request.uri", f"is not an absolute URL: {raw['uri']!r:.80}")
    body = _body_value(raw.get("body"), "request.body", fail)
    if "body" not in raw and raw.get("parsed_body") is not None:
        body = _parsed_body(raw["parsed_body"])
    if isinstance(body, list | tuple) and all(isinstance(b, bytes | str) for b in body):
        # An iterator body, which vcrpy stores as the list of its chunks.
        body = b"".join(b.encode("utf-8") if isinstance(b, str) else b for b in body)
    elif isinstance(body, io.BytesIO):
        body = body.getvalue()
    elif not (body is None or isinstance(body, str | bytes | dict | list)):
        fail("request.body", f"must be text, bytes or null, not {_kind(body)}")
    headers = _headers(raw.get("headers"), "request.headers", fail)
    request: Request = Request._from_dict(
        {"method": raw["method"], "uri": raw["uri"], "body": body, "headers": headers}
    )
    return request


def _status(value: Any, fail: _Fail) -> dict[str, Any]:
    code_field = "response.status.code" if isinstance(value, dict) else "response.status"
    code = value.get("code") if isinstance(value, dict) else value
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
        problem = "is missing" if code is None else f"must be an HTTP status code, not {_kind(code)}"
        fail(code_field, problem)
    message = value.get("message") if isinstance(value, dict) else None
    if not isinstance(message, str):
        try:
            message = http.HTTPStatus(code).phrase
        except ValueError:
            message = ""
    return {"code": code, "message": message}


def _response(raw: Any, fail: _Fail) -> dict[str, Any]:
    if not isinstance(raw, dict):
        fail("response", f"must be a mapping, not {_kind(raw)}")
    if "status" not in raw:
        fail("response.status", "is missing")
    status = _status(raw["status"], fail)
    headers = _headers(raw.get("headers"), "response.headers", fail)
    if "body" not in raw and raw.get("parsed_body") is not None:
        raw = {**raw, "body": {"string": _parsed_body(raw["parsed_body"])}}
    if "body" not in raw:
        fail("response.body", "is missing")
    body = _body_value(raw["body"], "response.body", fail)
    field = "response.body.string" if isinstance(raw["body"], dict) else "response.body"
    if body is not None and not isinstance(body, str | bytes):
        fail(field, f"must be text or bytes, not {_kind(body)}")
    if isinstance(body, str):
        try:
            body.encode("utf-8")
        except UnicodeEncodeError as err:
            # JSON can hold lone surrogate escapes that no byte string can.
            fail(field, f"holds text that cannot be sent as UTF-8: {err.reason} at {err.start}")
    # vcrpy's own loader step: the body as the bytes the stubs hand to the client.
    response: dict[str, Any] = compat.convert_to_bytes(
        {"status": status, "headers": headers, "body": {"string": body if body is not None else b""}}
    )
    return response


def read_interactions(path: str | os.PathLike[str]) -> list[tuple[Request, dict[str, Any]]]:
    """Every interaction of a vcrpy cassette, in order, as vcrpy replays them: ``(Request, response dict)``.

    A bad file, interaction or field raises :class:`VcrpyCassetteError` naming them.
    """
    file = Path(path)
    doc = _parse(file, _text(file))
    raw = _raw_interactions(file, doc)
    if not raw:
        raise VcrpyCassetteError(
            file, None, "interactions", "is empty: the cassette holds nothing to convert"
        )
    out: list[tuple[Request, dict[str, Any]]] = []
    for i, (req, resp, old) in enumerate(raw):
        fail = _Fail(file, i)
        out.append((_request(req, old, fail), _response(resp, fail)))
    return out


def interaction_records(
    path: str | os.PathLike[str],
    interactions: Iterable[tuple[Request, Mapping[str, Any]]],
    *,
    test_id: str | None = None,
    keep_headers: Iterable[str] = scrub.KEEP_RESPONSE_HEADERS,
) -> Iterator[dict[str, Any]]:
    """The record of each interaction, in order, as vcr_ext's recorder would have written it.

    ``path`` only names the cassette in errors. Ids normalized by earlier records are
    substituted in later ones, as in one recording session.
    """
    ids: record.IdMap = {}
    keep = frozenset(keep_headers)
    for i, (request, response) in enumerate(interactions):
        response = _decompressed(response, _Fail(Path(path), i))
        try:
            yield to_record(request, response, test_id=test_id, keep_headers=keep, ids=ids)
        except Exception as err:
            # The recorder's path was built for what a live client sends and receives; any
            # failure here is a body a client could not have read either (a corrupt gzip
            # stream, a truncated deflate body), reported as the cassette's error.
            problem = f"cannot be converted: {type(err).__name__}: {err}"
            raise VcrpyCassetteError(path, i, "response.body.string", problem) from err


def _undo(encoding: str, body: bytes) -> bytes | None:
    """``body`` with one content-encoding undone as a client undoes it; ``None`` if unknown here."""
    if encoding == "gzip" or encoding == "x-gzip":
        return gzip.decompress(body)  # every member, and an error for a truncated one
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            # Servers send raw deflate too; HTTP clients (httpx, urllib3) accept both.
            return zlib.decompress(body, -zlib.MAX_WBITS)
    if encoding in AVAILABLE_DECOMPRESSORS:
        decompressed: bytes = AVAILABLE_DECOMPRESSORS[encoding](body)
        return decompressed
    return None


def _decompressed(response: Mapping[str, Any], fail: _Fail) -> Mapping[str, Any]:
    """The response with its content-encoding undone, strictly, as the client would have undone it.

    vcrpy's own decompressors hand a body back unchanged when it does not decompress
    ("already decoded"); a replaying client would fail on it instead, so here a body
    that is not what its header says is the cassette's error. An encoding not known
    here (br without its module, zstd) is left to the recorder, which keeps the bytes
    and the header for the client to decode on replay.
    """
    headers: Mapping[str, list[str]] = response.get("headers") or {}
    names = [k for k in headers if k.lower() == "content-encoding"]
    if not names:
        return response
    encodings = [e.strip().lower() for k in names for v in headers[k] for e in v.split(",") if e.strip()]
    body = response["body"]["string"] or b""
    for encoding in reversed(encodings):
        if encoding == "identity":
            continue
        try:
            undone = _undo(encoding, body)
        except (OSError, EOFError, zlib.error) as err:
            problem = f"is not {encoding} data, though content-encoding says so ({err})"
            fail("response.body.string", problem)
        if undone is None:
            return response
        body = undone
    kept = {k: v for k, v in headers.items() if k.lower() != "content-encoding"}
    return {**response, "headers": kept, "body": {**response["body"], "string": body}}


def read(
    path: str | os.PathLike[str],
    *,
    test_id: str | None = None,
    keep_headers: Iterable[str] = scrub.KEEP_RESPONSE_HEADERS,
) -> list[dict[str, Any]]:
    """The records of a vcrpy cassette, in order (request headers dropped, bodies typed)."""
    return list(
        interaction_records(path, read_interactions(path), test_id=test_id, keep_headers=keep_headers)
    )


# -- writing ----------------------------------------------------------------------


def dumps(records: Sequence[dict[str, Any]], serializer: Serializer = "yaml") -> str:
    """The text of a vcrpy cassette replaying ``records`` as vcr_ext replays them."""
    if serializer not in SERIALIZERS:
        raise ValueError(f"serializer={serializer!r}: expected one of {', '.join(SERIALIZERS)}")
    requests: list[Request] = []
    responses: list[dict[str, Any]] = []
    for i, rec in enumerate(records):
        # Through the adapter, as replay reads it: a llama-stack record is written as its HTTP exchange.
        request, response = to_interaction(read_record(rec))
        body = response["body"]["string"]
        if serializer == "json" and isinstance(body, bytes):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise UnwritableCassetteError(
                    f"record {i}: the response body is binary ({len(body)} bytes), which vcrpy's json "
                    "serializer cannot hold; write the cassette with the yaml serializer"
                ) from None
        requests.append(request)
        # The origin is vcr_ext's own bookkeeping, not part of what vcrpy stores.
        responses.append({k: v for k, v in response.items() if k != ORIGIN_KEY})
    text: str = vcr_serialize.serialize(
        {"requests": requests, "responses": responses}, SERIALIZERS[serializer]
    )
    return text


def write(
    path: str | os.PathLike[str],
    records: Sequence[dict[str, Any]],
    serializer: Serializer = "yaml",
    *,
    save_checks: Sequence[Any] | None = None,
) -> None:
    """Write ``records`` as a plain vcrpy cassette at ``path``, in one atomic step.

    ``save_checks`` are run on ``[(path, record), ...]`` before anything is written (as
    the persister's are); by default the secret scanner, so no credential reaches the
    file. Pass ``()`` when the records were scanned already.
    """
    file = Path(path)
    checks = (SecretScanner(),) if save_checks is None else save_checks
    for check in checks:
        check([(file, rec) for rec in records])
    atomic.write_atomic(file, dumps(records, serializer).encode("utf-8"))
