"""Clients other than the openai SDK (requests, httpx, aiohttp) record and replay through vcrpy's stubs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}], "stream": True}
HEADERS = {"authorization": "Bearer sk-fake-http-libraries-key", "content-type": "application/json"}


def _with_requests(base: str) -> tuple[int, str, str]:
    r = requests.post(f"{base}/chat/completions", data=json.dumps(BODY), headers=HEADERS, timeout=10)
    return r.status_code, r.headers["content-type"], r.text


def _with_httpx(base: str) -> tuple[int, str, str]:
    with (
        httpx.Client() as client,
        client.stream("POST", f"{base}/chat/completions", json=BODY, headers=HEADERS) as r,
    ):
        return r.status_code, r.headers["content-type"], "".join(r.iter_text())


def _with_aiohttp(base: str) -> tuple[int, str, str]:
    async def run() -> tuple[int, str, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/chat/completions", json=BODY, headers=HEADERS) as r,
        ):
            return r.status, r.headers["content-type"], await r.text()

    return asyncio.run(run())


def _events(text: str) -> list[Any]:
    events = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    parsed = [e if e == "[DONE]" else json.loads(e) for e in events]
    # The recording normalizes per-call ids and timestamps.
    return [
        {k: v for k, v in e.items() if k not in ("id", "created")} if isinstance(e, dict) else e
        for e in parsed
    ]


@pytest.mark.parametrize(
    "call", [_with_requests, _with_httpx, _with_aiohttp], ids=["requests", "httpx", "aiohttp"]
)
def test_sse_stream_records_and_replays(tmp_path: Path, call: Callable[[str], tuple[int, str, str]]) -> None:
    cassette = str(tmp_path / "cas")
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(cassette):
        live = call(server.base_url)
    with vcr_ext.VCR(record_mode="none").use_cassette(cassette) as replay:
        replayed = call("http://127.0.0.1:9/v1")
        assert replay.all_played
    assert replayed[:2] == live[:2]
    assert _events(replayed[2]) == _events(live[2])
    assert len(_events(live[2])) > 3
    (written,) = (tmp_path / "cas").glob("*.json")
    assert "sk-fake-http-libraries-key" not in written.read_text()
    assert json.loads(written.read_text())["response"]["is_streaming"] is True


def test_compressed_responses_are_stored_decoded_and_replayed(tmp_path: Path) -> None:
    import gzip

    import openai

    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "squeezed"}, "finish_reason": "stop"}
        ],
    }
    cassette = str(tmp_path / "cas")
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(cassette):
        server.enqueue(
            "POST",
            "/v1/chat/completions",
            headers=[("content-type", "application/json"), ("content-encoding", "gzip")],
            body=gzip.compress(json.dumps(completion).encode()),
        )
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        live = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    (written,) = (tmp_path / "cas").glob("*.json")
    rec = json.loads(written.read_text())
    assert rec["response"]["body"]["__data__"]["choices"][0]["message"]["content"] == "squeezed"
    assert "content-encoding" not in rec["response"]["headers"]
    replay_client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none").use_cassette(cassette):
        replayed = replay_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert replayed.choices[0].message.content == live.choices[0].message.content == "squeezed"


def _with_aiohttp_lower_case_method(base: str) -> tuple[int, str, str]:
    # google-genai's async client calls aiohttp's ``request("post", ...)``: vcrpy's stub
    # sees the method as spelled, while the wire (and every other client) says POST.
    async def run() -> tuple[int, str, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.request("post", f"{base}/chat/completions", json=BODY, headers=HEADERS) as r,
        ):
            return r.status, r.headers["content-type"], await r.text()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("record_with", "replay_with"),
    [(_with_aiohttp_lower_case_method, _with_httpx), (_with_httpx, _with_aiohttp_lower_case_method)],
    ids=["lower-case-recorded", "lower-case-replayed"],
)
def test_a_method_spelled_in_lower_case_matches_its_upper_case_recording(
    tmp_path: Path,
    record_with: Callable[[str], tuple[int, str, str]],
    replay_with: Callable[[str], tuple[int, str, str]],
) -> None:
    cassette = str(tmp_path / "cas")
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(cassette):
        live = record_with(server.base_url)
        assert [r.method for r in server.requests] == ["POST"]
    (written,) = (tmp_path / "cas").glob("*.json")
    assert json.loads(written.read_text())["request"]["method"] == "POST"
    with vcr_ext.VCR(record_mode="none").use_cassette(cassette) as replay:
        replayed = replay_with("http://127.0.0.1:9/v1")
        assert replay.all_played
    assert _events(replayed[2]) == _events(live[2])
