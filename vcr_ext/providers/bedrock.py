"""Amazon Bedrock (``bedrock-runtime``): AWS event-stream bodies as one typed item per frame, and back.

``converse_stream`` and ``invoke_model_with_response_stream`` answer with
``application/vnd.amazon.eventstream``: binary frames of a prelude (total and headers
length, prelude CRC32), typed headers (``:event-type``, ``:content-type``,
``:message-type``, ``:exception-type``), a payload and a message CRC32. Each frame is
stored as one item of ``response.body``:

- ``{"__type__": "botocore.bedrock-runtime.<Shape>", "__data__": <payload JSON>}`` when
  the frame is a standard event (or modelled exception) of the route's stream: ``<Shape>``
  is the member shape of botocore's service model for its ``:event-type`` (the
  ``ConverseStreamOutput`` member ``contentBlockDelta`` is ``ContentBlockDeltaEvent``), and
  the headers are derived from it on replay (:data:`EVENT_MEMBERS`), as SSE ``event:``
  names are for Anthropic. ``invoke_model_with_response_stream`` chunks (``PayloadPart``)
  carry the model's own JSON base64-encoded in ``bytes``: it is stored decoded, so a
  reviewer reads it (typed with the anthropic SDK's stream event class for Anthropic
  models, which the SDK's ``AnthropicBedrock`` client builds from exactly these chunks);
- ``{"__type__": "vcr_ext.eventstream.Frame", "__data__": {"headers": [[name, type, value],
  ...], "payload": <stored payload>}}`` otherwise: headers stored explicitly, in order, with
  their wire types (a frame of an unknown stream, one with extra or reordered headers,
  or any frame when botocore is not installed to name its shape).

Faithful by construction: a body is kept per frame only if re-encoding the items gives
the recorded bytes exactly (same header order and value types, same CRCs); a torn frame,
a CRC mismatch or an unknown header type keeps it raw, as before. Frames are split and
verified with botocore's own parser (``EventStreamBuffer``), so what is stored is what the
client reads. botocore has no event-stream encoder (it only ever decodes responses), so
:func:`encode_frame` is written here; it is the format as botocore's decoder reads it.

Replay imports nothing: the type names and the tables below say everything needed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import sdk_types
from ..sse import json_bytes

CONTENT_TYPE = "application/vnd.amazon.eventstream"
SERVICE = "bedrock-runtime"
TYPE_PREFIX = f"botocore.{SERVICE}."
FRAME = "vcr_ext.eventstream.Frame"

# Response headers botocore acts on (verified in botocore 1.43: parsers.py reads the request
# id and error type, retries/standard.py the retry hint), and the ones Bedrock's output
# shapes bind to members (InvokeModel*'s contentType, performanceConfigLatency, serviceTier).
RESPONSE_HEADERS = frozenset(
    {
        "x-amzn-requestid",  # ResponseMetadata.RequestId
        "x-amzn-errortype",  # the error code of a failed call (ValidationException, ...)
        "x-amzn-query-error",  # error code of query-compatible services
        "x-amz-retry-after",  # standard retry mode's backoff hint
        "x-amzn-bedrock-content-type",
        "x-amzn-bedrock-performanceconfig-latency",
        "x-amzn-bedrock-service-tier",
    }
)

# ``:event-type`` of each event shape and ``:exception-type`` of each modelled exception, as
# botocore-1.43's bedrock-runtime model names the stream union members (checked against the
# installed model by the tests). Replay derives the headers from these without botocore.
EVENT_MEMBERS = {
    "MessageStartEvent": "messageStart",
    "ContentBlockStartEvent": "contentBlockStart",
    "ContentBlockDeltaEvent": "contentBlockDelta",
    "ContentBlockStopEvent": "contentBlockStop",
    "MessageStopEvent": "messageStop",
    "ConverseStreamMetadataEvent": "metadata",
    "PayloadPart": "chunk",
}
EXCEPTION_MEMBERS = {
    "InternalServerException": "internalServerException",
    "ModelStreamErrorException": "modelStreamErrorException",
    "ValidationException": "validationException",
    "ThrottlingException": "throttlingException",
    "ModelTimeoutException": "modelTimeoutException",
    "ServiceUnavailableException": "serviceUnavailableException",
}
# The stream union of each streaming route (its last path segment) in the service model.
STREAM_UNIONS = {"converse-stream": "ConverseStreamOutput", "invoke-with-response-stream": "ResponseStream"}
# Non-stream JSON bodies whose output shape is exactly the body (no header-bound members).
_BODY_SHAPES = {"converse": "ConverseResponse", "count-tokens": "CountTokensResponse"}
_JSON = "application/json"

# Header value types by wire code, named as in the AWS event-stream specification.
HEADER_TYPES = ("bool", "bool", "byte", "short", "integer", "long", "bytes", "string", "timestamp", "uuid")
_CODES = {name: code for code, name in enumerate(HEADER_TYPES) if code != 1}
_INT_FORMATS = {"byte": "!b", "short": "!h", "integer": "!i", "long": "!q", "timestamp": "!q"}

Header = tuple[str, str, Any]
"""One header: name, type (:data:`HEADER_TYPES`), JSON value (bytes as base64, a uuid as text)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One event-stream message: its headers in wire order, and its payload bytes."""

    headers: tuple[Header, ...]
    payload: bytes


# ------------------------------------------------------------------ the wire format


def _encode_header(header: Header) -> bytes:
    name, kind, value = header
    raw_name = name.encode("utf-8")
    out = struct.pack("!B", len(raw_name)) + raw_name
    if kind == "bool":
        return out + struct.pack("!B", 0 if value else 1)
    out += struct.pack("!B", _CODES[kind])
    if kind in _INT_FORMATS:
        return out + struct.pack(_INT_FORMATS[kind], value)
    if kind == "uuid":
        return out + uuid.UUID(value).bytes
    data = value.encode("utf-8") if kind == "string" else base64.b64decode(value)
    return out + struct.pack("!H", len(data)) + data


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of one message: prelude, prelude CRC32, headers, payload, message CRC32."""
    headers = b"".join(_encode_header(h) for h in frame.headers)
    total = 12 + len(headers) + len(frame.payload) + 4
    prelude = struct.pack("!II", total, len(headers))
    # zlib.crc32 is the CRC32 AWS uses (botocore checks with binascii.crc32, the same function).
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + headers + frame.payload
    return message + struct.pack("!I", zlib.crc32(message))


def _typed_headers(data: bytes) -> tuple[Header, ...]:
    """The headers of a frame with their wire types (botocore's parser keeps only the values)."""
    from botocore.eventstream import DecodeUtils, EventStreamHeaderParser

    unpackers = EventStreamHeaderParser._HEADER_TYPE_MAP
    headers: list[Header] = []
    while data:
        name, used = DecodeUtils.unpack_utf8_string(data, 1)
        code, one = DecodeUtils.unpack_uint8(data[used:])
        value, size = unpackers[code](data[used + one :])
        data = data[used + one + size :]
        kind = HEADER_TYPES[code]
        if kind in ("bytes", "uuid"):
            value = str(uuid.UUID(bytes=value)) if kind == "uuid" else base64.b64encode(value).decode("ascii")
        headers.append((name, kind, value))
    return tuple(headers)


def decode(raw: bytes) -> list[Frame] | None:
    """The frames of an event-stream body as botocore reads them; ``None`` if it is not whole and valid.

    Not whole: a torn last frame (botocore waits for more bytes), a CRC mismatch, a
    header type or length botocore refuses, or botocore not installed.
    """
    try:
        from botocore.eventstream import EventStreamBuffer, ParserError
    except ImportError:
        return None
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    frames: list[Frame] = []
    at = 0
    try:
        for message in buffer:
            end = at + message.prelude.total_length
            headers = _typed_headers(raw[at + 12 : at + message.prelude.headers_end])
            frames.append(Frame(headers, bytes(message.payload)))
            at = end
    except (ParserError, KeyError, IndexError, ValueError, struct.error):
        return None
    return frames if at == len(raw) else None


# ------------------------------------------------------------------ frames <-> stored items


def _standard_headers(shape: str) -> tuple[Header, ...] | None:
    """The headers Bedrock sends with a frame of ``shape``, in its order; ``None`` if not derivable."""
    if shape in EVENT_MEMBERS:
        return ((":event-type", "string", EVENT_MEMBERS[shape]), (":content-type", "string", _JSON),
                (":message-type", "string", "event"))  # fmt: skip
    if shape in EXCEPTION_MEMBERS:
        # Not seen in the corpus: an exception frame in another order is stored with its headers.
        return ((":exception-type", "string", EXCEPTION_MEMBERS[shape]), (":content-type", "string", _JSON),
                (":message-type", "string", "exception"))  # fmt: skip
    return None


@functools.cache
def _union_members(union: str) -> dict[str, str] | None:
    """Member name -> shape name of a stream union in botocore's model; ``None`` without botocore."""
    shape = _shape(union)
    return None if shape is None else {name: member.name for name, member in shape.members.items()}


def stream_members(route: str) -> dict[str, str] | None:
    """The stream union's members (name -> shape) of a streaming route, from botocore's model."""
    union = STREAM_UNIONS.get(route.rsplit("/", 1)[-1])
    return None if union is None else _union_members(union)


def _shape_of(route: str, headers: tuple[Header, ...]) -> str | None:
    """The shape botocore's model gives this frame (by its ``:event-type``/``:exception-type``)."""
    members = stream_members(route)
    values = {name: value for name, kind, value in headers if kind == "string"}
    kind = values.get(":message-type")
    member = values.get(
        ":event-type" if kind == "event" else ":exception-type" if kind == "exception" else ""
    )
    return None if members is None or member is None else members.get(member)


def _stored_json(raw: bytes, type_name: str | None = None) -> Any | None:
    """JSON bytes as their stored value, if compact re-encoding gives these exact bytes; else ``None``."""
    try:
        value = json.loads(raw)
        same = json_bytes(value) == raw
    except ValueError:  # not JSON, not UTF-8, or a lone surrogate pydantic-core refuses
        return None
    return sdk_types.store(value, type_name) if same else None


def _stored_bytes(raw: bytes) -> Any:
    """Bytes as a stored value: their JSON if exact, else their text, else base64."""
    value = _stored_json(raw)
    if value is not None:
        return value
    try:
        return sdk_types.envelope(sdk_types.RAW_TEXT, raw.decode("utf-8"))
    except UnicodeDecodeError:
        return sdk_types.envelope(sdk_types.RAW_BASE64, base64.b64encode(raw).decode("ascii"))


def _chunk_type(route: str, payload: Any) -> str | None:
    """The anthropic SDK class of an Anthropic model's chunk (what ``AnthropicBedrock`` builds from it)."""
    from .. import typed_check

    names = sdk_types.anthropic_names()
    segments = route.split("/")
    is_anthropic = len(segments) > 2 and "anthropic." in segments[2]
    kind = payload.get("type") if isinstance(payload, dict) else None
    if names is None or not is_anthropic or not isinstance(kind, str) or kind in ("message", "count_tokens"):
        return None
    type_name = names.get(kind)
    return type_name if type_name is not None and typed_check.check(type_name, payload) is None else None


def _payload_part(route: str, payload: bytes) -> dict[str, Any] | None:
    """A ``PayloadPart`` payload, its base64 ``bytes`` stored decoded; ``None`` if it would not re-encode."""
    try:
        part = json.loads(payload)
        blob = part.get("bytes") if isinstance(part, dict) else None
        inner = base64.b64decode(blob, validate=True) if isinstance(blob, str) else None
    except (ValueError, binascii.Error):
        return None
    if inner is None or base64.b64encode(inner).decode("ascii") != blob or json_bytes(part) != payload:
        return None
    value = _stored_json(inner)
    if value is not None:
        value = sdk_types.store(
            sdk_types.unwrap(value).payload, _chunk_type(route, sdk_types.unwrap(value).payload)
        )
    else:
        value = _stored_bytes(inner)
    return {**part, "bytes": value}


def _fits(type_name: str, payload: Any) -> bool:
    # A payload its shape can never hold is not typed: a recording must load (record.check).
    from .. import typed_check

    return typed_check.check(type_name, payload) is None


def _item(route: str, frame: Frame) -> Any:
    """One frame's stored item: its payload (typed if a shape fits), framed explicitly if not derivable."""
    shape = _shape_of(route, frame.headers)
    stored: Any = None
    if shape == "PayloadPart":
        part = _payload_part(route, frame.payload)
        if part is not None and _fits(TYPE_PREFIX + shape, part):
            stored = sdk_types.envelope(TYPE_PREFIX + shape, part)
    elif shape is not None:
        value = _stored_json(frame.payload)
        payload = sdk_types.unwrap(value).payload
        if value is not None and _fits(TYPE_PREFIX + shape, payload):
            stored = sdk_types.envelope(TYPE_PREFIX + shape, payload)
    if stored is not None and _standard_headers(shape or "") == frame.headers:
        return stored  # the usual frame: its headers are derived on replay
    if stored is None:
        stored = _stored_bytes(frame.payload)  # no shape fits: plain JSON, or the bytes as they were
    return sdk_types.envelope(FRAME, {"headers": [list(h) for h in frame.headers], "payload": stored})


def to_items(route: str, raw: bytes) -> list[Any] | None:
    """The stored items of an event-stream body; ``None`` to keep it raw (they would not replay exactly)."""
    frames = decode(raw)
    if not frames:
        return None
    items = [_item(route, f) for f in frames]
    try:
        same = encode(items) == raw  # faithful by construction, at record time only
    except (ValueError, TypeError, KeyError, struct.error, binascii.Error):
        same = False
    return items if same else None


def is_stream(items: Iterable[Any]) -> bool:
    """Whether stored stream items are event-stream frames (their first item's type says so)."""
    first = next(iter(items), None)
    type_name = first.get(sdk_types.TYPE_KEY) if isinstance(first, dict) else None
    return isinstance(type_name, str) and (type_name == FRAME or type_name.startswith(TYPE_PREFIX))


def _payload_bytes(value: Any) -> bytes:
    u = sdk_types.unwrap(value)
    if u.type_name == sdk_types.RAW_BASE64:
        return base64.b64decode(u.payload)
    if u.type_name == sdk_types.RAW_TEXT:
        return str(u.payload).encode("utf-8")
    if u.type_name == TYPE_PREFIX + "PayloadPart" and isinstance(u.payload, dict) and "bytes" in u.payload:
        blob = base64.b64encode(_payload_bytes(u.payload["bytes"])).decode("ascii")
        return json_bytes({**u.payload, "bytes": blob})
    return json_bytes(u.payload)


def _frame_of(item: Any) -> Frame:
    u = sdk_types.unwrap(item)
    if u.type_name == FRAME:
        headers = tuple((str(n), str(k), v) for n, k, v in u.payload["headers"])
        return Frame(headers, _payload_bytes(u.payload["payload"]))
    shape = (u.type_name or "").removeprefix(TYPE_PREFIX)
    standard = _standard_headers(shape) if u.type_name and u.type_name.startswith(TYPE_PREFIX) else None
    if standard is None:
        raise ValueError(f"{u.type_name!r} is not an event-stream frame whose headers can be derived")
    return Frame(standard, _payload_bytes(item))


def underivable_frame(items: list[Any]) -> tuple[int, str] | None:
    """(index, problem) of the first stream item neither a Frame nor a shape with derivable headers."""
    for i, item in enumerate(items):
        type_name = sdk_types.unwrap(item).type_name
        if type_name == FRAME:
            continue
        if type_name is None or not type_name.startswith(TYPE_PREFIX):
            return i, f"an event-stream item is a {FRAME} or a {TYPE_PREFIX}<event shape>, got {type_name!r}"
        if _standard_headers(type_name.removeprefix(TYPE_PREFIX)) is None:
            known = ", ".join([*EVENT_MEMBERS, *EXCEPTION_MEMBERS])
            return i, f"{type_name!r} is no stream event whose frame headers are known (one of {known})"
    return None


def encode(items: Iterable[Any]) -> bytes:
    """The event-stream body of stored items: the bytes Bedrock sent."""
    return b"".join(encode_frame(_frame_of(item)) for item in items)


# ------------------------------------------------------------------ non-stream bodies, and checks


def classify(route: str, payload: Any, *, streaming: bool) -> str | None:
    """The type of a non-stream Bedrock JSON body: the botocore output shape, or Anthropic's ``Message``.

    ``converse`` and ``count-tokens`` bodies are their operation's output shape whole;
    an ``invoke`` body is the model's own JSON, typed only for Anthropic models (an
    Anthropic Messages ``Message``); error bodies (no ``output``) stay plain JSON.
    """
    if streaming or not isinstance(payload, dict):
        return None
    action = route.rsplit("/", 1)[-1]
    if action == "invoke":
        segments = route.split("/")
        names = sdk_types.anthropic_names()
        is_anthropic = len(segments) > 2 and "anthropic." in segments[2]
        return names["message"] if names and is_anthropic and payload.get("type") == "message" else None
    shape = _BODY_SHAPES.get(action)
    required = {"converse": "output", "count-tokens": "inputTokens"}.get(action)
    if shape is None or required not in payload or _shape(shape) is None:
        return None
    return TYPE_PREFIX + shape


@functools.cache
def _shape(name: str) -> Any:
    model = _service_model()
    if model is None:
        return None
    from botocore.model import NoShapeFoundError

    try:
        return model.shape_for(name)
    except NoShapeFoundError:
        return None


@functools.cache
def _service_model() -> Any:
    """botocore's bedrock-runtime service model; ``None`` without botocore (or without that model)."""
    try:
        import botocore.session
        from botocore.exceptions import DataNotFoundError
    except ImportError:
        return None
    try:
        return botocore.session.get_session().get_service_model(SERVICE)
    except DataNotFoundError:
        return None


def _kinds(shape: Any, defs: dict[str, Any], *, stored_blob: bool) -> Any:
    """The JSON kinds a botocore shape admits, as a pydantic-core schema (``None``: any kind)."""
    from pydantic_core import core_schema as cs

    kind = shape.type_name
    if kind == "structure":
        if shape.metadata.get("document"):
            return None
        if shape.name not in defs:
            defs[shape.name] = cs.dict_schema(strict=True, ref=shape.name)  # placeholder for recursion
            fields = {}
            for name, member in shape.members.items():
                if member.serialization.get("location"):
                    continue  # bound to a header, not in the body
                sub = _kinds(member, defs, stored_blob=stored_blob)
                if sub is not None:
                    fields[name] = cs.typed_dict_field(cs.nullable_schema(sub), required=False)
            defs[shape.name] = cs.typed_dict_schema(
                fields, extra_behavior="ignore", total=False, ref=shape.name
            )
        return cs.definition_reference_schema(shape.name)
    if kind == "list":
        item = _kinds(shape.member, defs, stored_blob=stored_blob)
        return cs.list_schema(None if item is None else cs.nullable_schema(item), strict=True)
    if kind == "map":
        value = _kinds(shape.value, defs, stored_blob=stored_blob)
        return cs.dict_schema(None, None if value is None else cs.nullable_schema(value), strict=True)
    if kind == "blob" and stored_blob:
        return None  # a PayloadPart's bytes are stored decoded: any stored value
    if kind in ("string", "blob"):
        return cs.str_schema(strict=True)
    if kind == "timestamp":
        return cs.union_schema([cs.str_schema(strict=True), cs.float_schema(strict=True)])
    if kind == "boolean":
        return cs.bool_schema(strict=True)
    if kind in ("integer", "long", "float", "double", "byte", "short"):
        return cs.float_schema(strict=True)
    return None


@functools.lru_cache(maxsize=256)
def validator(type_name: str, *, many: bool = False) -> Any:
    """A pydantic-core validator of the kinds of ``botocore.bedrock-runtime.<Shape>``; ``None`` if unknown."""
    from pydantic_core import SchemaValidator
    from pydantic_core import core_schema as cs

    shape = _shape(type_name.removeprefix(TYPE_PREFIX)) if type_name.startswith(TYPE_PREFIX) else None
    if shape is None:
        return None
    defs: dict[str, Any] = {}
    root = _kinds(shape, defs, stored_blob=shape.name == "PayloadPart")
    if root is None:
        return None
    return SchemaValidator(cs.definitions_schema(cs.list_schema(root) if many else root, list(defs.values())))


def frame_problem(data: Any) -> tuple[str, str] | None:
    """(path below ``__data__``, problem) of a Frame that cannot be encoded; ``None`` if it can."""
    if not isinstance(data, dict) or not isinstance(data.get("headers"), list) or "payload" not in data:
        return "", f"{FRAME} holds an object of headers (a list) and payload"
    for i, header in enumerate(data["headers"]):
        ok = isinstance(header, list) and len(header) == 3 and isinstance(header[0], str)
        if not ok or header[1] not in HEADER_TYPES:
            return f".headers[{i}]", f"expected [name, type, value] with a type among {', '.join(_CODES)}"
        try:
            _encode_header((header[0], header[1], header[2]))
        except (ValueError, TypeError, struct.error, binascii.Error, AttributeError) as err:
            return f".headers[{i}]", f"a {header[1]} header cannot hold {header[2]!r}: {err}"
    return None
