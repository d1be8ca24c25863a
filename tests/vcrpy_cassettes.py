"""Helpers for tests that record plain vcrpy cassettes and compare what replays give a client.

A *scenario* is a list of calls, each a function of an ``openai.OpenAI`` client that
returns what the client got, as plain data (:func:`view`). The same scenario runs live
(recording), then under plain vcrpy and under vcr_ext with the server stopped.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import vcr

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer

FAKE_KEY = "sk-test-convert-0000000000000000"
Call = Callable[[openai.OpenAI], Any]
# Objects whose id and timestamp vcr_ext normalizes on purpose ("rec-<hash>", 0).
_NORMALIZED_KINDS = ("chat.completion", "chat.completion.chunk", "text_completion")


def view(value: Any) -> Any:
    """What a client got, as plain data; the ids and timestamps vcr_ext normalizes left out."""
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [view(v) for v in value]
    if isinstance(value, dict):
        if value.get("object") in _NORMALIZED_KINDS:
            value = {k: v for k, v in value.items() if k not in ("id", "created")}
        return {k: view(v) for k, v in value.items()}
    return value


def client(base_url: str) -> openai.OpenAI:
    # No retries: a replay that misses must fail at once, not be tried again.
    return openai.OpenAI(base_url=base_url, api_key=FAKE_KEY, max_retries=0)


def chat(content: str, **extra: Any) -> Call:
    def call(c: openai.OpenAI) -> Any:
        messages: Any = [{"role": "user", "content": content}]
        return view(c.chat.completions.create(model="gpt-4o-mini", messages=messages, **extra))

    return call


def chat_stream(content: str) -> Call:
    def call(c: openai.OpenAI) -> Any:
        messages: Any = [{"role": "user", "content": content}]
        stream = c.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        return [view(chunk) for chunk in stream]

    return call


def models(c: openai.OpenAI) -> Any:
    return [view(m) for m in c.models.list()]


def file_content(file_id: str) -> Call:
    def call(c: openai.OpenAI) -> Any:
        reply = c.files.content(file_id)
        return {"bytes": reply.content, "type": reply.response.headers.get("content-type")}

    return call


def chat_body(content: str, *, completion_id: str = "chatcmpl-AbC123", created: int = 1761564674) -> bytes:
    """A chat.completion body as api.openai.com frames it (pretty-printed JSON)."""
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        "service_tier": "default",
        "system_fingerprint": "fp_560af6e559",
    }
    return json.dumps(body, indent=2).encode() + b"\n"


JSON_HEADERS = [
    ("content-type", "application/json"),
    ("x-request-id", "req_convert_1"),
    ("openai-processing-ms", "310"),
]
SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("x-request-id", "req_convert_2")]


def enqueue_gzip_chat(server: FakeOpenAIServer, content: str) -> None:
    """A compressed response, as api.openai.com sends one to a client that accepts gzip."""
    server.enqueue(
        "POST",
        "/v1/chat/completions",
        headers=[*JSON_HEADERS, ("content-encoding", "gzip")],
        body=gzip.compress(chat_body(content), mtime=0),
    )


def record_plain(
    cassette: Path,
    serializer: str,
    calls: Sequence[Call],
    setup: Callable[[FakeOpenAIServer], None],
    **vcr_options: Any,
) -> tuple[str, list[Any]]:
    """Record ``calls`` live into a plain vcrpy cassette; the server's base URL and what the client got."""
    with FakeOpenAIServer() as server:
        setup(server)
        recorder = vcr.VCR(serializer=serializer, record_mode="once", **vcr_options)
        with recorder.use_cassette(str(cassette)):
            c = client(server.base_url)
            got = [call(c) for call in calls]
        return server.base_url, got


def replay_plain(cassette: Path, serializer: str, base_url: str, calls: Sequence[Call]) -> list[Any]:
    """What the client gets replaying ``cassette`` under plain vcrpy, nothing listening."""
    player = vcr.VCR(serializer=serializer, record_mode="none")
    with player.use_cassette(str(cassette)):
        c = client(base_url)
        return [call(c) for call in calls]


def replay_ours(cassette: Path, base_url: str, calls: Sequence[Call], **options: Any) -> list[Any]:
    """What the client gets replaying ``cassette`` under vcr_ext, nothing listening."""
    with vcr_ext.VCR(record_mode="none", **options).use_cassette(str(cassette)):
        c = client(base_url)
        return [call(c) for call in calls]


def replay_httpx(cassette: Path, url: str, *, ours: bool, serializer: str = "yaml") -> dict[str, Any]:
    """A plain ``httpx.get`` replayed from ``cassette``: status, content type and JSON body."""
    player = vcr_ext.VCR(record_mode="none") if ours else vcr.VCR(serializer=serializer, record_mode="none")
    with player.use_cassette(str(cassette)):
        reply = httpx.get(url, timeout=5)
    return {"status": reply.status_code, "type": reply.headers.get("content-type"), "json": reply.json()}


def convert(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``vcr-ext convert ARGS`` as a user runs it, in a subprocess."""
    # No *_API_KEY of the environment may count as a secret in what the tests write.
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith(("_API_KEY", "_TOKEN", "_SECRET"))}
    cmd = [sys.executable, "-m", "vcr_ext.cli.main", "convert", *map(os.fspath, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=120)


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or the file itself) by relative name, with its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {os.fspath(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
