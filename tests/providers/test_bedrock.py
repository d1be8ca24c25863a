"""Amazon Bedrock (``bedrock-runtime``): event-stream frames typed one per frame and replayed byte for byte.

The bytes served are real Bedrock responses from the shared corpus
(``$VCR_EXT_CORPUS/providers/pydantic-ai/bedrock/``, recorded by pydantic-ai's suite against
the live API; see its README), served from a loopback server as recorded. Nothing of the
corpus is copied into the repository. The corpus files used:

- ``test_bedrock_model_stream.yaml``: a ``converse_stream`` text stream (Nova Micro);
- ``test_bedrock_model_thinking_part_stream.yaml``: a stream with reasoning deltas (Claude);
- ``test_bedrock_model_code_execution_tool_stream.yaml``: tool use and tool result blocks;
- ``test_bedrock_model.yaml``: a non-stream ``converse`` message;
- ``test_bedrock_error.yaml``: a 400 for an unknown model;
- every ``application/vnd.amazon.eventstream`` body of the folder, at the codec level.

pydantic-ai removed the ``x-amzn-requestid`` header before committing them, and the error
body's ``x-amzn-errortype``, so the server adds them (in the form Bedrock sends) to check
that botocore's ``RequestId`` and error code survive a replay.

The corpus holds no ``invoke_model_with_response_stream`` capture: those tests frame real
Anthropic stream events (``providers/pydantic-ai/anthropic/``) as Bedrock does, one
``chunk`` event per model event with the event's JSON base64-encoded in ``bytes``, with an
event-stream assembler written here (:func:`_frame`); botocore's decoder, which checks
both CRCs, is the judge that these frames are well formed.

Asynchronous clients: boto3 has none (aiobotocore is not installed); the anthropic SDK's
``AsyncAnthropicBedrock`` is one, and is tested on the ``invoke`` stream.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic_ai_corpus import (
    Recording,
    assert_none_written,
    cassette_records,
    corpus_cassette,
    interactions,
    written_bytes,
)

boto3 = pytest.importorskip("boto3", reason="boto3 is not installed (tox -e providers installs it)")

import vcr_ext  # noqa: E402
from vcr_ext import codec, record, sdk_types, typed_check  # noqa: E402
from vcr_ext.demo.server import FakeOpenAIServer  # noqa: E402
from vcr_ext.errors import CassetteFormatError  # noqa: E402
from vcr_ext.providers import bedrock  # noqa: E402

TEXT_STREAM = "test_bedrock_model_stream.yaml"
THINKING_STREAM = "test_bedrock_model_thinking_part_stream.yaml"
TOOL_STREAM = "test_bedrock_model_code_execution_tool_stream.yaml"
MESSAGE = "test_bedrock_model.yaml"
ERROR = "test_bedrock_error.yaml"
ANTHROPIC_STREAM = "test_request_stream_fallback_for_high_max_tokens.yaml"
REQUEST_ID = "5c3f8a2e-0b1d-4e6f-9a7c-2d4e6f8a0b1c"
ERROR_TYPE = "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
EVENT_STREAM = "application/vnd.amazon.eventstream"
ANTHROPIC_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}


# ------------------------------------------------------------------ the corpus


class Recorded(Recording):
    """One recorded Bedrock interaction: the path and body the client sent, and what Bedrock answered."""

    def __init__(self, interaction: dict[str, Any]) -> None:
        super().__init__(interaction)
        request = interaction["request"]
        self.path = "/" + self.uri.split("://", 1)[1].split("/", 1)[1]
        self.model_id = self.path.split("/")[2].replace("%3A", ":")
        # The request as the SDK call's arguments (only the SDK tests use it; a few bodies in
        # the corpus are cut short and are not JSON).
        try:
            self.request: dict[str, Any] = request.get("parsed_body") or json.loads(request["body"])
        except ValueError:
            self.request = {}
        self.headers.append(("x-amzn-requestid", REQUEST_ID))
        if self.status >= 400:
            self.headers.append(("x-amzn-errortype", ERROR_TYPE))
        self.streaming = self.content_type == EVENT_STREAM  # binary frames, not SSE

    def chunks(self) -> list[bytes]:
        """The body in uneven HTTP chunks (frames cut mid-way), as a network delivers them."""
        return [self.body[i : i + 97] for i in range(0, len(self.body), 97)] or [b""]

    @classmethod
    def wanted(cls, interaction: dict[str, Any]) -> bool:
        return "bedrock-runtime." in interaction["request"]["uri"]


def _first(corpus_dir: Path, name: str) -> Recorded:
    return Recorded.of_file(corpus_dir, "bedrock", name)[0]


def _all_streams(corpus_dir: Path) -> list[tuple[str, Recorded]]:
    return [(label, rec) for label, rec in Recorded.of_folder(corpus_dir, "bedrock") if rec.streaming]


def _botocore_view(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """(headers, payload) of every frame, as botocore's own decoder reads them (it checks both CRCs)."""
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(m.headers, m.payload) for m in buffer]


# ------------------------------------------------------------------ an event-stream assembler for the tests

_CODES = {"true": 0, "false": 1, "byte": 2, "short": 3, "integer": 4, "long": 5, "bytes": 6, "string": 7}
_CODES |= {"timestamp": 8, "uuid": 9}


def _header(name: str, kind: str, value: Any) -> bytes:
    out = bytes([len(name)]) + name.encode() + bytes([_CODES[kind]])
    if kind in ("true", "false"):
        return out
    fixed = {"byte": "!b", "short": "!h", "integer": "!i", "long": "!q", "timestamp": "!q"}
    if kind in fixed:
        return out + struct.pack(fixed[kind], value)
    if kind == "uuid":
        return out + value
    data = value.encode() if isinstance(value, str) else value
    return out + struct.pack("!H", len(data)) + data


def _frame(headers: list[tuple[str, str, Any]], payload: bytes) -> bytes:
    """One message as the AWS event-stream format lays it out (lengths, two CRC32s)."""
    block = b"".join(_header(*h) for h in headers)
    prelude = struct.pack("!II", 16 + len(block) + len(payload), len(block))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + block + payload
    return message + struct.pack("!I", zlib.crc32(message))


def _event(event_type: str, payload: bytes) -> bytes:
    return _frame(
        [(":event-type", "string", event_type), (":content-type", "string", "application/json"),
         (":message-type", "string", "event")],
        payload,
    )  # fmt: skip


def _anthropic_events(corpus_dir: Path) -> list[bytes]:
    """The data of every event of a real Anthropic Messages stream, as a Bedrock chunk carries it.

    Anthropic's own API pads each event's JSON with spaces; the first event is kept so
    (a replay must then send the text as it was), the others are written compact.
    """
    path = corpus_cassette(corpus_dir, "anthropic", ANTHROPIC_STREAM)
    for interaction in interactions(path):
        text = interaction["response"]["body"].get("string")
        if isinstance(text, str) and "event: message_start" in text:
            lines = text.splitlines()
            data = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
            compact = [json.dumps(json.loads(d), separators=(",", ":"), ensure_ascii=False) for d in data[1:]]
            return [d.encode() for d in data[:1] + compact]
    pytest.skip(f"no stream in {path}")


def _invoke_stream(corpus_dir: Path) -> bytes:
    """An ``invoke_model_with_response_stream`` body: each Anthropic event a ``chunk`` frame, some padded."""
    frames = []
    for i, data in enumerate(_anthropic_events(corpus_dir)):
        part: dict[str, Any] = {"bytes": base64.b64encode(data).decode()}
        if i % 2:
            part["p"] = "abcdefghijklmnopqrstuvwxyz"[: 3 + i]  # Bedrock's random-length padding
        frames.append(_event("chunk", json.dumps(part, separators=(",", ":")).encode()))
    return b"".join(frames)


# ------------------------------------------------------------------ the codec, over every real stream


def test_every_corpus_stream_is_stored_one_typed_item_per_frame_and_replays_byte_for_byte(
    corpus_dir: Path,
) -> None:
    streams = _all_streams(corpus_dir)
    assert len(streams) >= 8, "expected the corpus's Bedrock streams"
    for label, rec in streams:
        route = rec.path
        stored = codec.to_stored(route, rec.content_type, rec.body)
        assert stored.is_streaming, label  # not kept raw: it re-encodes exactly
        frames = _botocore_view(rec.body)
        assert len(stored.body) == len(frames), label
        for item, (headers, payload) in zip(stored.body, frames, strict=True):
            # Standard frames carry no headers: the type name says them all.
            assert set(item) == {"__type__", "__data__"}, label
            shape = item["__type__"].removeprefix("botocore.bedrock-runtime.")
            assert item["__type__"] == "botocore.bedrock-runtime." + shape
            assert bedrock.EVENT_MEMBERS[shape] == headers[":event-type"], label
            assert item["__data__"] == json.loads(payload), label
            assert typed_check.is_checked(item["__type__"])
            assert typed_check.check(item["__type__"], item["__data__"]) is None, label
        wire, content_type = codec.to_wire(route, stored)
        assert content_type == EVENT_STREAM
        assert wire == rec.body, label


def test_the_derived_headers_are_the_members_of_botocores_stream_unions() -> None:
    pytest.importorskip("botocore", reason="botocore is not installed")
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    seen = set()
    for operation, union in (("ConverseStream", "ConverseStreamOutput"), ("InvokeModelWithResponseStream",
                                                                           "ResponseStream")):  # fmt: skip
        output = model.operation_model(operation).output_shape
        (stream,) = [m for m in output.members.values() if m.serialization.get("eventstream")]
        assert stream.name == union
        for member, shape in stream.members.items():
            table = bedrock.EXCEPTION_MEMBERS if shape.metadata.get("exception") else bedrock.EVENT_MEMBERS
            assert table[shape.name] == member, (union, member)
            seen.add(shape.name)
    # No entry of the tables is left that the model does not have.
    assert seen == set(bedrock.EVENT_MEMBERS) | set(bedrock.EXCEPTION_MEMBERS)


def test_a_stream_of_an_unknown_shape_replays_byte_for_byte_with_generic_frames(
    corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with a botocore whose model has no such stream union (or an event-stream route it does not know).
    rec = _first(corpus_dir, TOOL_STREAM)
    monkeypatch.setattr(bedrock, "stream_members", lambda route: None)
    stored = codec.to_stored(rec.path, rec.content_type, rec.body)
    assert stored.is_streaming
    frames = _botocore_view(rec.body)
    for item, (headers, payload) in zip(stored.body, frames, strict=True):
        assert item["__type__"] == "vcr_ext.eventstream.Frame"
        assert item["__data__"]["headers"] == [[name, "string", value] for name, value in headers.items()]
        assert item["__data__"]["payload"] == json.loads(payload)  # plain JSON, untyped
    assert codec.to_wire(rec.path, stored)[0] == rec.body
    record.check(_record_of(rec.path, stored), "cassette/x.json", None)


def test_without_botocore_a_stream_is_kept_raw_and_replays_byte_for_byte(
    corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = _first(corpus_dir, TEXT_STREAM)
    monkeypatch.setitem(sys.modules, "botocore.eventstream", None)  # import fails as if absent
    stored = codec.to_stored(rec.path, rec.content_type, rec.body)
    assert not stored.is_streaming and stored.body["__type__"] == sdk_types.RAW_BASE64
    assert codec.to_wire(rec.path, stored)[0] == rec.body


def test_typed_records_replay_without_botocore(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _first(corpus_dir, THINKING_STREAM)
    stored = codec.to_stored(rec.path, rec.content_type, rec.body)
    for name in ("botocore", "botocore.session", "botocore.eventstream", "botocore.model"):
        monkeypatch.setitem(sys.modules, name, None)
    assert codec.to_wire(rec.path, stored)[0] == rec.body


def _record_of(route: str, stored: codec.StoredBody) -> dict[str, Any]:
    stored = codec.StoredBody(copy.deepcopy(stored.body), stored.is_streaming)
    return record.build(
        test_id=None,
        method="POST",
        url="http://127.0.0.1:9" + route,
        body={},
        endpoint=route,
        model=None,
        response=stored,
        headers={"content-type": EVENT_STREAM},
    )


ROUTE = "/model/us.amazon.nova-micro-v1%3A0/converse-stream"
_DELTA = b'{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abc"}'


@pytest.mark.parametrize(
    "damage",
    ["torn last frame", "payload CRC", "prelude CRC", "unknown header type", "trailing byte"],
)
def test_a_stream_that_would_not_re_encode_exactly_is_kept_raw(damage: str) -> None:
    good = _event("messageStart", b'{"p":"ab","role":"assistant"}') + _event("contentBlockDelta", _DELTA)
    assert len(_botocore_view(good)) == 2
    body = bytearray(good)
    if damage == "torn last frame":
        body = body[:-5]
    elif damage == "payload CRC":
        body[-1] ^= 0xFF
    elif damage == "prelude CRC":
        body[11] ^= 0xFF
    elif damage == "unknown header type":
        at = good.index(b"\x07", good.index(b":event-type"))  # the type byte of the first header
        body[at] = 10
        frame_end = struct.unpack("!I", good[:4])[0]
        body = bytearray(_recrc(bytes(body[:frame_end]))) + body[frame_end:]
    else:
        body += b"\x00"
    stored = codec.to_stored(ROUTE, EVENT_STREAM, bytes(body))
    assert not stored.is_streaming and stored.body["__type__"] == sdk_types.RAW_BASE64, damage
    assert codec.to_wire(ROUTE, stored)[0] == bytes(body)


def _recrc(frame: bytes) -> bytes:
    """A frame with both CRCs made right again (so that only its header type is wrong)."""
    prelude = frame[:8]
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + frame[12:-4]
    return message + struct.pack("!I", zlib.crc32(message))


def test_a_frame_with_other_headers_keeps_them_with_their_types_in_order() -> None:
    all_types = [
        (":event-type", "string", "contentBlockDelta"),
        (":content-type", "string", "application/json"),
        (":message-type", "string", "event"),
        ("yes", "true", None),
        ("no", "false", None),
        ("byte", "byte", -2),
        ("short", "short", 300),
        ("integer", "integer", -70000),
        ("long", "long", 2**40),
        ("blob", "bytes", b"\x00\xff"),
        ("time", "timestamp", 1733112000000),
        ("id", "uuid", bytes(range(16))),
    ]
    reordered = [all_types[2], all_types[0], all_types[1]]
    spaced = b'{"contentBlockIndex": 0, "delta": {"text": "Hi"}}'  # not compact: kept as text
    body = _frame(all_types, _DELTA) + _frame(reordered, _DELTA) + _event("contentBlockDelta", spaced)
    assert _botocore_view(body)[0][0]["long"] == 2**40  # botocore reads what was built
    stored = codec.to_stored(ROUTE, EVENT_STREAM, body)
    assert stored.is_streaming
    first, second, third = stored.body
    assert first["__type__"] == "vcr_ext.eventstream.Frame"
    assert first["__data__"]["headers"] == [
        [":event-type", "string", "contentBlockDelta"],
        [":content-type", "string", "application/json"],
        [":message-type", "string", "event"],
        ["yes", "bool", True],
        ["no", "bool", False],
        ["byte", "byte", -2],
        ["short", "short", 300],
        ["integer", "integer", -70000],
        ["long", "long", 2**40],
        ["blob", "bytes", "AP8="],
        ["time", "timestamp", 1733112000000],
        ["id", "uuid", "00010203-0405-0607-0809-0a0b0c0d0e0f"],
    ]
    # The payload is still typed: only the headers could not be derived.
    assert first["__data__"]["payload"] == {
        "__type__": "botocore.bedrock-runtime.ContentBlockDeltaEvent",
        "__data__": json.loads(_DELTA),
    }
    assert [h[0] for h in second["__data__"]["headers"]] == [":message-type", ":event-type", ":content-type"]
    assert third["__data__"]["payload"] == {"__type__": sdk_types.RAW_TEXT, "__data__": spaced.decode()}
    assert codec.to_wire(ROUTE, stored)[0] == body
    record.check(_record_of(ROUTE, stored), "cassette/x.json", None)


def test_a_broken_frame_or_payload_in_a_file_is_named_by_file_record_and_field() -> None:
    body = _frame([("n", "short", 1)], _DELTA) + _event("contentBlockDelta", _DELTA)
    stored = codec.to_stored(ROUTE, EVENT_STREAM, body)
    rec = _record_of(ROUTE, stored)
    rec["response"]["body"][0]["__data__"]["headers"][0] = ["n", "short", 70000]  # does not fit a short
    with pytest.raises(CassetteFormatError) as err:
        record.check(rec, "cassette/x.json", 3)
    assert err.value.field == "response.body[0].__data__.headers[0]"
    assert "cassette/x.json, record 3" in str(err.value)
    rec = _record_of(ROUTE, stored)
    rec["response"]["body"][1]["__data__"]["delta"]["text"] = 5
    with pytest.raises(CassetteFormatError) as err:
        record.check(rec, "cassette/x.json", None)
    assert err.value.field == "response.body[1].__data__.delta.text"
    assert "ContentBlockDeltaEvent holds a string" in err.value.problem
    rec = _record_of(ROUTE, stored)
    rec["response"]["body"][1]["__type__"] = (
        "botocore.bedrock-runtime.ConverseResponse"  # no frame of a stream
    )
    with pytest.raises(CassetteFormatError) as err:
        record.check(rec, "cassette/x.json", None)
    assert err.value.field == "response.body[1].__type__"
    assert "no stream event whose frame headers are known" in err.value.problem


def test_a_payload_its_shape_cannot_hold_is_kept_untyped_and_still_loads() -> None:
    odd = b'{"contentBlockIndex":0,"delta":"oops"}'  # ContentBlockDeltaEvent.delta is an object
    body = _event("contentBlockDelta", odd) + _event("contentBlockDelta", _DELTA)
    stored = codec.to_stored(ROUTE, EVENT_STREAM, body)
    first, second = stored.body
    assert first["__type__"] == "vcr_ext.eventstream.Frame"
    assert first["__data__"]["payload"] == json.loads(odd)
    assert second["__type__"] == "botocore.bedrock-runtime.ContentBlockDeltaEvent"
    record.check(_record_of(ROUTE, stored), "cassette/x.json", None)
    assert codec.to_wire(ROUTE, stored)[0] == body


def test_invoke_stream_chunks_are_stored_decoded_and_typed_with_the_anthropic_sdk(corpus_dir: Path) -> None:
    pytest.importorskip("anthropic", reason="the anthropic SDK is not installed")
    body = _invoke_stream(corpus_dir)
    route = f"/model/{ANTHROPIC_MODEL}/invoke-with-response-stream"
    stored = codec.to_stored(route, EVENT_STREAM, body)
    assert stored.is_streaming
    events = _anthropic_events(corpus_dir)
    names = sdk_types.anthropic_names()
    assert names is not None
    typed = 0
    for item, data in zip(stored.body, events, strict=True):
        assert item["__type__"] == "botocore.bedrock-runtime.PayloadPart"
        inner = item["__data__"]["bytes"]
        kind = json.loads(data)["type"]
        if json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False).encode() != data:
            # Padded with spaces: a replay must send them, so the text is kept.
            assert inner == {"__type__": sdk_types.RAW_TEXT, "__data__": data.decode()}
        elif kind in names:
            assert inner == {"__type__": names[kind], "__data__": json.loads(data)}
            typed += 1
        else:  # ping has no class in the SDK
            assert inner == json.loads(data)
    assert typed >= len(events) - 2  # all but the padded one and ping
    assert codec.to_wire(route, stored)[0] == body
    # The same bytes from a model that is not Anthropic's are decoded, not typed.
    other = "/model/meta.llama3-70b-instruct-v1:0/invoke-with-response-stream"
    plain = codec.to_stored(other, EVENT_STREAM, body)
    assert all(
        not str(sdk_types.unwrap(i["__data__"]["bytes"]).type_name).startswith("anthropic.")
        for i in plain.body
    )
    assert codec.to_wire(other, plain)[0] == body


# ------------------------------------------------------------------ through boto3


def _client(url: str, **credentials: Any) -> Any:
    return boto3.client(
        "bedrock-runtime", endpoint_url=url, **{**_CREDENTIALS, **credentials}, config=_no_retries()
    )


def _no_retries() -> Any:
    from botocore.config import Config

    return Config(retries={"max_attempts": 1, "mode": "standard"})


def _comparable(response: dict[str, Any]) -> dict[str, Any]:
    """A response without the raw HTTP headers (a replay sends only the kept ones), request id kept."""
    meta = {k: v for k, v in response["ResponseMetadata"].items() if k != "HTTPHeaders"}
    return {**response, "ResponseMetadata": meta}


def _converse(client: Any, rec: Recorded) -> Any:
    return _comparable(client.converse(modelId=rec.model_id, **rec.request))


def _converse_stream(client: Any, rec: Recorded) -> Any:
    response = client.converse_stream(modelId=rec.model_id, **rec.request)
    events = list(response.pop("stream"))
    return {"events": events, **_comparable(response)}


def _error(client: Any, rec: Recorded) -> Any:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        client.converse(modelId=rec.model_id, **rec.request)
    return _comparable(err.value.response)


def _count_tokens(client: Any, rec: Recorded) -> Any:
    return _comparable(client.count_tokens(modelId=rec.model_id, **rec.request))


CASES = {
    "message": (MESSAGE, _converse),
    "count-tokens": ("test_bedrock_count_tokens_tool_config.yaml", _count_tokens),
    "text-stream": (TEXT_STREAM, _converse_stream),
    "thinking-stream": (THINKING_STREAM, _converse_stream),
    "tool-stream": (TOOL_STREAM, _converse_stream),
    "redacted-thinking-stream": ("test_bedrock_model_thinking_part_redacted_stream.yaml", _converse_stream),
    "empty-delta-stream": ("test_bedrock_model_stream_empty_text_delta.yaml", _converse_stream),
    "tool-call-stream": ("test_bedrock_model_iter_stream.yaml", _converse_stream),
    "error": (ERROR, _error),
}
_OUTPUT_SHAPES = {"converse": "ConverseResponse", "count-tokens": "CountTokensResponse"}


@pytest.mark.parametrize("case", list(CASES))
def test_replay_through_boto3_equals_the_live_run(corpus_dir: Path, tmp_path: Path, case: str) -> None:
    corpus_file, run = CASES[case]
    rec = _first(corpus_dir, corpus_file)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        rec.serve(server, rec.path)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(_client(server.url), rec)
        sent = server.requests[-1]
        base_url = server.url
    assert sent.path == rec.path  # botocore sent the model id percent-encoded, as recorded
    assert live["ResponseMetadata"]["RequestId"] == REQUEST_ID

    # The server is gone: everything below is played from the cassette.
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(_client(base_url), rec)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):  # the bytes a replay sends
        raw = httpx.post(base_url + rec.path, content=sent.body, headers={"content-type": "application/json"})
    assert replayed == live
    assert raw.content == rec.body if rec.streaming else raw.json() == json.loads(rec.body)

    (stored,) = cassette_records(cassette)
    response = stored["response"]
    assert stored["request"]["headers"] == {}
    assert stored["request"]["endpoint"] == rec.path
    assert response["headers"]["x-amzn-requestid"] == REQUEST_ID
    if rec.streaming:
        assert response["is_streaming"] is True
        assert {i["__type__"].rpartition(".")[0] for i in response["body"]} == {"botocore.bedrock-runtime"}
    elif rec.status == 200:
        shape = _OUTPUT_SHAPES[rec.path.rsplit("/", 1)[-1]]
        assert response["body"]["__type__"] == "botocore.bedrock-runtime." + shape
        assert response["body"]["__data__"] == json.loads(rec.body)
    else:
        assert response["headers"]["x-amzn-errortype"] == ERROR_TYPE
        assert replayed["Error"]["Code"] == "ValidationException"
        assert response["body"] == json.loads(rec.body)  # an error body is plain JSON


def _invoke_with_boto3(client: Any) -> Any:
    response = client.invoke_model_with_response_stream(
        modelId=ANTHROPIC_MODEL,
        body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": []}),
    )
    events = list(response.pop("body"))
    return {"events": events, **_comparable(response)}


def test_invoke_model_with_response_stream_replays_the_same_chunks(corpus_dir: Path, tmp_path: Path) -> None:
    body = _invoke_stream(corpus_dir)
    path = f"/model/{ANTHROPIC_MODEL.replace(':', '%3A')}/invoke-with-response-stream"
    headers = [("content-type", EVENT_STREAM), ("x-amzn-requestid", REQUEST_ID),
               ("x-amzn-bedrock-content-type", "application/json")]  # fmt: skip
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST", path, headers=headers, body=[body[i : i + 101] for i in range(0, len(body), 101)]
        )
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = _invoke_with_boto3(_client(server.url))
        base_url = server.url
    assert live["contentType"] == "application/json"  # bound to a header botocore reads
    assert [json.loads(e["chunk"]["bytes"]) for e in live["events"]] == [
        json.loads(d) for d in _anthropic_events(corpus_dir)
    ]
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = _invoke_with_boto3(_client(base_url))
    assert replayed == live
    (stored,) = cassette_records(cassette)
    assert {i["__type__"] for i in stored["response"]["body"]} == {"botocore.bedrock-runtime.PayloadPart"}


_EXCEPTION = _frame(
    [(":exception-type", "string", "modelStreamErrorException"),
     (":content-type", "string", "application/json"), (":message-type", "string", "exception")],
    b'{"message":"The model failed mid-stream.","originalMessage":"overloaded","originalStatusCode":529}',
)  # fmt: skip
# An error frame (the service's, not a modelled exception): no payload, its code and message in headers.
_ERROR_FRAME = _frame(
    [(":message-type", "string", "error"), (":error-code", "string", "InternalFailure"),
     (":error-message", "string", "We encountered an internal error.")],
    b"",
)  # fmt: skip


def _stream_until_error(client: Any) -> Any:
    from botocore.exceptions import EventStreamError

    response = client.converse_stream(modelId="us.amazon.nova-micro-v1:0", messages=[])
    events = []
    with pytest.raises(EventStreamError) as err:
        for event in response["stream"]:
            events.append(event)
    return {"events": events, "error": err.value.response, "message": str(err.value)}


@pytest.mark.parametrize("kind", ["exception", "error"])
def test_a_stream_failing_mid_way_fails_the_same_on_replay(tmp_path: Path, kind: str) -> None:
    start = _event("messageStart", b'{"p":"abc","role":"assistant"}') + _event("contentBlockDelta", _DELTA)
    body = start + (_EXCEPTION if kind == "exception" else _ERROR_FRAME)
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", ROUTE, headers=[("content-type", EVENT_STREAM)], body=[body])
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = _stream_until_error(_client(server.url))
        base_url = server.url
    assert len(live["events"]) == 2
    expected_code = "modelStreamErrorException" if kind == "exception" else "InternalFailure"
    assert live["error"]["Error"]["Code"] == expected_code
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = _stream_until_error(_client(base_url))
    assert replayed == live
    (stored,) = cassette_records(cassette)
    last = stored["response"]["body"][-1]
    if kind == "exception":  # a modelled exception: typed, its headers derived
        assert last["__type__"] == "botocore.bedrock-runtime.ModelStreamErrorException"
        assert last["__data__"]["originalStatusCode"] == 529
    else:  # no shape: kept with its headers, the empty payload as empty text
        assert last["__type__"] == "vcr_ext.eventstream.Frame"
        assert last["__data__"]["headers"][1] == [":error-code", "string", "InternalFailure"]
        assert last["__data__"]["payload"] == {"__type__": sdk_types.RAW_TEXT, "__data__": ""}


ANTHROPIC_CALLS = ["sync", "async"]
_TOKEN = "FwoGZXIvYXdzEBYaDH" + "k3Lm9Qp2Rs8Tv4Wx6Yz1Ab5Cd7Ef0Gh" * 5


@pytest.mark.parametrize("call", ANTHROPIC_CALLS)
def test_anthropic_bedrock_client_replays_the_same_events(
    corpus_dir: Path, tmp_path: Path, call: str
) -> None:
    anthropic = pytest.importorskip("anthropic", reason="the anthropic SDK is not installed")
    body = _invoke_stream(corpus_dir)
    path = f"/model/{ANTHROPIC_MODEL}/invoke-with-response-stream"  # this SDK leaves ':' unquoted

    def run(base_url: str) -> Any:
        options = {"base_url": base_url, "aws_region": "us-east-1", "max_retries": 0,
                   "aws_access_key": _CREDENTIALS["aws_access_key_id"],
                   "aws_secret_key": _CREDENTIALS["aws_secret_access_key"],
                   "aws_session_token": _TOKEN}  # fmt: skip
        params = {"model": ANTHROPIC_MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
        if call == "sync":
            with anthropic.AnthropicBedrock(**options).messages.stream(**params) as stream:
                return [e.model_dump() for e in stream], stream.get_final_message().model_dump()

        async def arun() -> Any:
            async with anthropic.AsyncAnthropicBedrock(**options).messages.stream(**params) as stream:
                events = [e.model_dump() async for e in stream]
                return events, (await stream.get_final_message()).model_dump()

        return asyncio.run(arun())

    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", path, headers=[("content-type", EVENT_STREAM)], body=[body])
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(server.url)
        base_url = server.url
        sent = server.requests[-1]
    assert live[1]["content"], "the stream built a message"
    # It signs with SigV4 like boto3 (through botocore); none of that is written.
    assert sent.headers["x-amz-security-token"] == _TOKEN
    signature = sent.headers["authorization"].rsplit("Signature=", 1)[1]
    for value in (_TOKEN, signature, _CREDENTIALS["aws_access_key_id"]):
        assert value.encode() not in written_bytes(tmp_path), value
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(base_url)
    assert replayed == live


def _anthropic_message(corpus_dir: Path) -> dict[str, Any]:
    path = corpus_cassette(corpus_dir, "anthropic", "test_anthropic_model_instructions.yaml")
    message: dict[str, Any] = interactions(path)[0]["response"]["parsed_body"]
    return message


def test_invoke_model_of_an_anthropic_model_is_typed_as_its_message(corpus_dir: Path, tmp_path: Path) -> None:
    anthropic = pytest.importorskip("anthropic", reason="the anthropic SDK is not installed")
    message = _anthropic_message(corpus_dir)
    body = json.dumps(message, indent=1).encode()  # not compact: a replay sends the same JSON value

    def run(base_url: str) -> Any:
        response = _client(base_url).invoke_model(
            modelId=ANTHROPIC_MODEL,
            body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "messages": []}),
        )
        via_boto3 = {**_comparable(response), "body": json.loads(response["body"].read())}
        sdk = anthropic.AnthropicBedrock(
            base_url=base_url, aws_region="us-east-1", max_retries=0, aws_access_key="AKIAIOSFODNN7EXAMPLE",
            aws_secret_key=_CREDENTIALS["aws_secret_access_key"],
        )  # fmt: skip
        created = sdk.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
        return via_boto3, created.model_dump()

    cassette = tmp_path / "cassette"
    headers = [("content-type", "application/json"), ("x-amzn-requestid", REQUEST_ID)]
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST", f"/model/{ANTHROPIC_MODEL.replace(':', '%3A')}/invoke", headers=headers, body=body
        )
        server.enqueue("POST", f"/model/{ANTHROPIC_MODEL}/invoke", headers=headers, body=body)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = run(server.url)
        base_url = server.url
    assert live[0]["body"] == message and live[0]["contentType"] == "application/json"
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = run(base_url)
    assert replayed == live
    records = cassette_records(cassette)
    assert len(records) == 2  # one per client (boto3 quotes the model id's ":", the anthropic SDK not)
    assert {r["response"]["body"]["__type__"] for r in records} == {"anthropic.types.message.Message"}


# ------------------------------------------------------------------ credentials


def test_no_aws_credential_a_boto3_client_sends_reaches_a_file(corpus_dir: Path, tmp_path: Path) -> None:
    rec = _first(corpus_dir, TEXT_STREAM)
    # Fake credentials of the real forms (a temporary key with a session token).
    key_id = "ASIA" + "QX7ZB2LMN4PK6RT3"
    secret = "tK9vR2mW5xQ8zL1nB4cF7hJ0gD3sA6eY9uI2oP5q"
    token = "IQoJb3JpZ2luX2VjE" + "Hq3vLmN8xZ0pR5tW2yK7bC4fG1jD6sA9eU" * 6 + "=="
    cassette = tmp_path / "cassette"
    with FakeOpenAIServer() as server:
        server.enqueue("POST", rec.path, headers=rec.headers, body=rec.chunks())
        client = _client(
            server.url, aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token
        )
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            live = _converse_stream(client, rec)
        sent = server.requests[-1]
    # The client did send them: SigV4 signs with the key id and the token rides along.
    authorization = sent.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={key_id}/")
    assert sent.headers["x-amz-security-token"] == token
    signature = authorization.rsplit("Signature=", 1)[1]
    secrets = [key_id, secret, token, signature, authorization, sent.headers["amz-sdk-invocation-id"]]
    assert_none_written(tmp_path, secrets)
    (stored,) = cassette_records(cassette)
    assert stored["request"]["headers"] == {}
    assert set(stored["response"]["headers"]) == {"content-type", "x-amzn-requestid"}
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        replayed = _converse_stream(_client("http://127.0.0.1:9"), rec)  # other credentials, no server
    assert replayed == live
