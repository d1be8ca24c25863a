"""The recording format: the request hash, key order, normalization, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vcr_ext import record
from vcr_ext.codec import StoredBody
from vcr_ext.errors import CassetteFormatError


def test_request_hash_reproduces_the_seed_file_name(seed_file: Path) -> None:
    rec = json.loads(seed_file.read_text())
    req = rec["request"]
    assert record.request_hash(req["method"], req["url"], req["body"], rec["test_id"]) == seed_file.stem


def test_request_hash_rounds_float_noise_and_drops_test_id_for_model_lists() -> None:
    a = record.request_hash("POST", "http://h/v1/chat/completions", {"temperature": 0.7000001}, "t1")
    b = record.request_hash("POST", "http://h/v1/chat/completions", {"temperature": 0.7}, "t1")
    c = record.request_hash("POST", "http://h/v1/chat/completions", {"temperature": 0.7}, "t2")
    assert a == b != c
    assert record.request_hash("GET", "http://h/v1/models", None, "t1") == record.request_hash(
        "GET", "http://h/v1/models", None, "t2"
    )


def test_built_record_has_the_seed_key_order(seed_file: Path) -> None:
    seed = json.loads(seed_file.read_text())
    built = record.build(
        test_id="t",
        method="POST",
        url="u",
        body={},
        endpoint="/v1/chat/completions",
        model="m",
        response=StoredBody([], True),
    )
    assert list(built) == list(seed)
    assert list(built["request"]) == list(seed["request"])
    assert list(built["response"]) == list(seed["response"])


def test_dumps_matches_the_seed_bytes(seed_file: Path) -> None:
    text = seed_file.read_text()
    assert record.dumps(json.loads(text), ascii_only=True) == text


def test_optional_response_fields_only_when_they_say_something() -> None:
    plain = record.build(
        test_id=None,
        method="POST",
        url="u",
        body={},
        endpoint="/e",
        model=None,
        response=StoredBody({}, False),
    )
    assert list(plain["response"]) == ["body", "is_streaming"]
    error = record.build(
        test_id=None,
        method="POST",
        url="u",
        body={},
        endpoint="/e",
        model=None,
        response=StoredBody([], True, sse_done=False),
        status=429,
        headers={"retry-after": "1"},
    )
    assert list(error["response"]) == ["body", "is_streaming", "status", "headers", "sse_done"]


@pytest.mark.parametrize(
    ("payload", "route", "expected"),
    [
        pytest.param(
            {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5},
            "/v1/chat/completions",
            {"id": "rec-abcdefabcdef", "object": "chat.completion.chunk", "created": 0},
            id="chat-chunk-id-and-created",
        ),
        pytest.param(
            {"id": "gpt-4o", "object": "model", "created": 5},
            "/v1/models",
            {"id": "gpt-4o", "object": "model", "created": 5},
            id="model-items-keep-their-id",
        ),
        pytest.param(
            {"id": "resp_1", "object": "response", "created_at": 5},
            "/v1/responses",
            {"id": "resp_1", "object": "response", "created_at": 5},
            id="responses-ids-are-sent-back-so-kept",
        ),
        pytest.param(
            {"created_at": "2025-01-01T00:00:00Z", "total_duration": 9, "eval_duration": None},
            "/api/generate",
            {"created_at": record.OLLAMA_EPOCH, "total_duration": 0, "eval_duration": None},
            id="ollama-timestamps-and-durations",
        ),
    ],
)
def test_normalize_payload(payload: dict[str, Any], route: str, expected: dict[str, Any]) -> None:
    assert record.normalize_payload(payload, "abcdefabcdef" + "0" * 52, route) == expected


def _valid() -> dict[str, Any]:
    return {
        "request": {"method": "POST", "url": "u", "headers": {}, "body": {}, "endpoint": "/e", "model": None},
        "response": {"body": [], "is_streaming": True},
    }


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(lambda r: r.pop("request"), "request", id="no-request"),
        pytest.param(lambda r: r["request"].update(method=None), "request.method", id="no-method"),
        pytest.param(lambda r: r["request"].update(url=1, endpoint=None), "request.url", id="no-url"),
        pytest.param(lambda r: r["response"].pop("body"), "response.body", id="no-body"),
        pytest.param(
            lambda r: r["response"].update(is_streaming="yes"), "response.is_streaming", id="bad-flag"
        ),
        pytest.param(lambda r: r["response"].update(body={}), "response.body", id="stream-not-a-list"),
        pytest.param(lambda r: r["response"].update(status=99), "response.status", id="bad-status"),
        pytest.param(lambda r: r["response"].update(headers={"a": 1}), "response.headers", id="bad-headers"),
    ],
)
def test_check_names_file_record_and_field(mutate: Any, field: str) -> None:
    rec = _valid()
    mutate(rec)
    with pytest.raises(CassetteFormatError) as err:
        record.check(rec, "cas/x.json", 3)
    assert err.value.field == field
    assert str(err.value).startswith(f"cas/x.json, record 3: field '{field}'")


def test_check_accepts_every_variant_of_the_corpus(corpus_dir: Path) -> None:
    files = sorted((corpus_dir / "llama-stack-2025-10").rglob("*.json"))
    http = [json.loads(f.read_text()) for f in files]
    checked = [record.check(r, "x", None) for r in http if record.is_http(r)]
    assert len(checked) == len(files) - 1  # one tool-invocation record
