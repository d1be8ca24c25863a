"""Recordings of llama-stack's later recorder (after Oct 2025) replay through the public API.

That recorder adds shapes the Oct-2025 corpus does not hold: a failed call is stored as
``is_exception`` with the exception's data instead of a body, a stream that failed midway
keeps its chunks plus the exception, raw HTTP requests (rerank, through aiohttp) are
stored as ``{url, method, payload}``, requests carry ``provider_metadata``, and Responses
API calls are recorded too. Each test makes the call live against a loopback server,
writes the record exactly as that recorder would from what the SDK returned or raised,
then replays it offline and compares with the live result.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from vcr.errors import CannotOverwriteExistingCassetteException

import vcr_ext
from vcr_ext import conformance
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.persister import Persister

OFFLINE = "http://127.0.0.1:9/v1"
USER = [{"role": "user", "content": "What is the boiling point of water?"}]


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _envelope(obj: Any) -> dict[str, Any]:
    return {"__type__": _type_name(obj), "__data__": obj.model_dump(mode="json")}


def _request(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": "http://localhost:8000/v1" + endpoint,
        "headers": {},
        "body": body,
        "endpoint": endpoint,
        "model": body.get("model", ""),
        "provider_metadata": {"openai_sdk_version": openai.__version__},
    }


def _exception_data(exc: Exception) -> dict[str, Any]:
    """llama-stack's ``serialize_exception`` for an SDK exception."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return {
            "category": "provider_sdk",
            "provider": "openai",
            "type": type(exc).__name__,
            "message": str(exc),
            "status_code": status,
            "body": getattr(exc, "body", None),
        }
    return {"category": "unknown", "type": type(exc).__name__, "message": str(exc)}


def _write(cassette: Path, records: list[dict[str, Any]]) -> None:
    cassette.mkdir(parents=True, exist_ok=True)
    for i, rec in enumerate(records):
        rec = {"test_id": "tests/integration/test_x.py::test_x", **rec, "id_normalization_mapping": {}}
        (cassette / f"{i:064x}.json").write_text(json.dumps(rec, indent=2) + "\n")


def _failed_stream_response(chunks: list[Any], exc: Exception) -> dict[str, Any]:
    """A stream that failed midway: the chunks that came, then the exception."""
    return {
        "body": [_envelope(c) for c in chunks],
        "is_streaming": True,
        "is_exception": True,
        "exception_data": _exception_data(exc),
        "exception_message": str(exc),
    }


def _failed_call_record(endpoint: str, body: dict[str, Any], exc: Exception) -> dict[str, Any]:
    response = {
        "body": None,
        "is_streaming": False,
        "is_exception": True,
        "exception_data": _exception_data(exc),
        "exception_message": str(exc),
    }
    return {"request": _request(endpoint, body), "response": response}


# Error responses as providers send them: OpenAI's error object, a FastAPI-style body
# without "error" (vLLM), and a body that is not JSON at all.
ERRORS = {
    "openai-error-object": (
        400,
        "application/json",
        b'{"error": {"message": "Invalid model", "type": "invalid_request_error", "param": "model", '
        b'"code": "model_not_found"}}',
    ),
    "body-without-error-key": (422, "application/json", b'{"detail": "temperature must be <= 2"}'),
    "text-body": (503, "text/plain", b"upstream connect error"),
}


def _live_error(status: int, content_type: str, payload: bytes) -> openai.APIStatusError:
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST",
            "/v1/chat/completions",
            status=status,
            headers=[("content-type", content_type)],
            body=payload,
        )
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with pytest.raises(openai.APIStatusError) as live:
            client.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    return live.value


def _same_error(replayed: BaseException, live: openai.APIStatusError) -> None:
    assert type(replayed) is type(live)
    assert isinstance(replayed, openai.APIStatusError)
    assert (replayed.status_code, str(replayed), replayed.body) == (live.status_code, str(live), live.body)


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_a_recorded_provider_error_raises_the_same_exception(kind: str, tmp_path: Path) -> None:
    live = _live_error(*ERRORS[kind])
    body = {"model": "gpt-4o", "messages": USER}
    _write(tmp_path / "cas", [_failed_call_record("/v1/chat/completions", body, live)])
    client = openai.OpenAI(base_url=OFFLINE, api_key="sk-test", max_retries=0)
    with (
        vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")),
        pytest.raises(openai.APIStatusError) as replayed,
    ):
        client.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    _same_error(replayed.value, live)


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_a_recorded_provider_error_raises_the_same_exception_async(kind: str, tmp_path: Path) -> None:
    live = _live_error(*ERRORS[kind])
    body = {"model": "gpt-4o", "messages": USER}
    _write(tmp_path / "cas", [_failed_call_record("/v1/chat/completions", body, live)])

    async def call() -> None:
        client = openai.AsyncOpenAI(base_url=OFFLINE, api_key="sk-test", max_retries=0)
        await client.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]

    with (
        vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")),
        pytest.raises(openai.APIStatusError) as replayed,
    ):
        asyncio.run(call())
    _same_error(replayed.value, live)


def test_a_stream_that_failed_midway_replays_its_chunks_then_the_error(tmp_path: Path) -> None:
    body = {"model": "error-stream", "messages": USER, "stream": True}
    chunks: list[Any] = []
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with pytest.raises(openai.APIError) as live:
            for chunk in client.chat.completions.create(**body):
                chunks.append(chunk)
    assert chunks  # the live stream really failed after it started
    response = _failed_stream_response(chunks, live.value)
    _write(tmp_path / "cas", [{"request": _request("/v1/chat/completions", body), "response": response}])

    replayed_chunks: list[Any] = []
    offline = openai.OpenAI(base_url=OFFLINE, api_key="sk-test", max_retries=0)
    with (
        vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")),
        pytest.raises(openai.APIError) as replayed,
    ):
        for chunk in offline.chat.completions.create(**body):
            replayed_chunks.append(chunk)
    assert [c.model_dump() for c in replayed_chunks] == [c.model_dump() for c in chunks]
    assert type(replayed.value) is type(live.value) and str(replayed.value) == str(live.value)


def test_a_client_side_exception_is_skipped_with_its_reason_and_the_rest_replays(tmp_path: Path) -> None:
    ok_body = {"model": "gpt-4o", "messages": USER}
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        answer = client.chat.completions.create(**ok_body)  # type: ignore[arg-type]
    dead = openai.OpenAI(base_url=OFFLINE, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as failed:
        dead.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "unreachable"}])
    failed_body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "unreachable"}]}
    _write(
        tmp_path / "cas",
        [
            _failed_call_record("/v1/chat/completions", failed_body, failed.value),
            {
                "request": _request("/v1/chat/completions", ok_body),
                "response": {"body": _envelope(answer), "is_streaming": False},
            },
        ],
    )
    persister = Persister()
    requests, _ = persister.load_cassette(tmp_path / "cas")
    assert len(requests) == 1
    (skip,) = persister.skipped
    assert "client-side exception (APIConnectionError" in skip.reason and skip.path.endswith(f"{0:064x}.json")

    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")):
        replayed = dead.chat.completions.create(**ok_body)  # type: ignore[arg-type]
        assert replayed.choices[0].message.content == answer.choices[0].message.content
        with pytest.raises((CannotOverwriteExistingCassetteException, openai.APIConnectionError)):
            dead.chat.completions.create(**failed_body)  # type: ignore[arg-type]


def test_a_raw_http_record_with_a_payload_replays(tmp_path: Path) -> None:
    payload = {"model": "nvidia/rerank", "query": "boiling point", "documents": ["100 C", "0 C"]}
    reply = {"results": [{"index": 0, "relevance_score": 0.98}, {"index": 1, "relevance_score": 0.01}]}
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST",
            "/v1/rerank",
            headers=[("content-type", "application/json")],
            body=json.dumps(reply).encode(),
        )
        live = httpx.post(server.base_url + "/rerank", json=payload)
    rec = {
        "request": {"url": "http://localhost:8000/v1/rerank", "method": "POST", "payload": payload},
        "response": {"status": live.status_code, "body": live.json(), "is_streaming": False},
    }
    _write(tmp_path / "cas", [rec])
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")):
        replayed = httpx.post(OFFLINE + "/rerank", json=payload)
    assert (replayed.status_code, replayed.json()) == (live.status_code, live.json())


def test_recorded_responses_api_calls_replay(tmp_path: Path) -> None:
    plain = {"model": "gpt-4o", "input": "Say hello."}
    streamed = {"model": "gpt-4o", "input": "Say hello again.", "stream": True}
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        response = client.responses.create(**plain)  # type: ignore[call-overload]
        events = list(client.responses.create(**streamed))  # type: ignore[call-overload]
    assert response.output_text and events
    _write(
        tmp_path / "cas",
        [
            {
                "request": _request("/v1/responses", plain),
                "response": {"body": _envelope(response), "is_streaming": False},
            },
            {
                "request": _request("/v1/responses", streamed),
                "response": {"body": [_envelope(e) for e in events], "is_streaming": True},
            },
        ],
    )
    offline = openai.OpenAI(base_url=OFFLINE, api_key="sk-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas"), allow_playback_repeats=True):
        assert offline.responses.create(**plain).model_dump() == response.model_dump()  # type: ignore[call-overload]
        replayed = list(offline.responses.create(**streamed))  # type: ignore[call-overload]
        assert [e.model_dump() for e in replayed] == [e.model_dump() for e in events]
        body = {k: v for k, v in streamed.items() if k != "stream"}
        with offline.responses.stream(**body) as stream:  # type: ignore[call-overload]
            final = stream.get_final_response()
    assert final.output_text == events[-1].response.output_text


def test_the_conformance_run_replays_every_later_shape(tmp_path: Path) -> None:
    chat = {"model": "gpt-4o", "messages": USER}
    failed_stream = {"model": "error-stream", "messages": USER, "stream": True}
    plain = {"model": "gpt-4o", "input": "Say hello."}
    streamed = {"model": "gpt-4o", "input": "Say hello again.", "stream": True}
    payload = {"model": "nvidia/rerank", "query": "boiling point", "documents": ["100 C", "0 C"]}
    reply = {"results": [{"index": 0, "relevance_score": 0.98}]}
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        server.enqueue(
            "POST",
            "/v1/chat/completions",
            status=400,
            headers=[("content-type", "application/json")],
            body=ERRORS["openai-error-object"][2],
        )
        with pytest.raises(openai.APIStatusError) as error:
            client.chat.completions.create(**chat)  # type: ignore[arg-type]
        chunks: list[Any] = []
        with pytest.raises(openai.APIError) as midway:
            chunks.extend(client.chat.completions.create(**failed_stream))  # type: ignore[arg-type]
        response = client.responses.create(**plain)  # type: ignore[call-overload]
        events = list(client.responses.create(**streamed))  # type: ignore[call-overload]
    dead = openai.OpenAI(base_url=OFFLINE, api_key="sk-test", max_retries=0)
    unreachable = {"model": "gpt-4o", "messages": [{"role": "user", "content": "unreachable"}]}
    with pytest.raises(openai.APIConnectionError) as connection:
        dead.chat.completions.create(**unreachable)  # type: ignore[arg-type]
    failed_stream_response = _failed_stream_response(chunks, midway.value)
    _write(
        tmp_path / "recordings",
        [
            _failed_call_record("/v1/chat/completions", chat, error.value),
            {"request": _request("/v1/chat/completions", failed_stream), "response": failed_stream_response},
            _failed_call_record("/v1/chat/completions", unreachable, connection.value),
            {
                "request": _request("/v1/responses", plain),
                "response": {"body": _envelope(response), "is_streaming": False},
            },
            {
                "request": _request("/v1/responses", streamed),
                "response": {"body": [_envelope(e) for e in events], "is_streaming": True},
            },
            {
                "request": {"url": "http://localhost:8000/v1/rerank", "method": "POST", "payload": payload},
                "response": {"status": 200, "body": reply, "is_streaming": False},
            },
        ],
    )
    run = conformance.run_all(tmp_path / "recordings")
    assert run.failures == [], [(o.case.kind, o.mode, o.detail[:600]) for o in run.failures]
    kinds = {c.kind for c in run.cases}
    assert {"chat", "chat-stream", "failed-call", "responses", "responses-stream", "http"} <= kinds
    (skip,) = [o for o in run.outcomes if o.skipped]
    assert skip.case.kind == "failed-call" and "APIConnectionError" in skip.detail
    # Every replayable case ran sync and async and passed.
    passed = {(o.case.name, o.mode) for o in run.outcomes if o.ok}
    assert len(passed) == 2 * (len(run.cases) - 1)
