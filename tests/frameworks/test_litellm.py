"""LiteLLM (sync and async, streamed and not; the OpenAI and Anthropic routes) recorded, then replayed equal.

Each test calls ``litellm.completion`` or ``litellm.acompletion`` live against a loopback
server inside a vcr_ext cassette, replays it with the server gone (record mode ``none``),
then again from another base URL (``api_base``), and compares what LiteLLM returned: the
``ModelResponse``'s model, choices (content, tool calls, finish reason) and usage, or
each stream chunk's delta, finish reason and usage. It also checks that the cassette is
typed per chunk with the provider SDK's classes and holds no API key.

LiteLLM sends the OpenAI route through the openai SDK (``httpx2`` under openai 3.x) and
the Anthropic route through its own ``httpx`` client (``{api_base}/v1/messages``): vcrpy's
stubs record both.

The bytes served are real, from ``$VCR_EXT_CORPUS`` (see provider_server.py): the OpenAI
chat streams ``wire/chat_stream_openai_2025-10-27_r4u.sse`` (text) and openai-python's
snapshot ``a247c49c…`` (a ``get_weather`` tool call); the Anthropic messages
``test_anthropic_model_instructions.yaml`` (text), ``test_anthropic_tool_output.yaml``
(its first answer, a ``tool_use``) and ``test_request_stream_fallback_for_high_max_tokens.yaml``
(a text stream). The non-streamed OpenAI completion, which has no capture, is answered by
FakeOpenAIServer's generated completion.

Left out of the comparison, as set per call: the ``id`` and ``created`` of every
``ModelResponse`` and chunk. LiteLLM stamps its own ``chatcmpl-<uuid>`` id on Anthropic
answers and its clock time as ``created`` on Anthropic answers and on every stream chunk;
the other ids and ``created`` are the server's, which vcr_ext normalizes (README, "Ids and
timestamps").

No network: LiteLLM's model cost map is read from the package
(``LITELLM_LOCAL_MODEL_COST_MAP``, set before LiteLLM is imported; without it, importing
LiteLLM fetches the map from raw.githubusercontent.com, as the last test shows) and its
telemetry is off.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Before LiteLLM is imported: it would otherwise fetch its model cost map from GitHub.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm", reason="litellm is not installed (tox -e frameworks installs it)")

from provider_server import (  # noqa: E402
    Canned,
    fake_key,
    pydantic_ai_cassette,
    records,
    serve,
    wire_capture,
    written,
)

import vcr_ext  # noqa: E402
from vcr_ext import sdk_types  # noqa: E402
from vcr_ext.demo.server import FakeOpenAIServer  # noqa: E402

litellm.telemetry = False

OPENAI_KEY = fake_key("sk-proj-", "litellm-openai", 48)
ANTHROPIC_KEY = fake_key("sk-ant-api03-", "litellm-anthropic", 80)
# Nothing listens on the discard port: a replay that connected would fail.
OTHER_ORIGIN = "http://127.0.0.1:9/gateway"
CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
CHAT = "openai.types.chat.chat_completion.ChatCompletion"
WEATHER_TOOL_CALL = (
    "openai_python_snapshots/a247c49c5fcd492bfb7a02a3306ad615ed8d8f649888ebfddfbc3ee151f44d46.bin"
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "state": {"type": "string"}},
            "required": ["city", "state"],
        },
    },
}
COUNTRY_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_user_country", "parameters": {"type": "object", "properties": {}}},
    },
    {
        "type": "function",
        "function": {
            "name": "final_result",
            "description": "The final response which ends this conversation",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                "required": ["city", "country"],
            },
        },
    },
]


# ------------------------------------------------------------------ what LiteLLM returned


def _tool_calls(calls: Any) -> Any:
    if not calls:
        return None
    return [
        {"id": c.id, "type": c.type, "name": c.function.name, "arguments": c.function.arguments}
        for c in calls
    ]


def _usage(usage: Any) -> Any:
    if usage is None:
        return None
    return {k: getattr(usage, k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _response(response: Any) -> dict[str, Any]:
    """A ``ModelResponse`` without its per-call ``id`` and ``created``."""
    return {
        "model": response.model,
        "choices": [
            {
                "index": c.index,
                "finish_reason": c.finish_reason,
                "role": c.message.role,
                "content": c.message.content,
                "tool_calls": _tool_calls(c.message.tool_calls),
            }
            for c in response.choices
        ],
        "usage": _usage(getattr(response, "usage", None)),
    }


def _chunk(chunk: Any) -> dict[str, Any]:
    """A stream chunk without its per-call ``id`` and ``created``."""
    return {
        "model": chunk.model,
        "choices": [
            {
                "index": c.index,
                "finish_reason": c.finish_reason,
                "role": c.delta.role,
                "content": c.delta.content,
                "tool_calls": _tool_calls(c.delta.tool_calls),
            }
            for c in chunk.choices
        ],
        "usage": _usage(getattr(chunk, "usage", None)),
    }


def _call(asynchronous: bool, stream: bool, **kwargs: Any) -> Any:
    """One LiteLLM call as the test's caller sees it."""
    if not asynchronous:
        reply = litellm.completion(stream=stream, **kwargs)
        return [_chunk(c) for c in reply] if stream else _response(reply)

    async def run() -> Any:
        reply = await litellm.acompletion(stream=stream, **kwargs)
        return [_chunk(c) async for c in reply] if stream else _response(reply)

    return asyncio.run(run())


class Recording:
    """A live call recorded into ``tmp_path/cassette``, its replay, and its replay from another base URL."""

    def __init__(self, tmp_path: Path, responses: list[Canned], run: Callable[[str], Any]) -> None:
        self.cassette = tmp_path / "cassette"
        with FakeOpenAIServer() as server:
            serve(server, *responses)
            with vcr_ext.VCR(record_mode="once").use_cassette(str(self.cassette)):
                self.live = run(server.url)
            self.sent = list(server.requests)
            origin = server.url
        # The server is gone: everything below is played from the cassette.
        with vcr_ext.VCR(record_mode="none").use_cassette(str(self.cassette)):
            self.replayed = run(origin)
        with vcr_ext.VCR(record_mode="none").use_cassette(str(self.cassette)):
            self.elsewhere = run(OTHER_ORIGIN)
        (self.record,) = records(self.cassette)
        self.files = written(tmp_path)

    def assert_replays_equal(self) -> None:
        assert self.replayed == self.live
        assert self.elsewhere == self.live

    def assert_no_key(self, key: str, header: str) -> None:
        (sent,) = self.sent
        assert key in sent.headers[header]  # LiteLLM did send it
        assert self.files and key.encode() not in self.files
        assert self.record["request"]["headers"] == {}

    def types(self) -> list[str]:
        body = self.record["response"]["body"]
        return [item["__type__"] for item in (body if isinstance(body, list) else [body])]


def _text(result: Any) -> str:
    if isinstance(result, list):
        return "".join(c["content"] or "" for chunk in result for c in chunk["choices"])
    return "".join(c["content"] or "" for c in result["choices"])


MODES = [(False, False), (True, False), (False, True), (True, True)]
MODE_IDS = ["sync", "async", "sync-stream", "async-stream"]


# ------------------------------------------------------------------ the OpenAI route


def _openai_call(asynchronous: bool, stream: bool, url: str, **kwargs: Any) -> Any:
    return _call(
        asynchronous,
        stream,
        model="openai/gpt-3.5-turbo",
        api_base=url + "/v1",
        api_key=OPENAI_KEY,
        messages=[{"role": "user", "content": "Hello"}],
        **kwargs,
    )


@pytest.mark.parametrize(("asynchronous", "stream"), MODES, ids=MODE_IDS)
def test_openai_route(corpus_dir: Path, tmp_path: Path, asynchronous: bool, stream: bool) -> None:
    # The stream is the real capture; the non-streamed completion is generated (no capture).
    responses = [wire_capture(corpus_dir, "chat_stream_openai_2025-10-27_r4u.sse")] if stream else []
    rec = Recording(tmp_path, responses, lambda url: _openai_call(asynchronous, stream, url))
    if stream:
        assert _text(rec.live) == "Hi, how are you?"
        assert [c["choices"][0]["finish_reason"] for c in rec.live][-1] == "stop"
    else:
        assert _text(rec.live) and rec.live["usage"]["total_tokens"] > 0
    rec.assert_replays_equal()
    assert rec.types() == ([CHUNK] * 8 if stream else [CHAT])
    rec.assert_no_key(OPENAI_KEY, "authorization")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_openai_route_tool_call_stream(corpus_dir: Path, tmp_path: Path, asynchronous: bool) -> None:
    capture = wire_capture(corpus_dir, WEATHER_TOOL_CALL)
    rec = Recording(
        tmp_path,
        [capture],
        lambda url: _openai_call(
            asynchronous, True, url, tools=[WEATHER_TOOL], stream_options={"include_usage": True}
        ),
    )
    calls = [t for chunk in rec.live for c in chunk["choices"] for t in c["tool_calls"] or []]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"] == "call_CTf1nWJLqSeRgDqaCG27xZ74"
    assert "".join(t["arguments"] or "" for t in calls) == '{"city":"San Francisco","state":"CA"}'
    assert rec.live[-1]["usage"] is not None
    rec.assert_replays_equal()
    assert set(rec.types()) == {CHUNK}
    rec.assert_no_key(OPENAI_KEY, "authorization")


# ------------------------------------------------------------------ the Anthropic route


def _anthropic_call(asynchronous: bool, stream: bool, url: str, model: str, **kwargs: Any) -> Any:
    return _call(
        asynchronous, stream, model=f"anthropic/{model}", api_base=url, api_key=ANTHROPIC_KEY, **kwargs
    )


def _anthropic_names() -> dict[str, str]:
    names = sdk_types.anthropic_names()
    assert names is not None
    return names


@pytest.mark.parametrize(("asynchronous", "stream"), MODES, ids=MODE_IDS)
def test_anthropic_route(corpus_dir: Path, tmp_path: Path, asynchronous: bool, stream: bool) -> None:
    if stream:
        recorded = pydantic_ai_cassette(
            corpus_dir, "anthropic", "test_request_stream_fallback_for_high_max_tokens.yaml"
        )
        kwargs: dict[str, Any] = {
            "messages": [{"role": "user", "content": "What is 1+1? Answer with just the number."}],
            "max_tokens": 32000,
        }
        model, answer = "claude-sonnet-4-5", "2"
    else:
        recorded = pydantic_ai_cassette(corpus_dir, "anthropic", "test_anthropic_model_instructions.yaml")
        kwargs = {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            "max_tokens": 4096,
        }
        model, answer = "claude-3-opus-latest", "The capital of France is Paris."
    rec = Recording(
        tmp_path, recorded, lambda url: _anthropic_call(asynchronous, stream, url, model, **kwargs)
    )
    assert _text(rec.live) == answer
    if not stream:
        assert rec.live["usage"] == {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
    rec.assert_replays_equal()
    names = _anthropic_names()
    if stream:
        typed = [t for t in rec.types() if t != sdk_types.SSE_EVENT]  # ping has no class in the SDK
        assert names["message_start"] in typed and set(typed) <= set(names.values())
    else:
        assert rec.types() == [names["message"]]
    rec.assert_no_key(ANTHROPIC_KEY, "x-api-key")
    assert rec.sent[0].path.startswith("/v1/messages")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_anthropic_route_tool_call(corpus_dir: Path, tmp_path: Path, asynchronous: bool) -> None:
    first, _ = pydantic_ai_cassette(corpus_dir, "anthropic", "test_anthropic_tool_output.yaml")
    rec = Recording(
        tmp_path,
        [first],
        lambda url: _anthropic_call(
            asynchronous,
            False,
            url,
            "claude-sonnet-4-5",
            messages=[{"role": "user", "content": "What is the largest city in the user country?"}],
            tools=COUNTRY_TOOLS,
            tool_choice="required",
            max_tokens=4096,
        ),
    )
    (choice,) = rec.live["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["tool_calls"] == [
        {
            "id": "toolu_01X9wcHKKAZD9tBC711xipPa",
            "type": "function",
            "name": "get_user_country",
            "arguments": "{}",
        }
    ]
    rec.assert_replays_equal()
    assert rec.types() == [_anthropic_names()["message"]]
    # LiteLLM translated the OpenAI-style tools into Anthropic's, as the recorded request had them.
    body = rec.record["request"]["body"]
    assert [t["name"] for t in body["tools"]] == ["get_user_country", "final_result"]
    assert body["tool_choice"] == {"type": "any"}
    rec.assert_no_key(ANTHROPIC_KEY, "x-api-key")


# ------------------------------------------------------------------ no network


# Run in a child interpreter: an audit hook there refuses (and notes) every DNS lookup and
# connection that is not loopback, so nothing leaves the machine even when one is tried.
_GUARDED_IMPORT = """
import json, sys
LOOPBACK = ("127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost")
attempts = []
def hook(event, args):
    if event == "socket.getaddrinfo" and args[0] not in LOOPBACK:
        attempts.append(f"{args[0]}:{args[1]}")
        raise OSError("no network in tests")
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] not in LOOPBACK:
        attempts.append(f"{args[1][0]}:{args[1][1]}")
        raise OSError("no network in tests")
sys.addaudithook(hook)
import litellm
litellm.telemetry = False
print(json.dumps({"attempts": attempts, "models": len(litellm.model_cost)}))
"""


@pytest.mark.parametrize("local_cost_map", [True, False], ids=["local-cost-map", "default"])
def test_importing_litellm_touches_no_network_with_the_local_cost_map(local_cost_map: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    if local_cost_map:
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    done = subprocess.run(
        [sys.executable, "-c", _GUARDED_IMPORT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["models"] > 100  # the cost map is loaded either way (the package's own copy)
    if local_cost_map:
        assert result["attempts"] == []
    else:
        # Without the variable, LiteLLM fetches the map from GitHub on import (refused here).
        assert result["attempts"] and all(
            a.startswith("raw.githubusercontent.com:") for a in result["attempts"]
        )
