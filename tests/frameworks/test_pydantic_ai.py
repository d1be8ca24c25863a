"""pydantic-ai agents (OpenAI, Anthropic and Google models) recorded, then replayed equal to the live run.

Each test runs a pydantic-ai agent live against a loopback server inside a vcr_ext cassette,
replays it with the server gone (record mode ``none``), then replays it again from
another base URL, and compares the runs: the output, every message of
``result.all_messages()`` and the usage (streaming: the text deltas too). It also checks
that the cassette is typed per chunk with the provider SDK's classes and holds no API key.

The bytes served are real, from ``$VCR_EXT_CORPUS`` (see provider_server.py):

- OpenAI chat streams from ``wire/``: ``chat_stream_openai_2025-10-27_r4u.sse`` (text),
  openai-python's snapshots ``a247c49c…`` (a ``get_weather`` tool call, then
  ``e2aad469…``, text) and ``7e5ea4d1…`` (JSON-schema structured output); the Responses
  stream ``responses_stream_openai_2025-10-27_r4u.sse``;
- Anthropic: ``test_anthropic_tool_output.yaml`` (a tool, then the ``final_result``
  output tool), ``test_anthropic_model_instructions.yaml`` (text),
  ``test_request_stream_fallback_for_high_max_tokens.yaml`` (a text stream),
  ``test_anthropic_model_thinking_part_stream.yaml`` (a thinking, then text, stream);
- Google (Gemini API): ``test_google_model.yaml`` (text), ``test_google_model_stream.yaml``
  (a text stream), ``test_google_native_output.yaml`` (structured output),
  ``test_google_tool_output.yaml`` (a tool, then the ``final_result`` output tool).

Each agent is set up as the pydantic-ai test that recorded its cassette (same model,
prompt, tools, output type), so the recorded answers fit. The one OpenAI call with no
capture, a non-streamed tool loop with a structured output, is answered by
FakeOpenAIServer's generated completions (tool calls with arguments built from the
schema, then an answer).

What legitimately differs between the live run and its replay, and is left out of the
comparison: the ``timestamp`` pydantic-ai stamps on every message and part from the local
clock and the ``run_id``/``conversation_id`` it draws per run; the ``provider_url`` (the base
URL, which the second replay changes on purpose); and for OpenAI chat completions, the
chunk ``id`` and ``created`` vcr_ext normalizes (README, "Ids and timestamps"), which
pydantic-ai exposes as ``provider_response_id`` and ``provider_details["timestamp"]``.
The two replays are compared with only the values pydantic-ai sets per run and the
``provider_url`` left out.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

pytest.importorskip("pydantic_ai", reason="pydantic-ai is not installed (tox -e frameworks installs it)")

from provider_server import (
    Canned,
    fake_key,
    pydantic_ai_cassette,
    records,
    serve,
    wire_capture,
    written,
)
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.output import NativeOutput, ToolOutput

import vcr_ext
from vcr_ext import sdk_types
from vcr_ext.demo.server import FakeOpenAIServer

OPENAI_KEY = fake_key("sk-proj-", "openai", 48)
ANTHROPIC_KEY = fake_key("sk-ant-api03-", "anthropic", 80)
GOOGLE_KEY = fake_key("AIza", "google", 35)
# Nothing listens on the discard port: a replay that connected would fail. The path
# prefix stands for a gateway's base path.
OTHER_ORIGIN = "http://127.0.0.1:9/gateway"
# Set per run by pydantic-ai (local clock, fresh uuids) or by the base URL.
PER_RUN = frozenset({"timestamp", "run_id", "conversation_id", "provider_url"})
CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
CHAT = "openai.types.chat.chat_completion.ChatCompletion"

# ------------------------------------------------------------------ comparing runs


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _normalized_openai_chat(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` without what vcr_ext normalizes in chat chunks (their ``id`` and ``created``)."""
    messages = []
    for message in summary["messages"]:
        message = {k: v for k, v in message.items() if k != "provider_response_id"}
        if isinstance(message.get("provider_details"), dict):
            message["provider_details"] = {
                k: v for k, v in message["provider_details"].items() if k != "timestamp"
            }
        messages.append(message)
    return {**summary, "messages": messages}


def _summary(result: Any, output: Any, deltas: list[str] | None = None) -> dict[str, Any]:
    """What a run gave its caller, as JSON, without the values set per run (see the module docstring)."""
    messages = ModelMessagesTypeAdapter.dump_python(result.all_messages(), mode="json")
    return {
        "output": output.model_dump() if isinstance(output, BaseModel) else output,
        "messages": _without(messages, PER_RUN),
        "usage": dataclasses.asdict(result.usage),
        "deltas": deltas,
    }


def _run_sync(agent: Agent[Any, Any], prompt: str) -> dict[str, Any]:
    result = agent.run_sync(prompt)
    return _summary(result, result.output)


def _run_async(agent: Agent[Any, Any], prompt: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        result = await agent.run(prompt)
        return _summary(result, result.output)

    return asyncio.run(run())


def _run_stream(agent: Agent[Any, Any], prompt: str, *, text: bool = True) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with agent.run_stream(prompt) as result:
            if text:
                deltas = [d async for d in result.stream_text(delta=True)]
            else:
                deltas = [repr(o) async for o in result.stream_output(debounce_by=None)]
            output = await result.get_output()
        return _summary(result, output, deltas)

    return asyncio.run(run())


RUNS: dict[str, Callable[[Agent[Any, Any], str], dict[str, Any]]] = {
    "sync": _run_sync,
    "async": _run_async,
    "stream": _run_stream,
}


class Recording:
    """A live run recorded into ``tmp_path/cassette``, its replay, and its replay from another base URL."""

    def __init__(
        self,
        tmp_path: Path,
        responses: list[Canned],
        run: Callable[[str], dict[str, Any]],
    ) -> None:
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
        self.records = records(self.cassette)
        self.files = written(tmp_path)

    def assert_replays_equal(self, *, normalized_chat: bool = False) -> None:
        live = _normalized_openai_chat(self.live) if normalized_chat else self.live
        replayed = _normalized_openai_chat(self.replayed) if normalized_chat else self.replayed
        assert replayed == live
        assert self.elsewhere == self.replayed

    def assert_no_key(self, key: str) -> None:
        assert any(
            key
            in r.headers.get("authorization", "")
            + r.headers.get("x-api-key", "")
            + r.headers.get("x-goog-api-key", "")
            + r.path
            for r in self.sent
        ), "the key was sent"
        assert self.files and key.encode() not in self.files
        assert all(r["request"]["headers"] == {} for r in self.records)

    def types(self) -> list[list[str | None]]:
        """Per record, the ``__type__`` of every stored chunk (or of the one body)."""
        out: list[list[str | None]] = []
        for record in self.records:
            body = record["response"]["body"]
            items = body if isinstance(body, list) else [body]
            out.append([item.get("__type__") if isinstance(item, dict) else None for item in items])
        return out


# ------------------------------------------------------------------ OpenAI


def _openai_agent(kind: str, base_url: str, model: str, **kwargs: Any) -> Agent[Any, Any]:
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=base_url + "/v1", api_key=OPENAI_KEY)
    cls = OpenAIChatModel if kind == "chat" else OpenAIResponsesModel
    return Agent(cls(model, provider=provider), **kwargs)


def test_openai_chat_stream_text(corpus_dir: Path, tmp_path: Path) -> None:
    capture = wire_capture(corpus_dir, "chat_stream_openai_2025-10-27_r4u.sse")
    rec = Recording(
        tmp_path, [capture], lambda url: _run_stream(_openai_agent("chat", url, "gpt-3.5-turbo"), "Hello")
    )
    assert rec.live["output"] == "Hi, how are you?"
    assert "".join(rec.live["deltas"]) == rec.live["output"]
    rec.assert_replays_equal(normalized_chat=True)
    assert rec.types() == [[CHUNK] * 8]
    rec.assert_no_key(OPENAI_KEY)


class WeatherInFahrenheit(BaseModel):
    city: str
    temperature: int
    units: str


SNAPSHOTS = "openai_python_snapshots"
WEATHER_JSON = f"{SNAPSHOTS}/7e5ea4d12e7cc064399b6631415e65923f182256b6e6b752950a3aaa2ad2320a.bin"
WEATHER_TOOL_CALL = f"{SNAPSHOTS}/a247c49c5fcd492bfb7a02a3306ad615ed8d8f649888ebfddfbc3ee151f44d46.bin"
WEATHER_TEXT = f"{SNAPSHOTS}/e2aad469b71d1d4894ff833ea147020a9d875eb7ce644a0ff355581690a4cbfd.bin"


def test_openai_chat_stream_structured_output(corpus_dir: Path, tmp_path: Path) -> None:
    capture = wire_capture(corpus_dir, WEATHER_JSON)

    def run(url: str) -> dict[str, Any]:
        agent = _openai_agent("chat", url, "gpt-4o-2024-08-06", output_type=NativeOutput(WeatherInFahrenheit))
        return _run_stream(agent, "What's the weather like in SF?", text=False)

    rec = Recording(tmp_path, [capture], run)
    assert rec.live["output"] == {"city": "San Francisco", "temperature": 61, "units": "f"}
    rec.assert_replays_equal(normalized_chat=True)
    (types,) = rec.types()
    assert types and set(types) == {CHUNK}
    rec.assert_no_key(OPENAI_KEY)


def test_openai_chat_stream_tool_loop(corpus_dir: Path, tmp_path: Path) -> None:
    tool_call = wire_capture(corpus_dir, WEATHER_TOOL_CALL)
    answer = wire_capture(corpus_dir, WEATHER_TEXT)
    calls: list[tuple[str, str]] = []

    def run(url: str) -> dict[str, Any]:
        agent = _openai_agent("chat", url, "gpt-4o-2024-08-06")

        @agent.tool_plain
        def get_weather(city: str, state: str) -> str:
            """The weather in a city."""
            calls.append((city, state))
            return "61F, sunny"

        return _run_stream(agent, "What's the weather like in San Francisco?")

    rec = Recording(tmp_path, [tool_call, answer], run)
    assert calls == [("San Francisco", "CA")] * 3  # the live run and both replays ran the tool
    assert rec.live["output"].startswith("I'm unable to provide real-time weather updates")
    parts = [p["part_kind"] for m in rec.live["messages"] for p in m["parts"]]
    assert parts == ["user-prompt", "tool-call", "tool-return", "text"]
    rec.assert_replays_equal(normalized_chat=True)
    assert [set(t) for t in rec.types()] == [{CHUNK}, {CHUNK}]
    # The second request sent the tool's result back: it is a recording of its own.
    tool_messages = [m for r in rec.records for m in r["request"]["body"]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["61F, sunny"]
    rec.assert_no_key(OPENAI_KEY)


def test_openai_responses_stream(corpus_dir: Path, tmp_path: Path) -> None:
    capture = wire_capture(corpus_dir, "responses_stream_openai_2025-10-27_r4u.sse", "/v1/responses")
    rec = Recording(
        tmp_path,
        [capture],
        lambda url: _run_stream(_openai_agent("responses", url, "gpt-3.5-turbo"), "Hello"),
    )
    assert rec.live["output"] == "Greetings, hello, hi, hey, salutations!"
    assert "".join(rec.live["deltas"]) == rec.live["output"]
    assert rec.live["usage"]["input_tokens"] == 13
    rec.assert_replays_equal()  # Responses ids are kept (later requests send them back)
    names = sdk_types.responses_event_types()
    (types,) = rec.types()
    assert types and all(t in names.values() for t in types)
    rec.assert_no_key(OPENAI_KEY)


class CityLocation(BaseModel):
    city: str
    country: str


@pytest.mark.parametrize("call", ["sync", "async"])
def test_openai_chat_tools_and_structured_output(tmp_path: Path, call: str) -> None:
    # No capture of a non-streamed tool loop: FakeOpenAIServer generates the completions.
    calls: list[str] = []

    def run(url: str) -> dict[str, Any]:
        agent = _openai_agent("chat", url, "gpt-4o", output_type=NativeOutput(CityLocation))

        @agent.tool_plain
        def get_user_country() -> str:
            calls.append("get_user_country")
            return "Mexico"

        return RUNS[call](agent, "What is the largest city in the user country?")

    rec = Recording(tmp_path, [], run)
    assert set(rec.live["output"]) == {"city", "country"}
    parts = [p["part_kind"] for m in rec.live["messages"] for p in m["parts"]]
    assert parts == ["user-prompt", "tool-call", "tool-return", "text"]
    rec.assert_replays_equal(normalized_chat=True)
    assert calls == ["get_user_country"] * 3  # live, and in each replay
    assert all(t == [CHAT] for t in rec.types())
    rec.assert_no_key(OPENAI_KEY)


# ------------------------------------------------------------------ Anthropic


def _anthropic_agent(base_url: str, model: str, **kwargs: Any) -> Agent[Any, Any]:
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=base_url)
    return Agent(AnthropicModel(model, provider=provider), **kwargs)


def _anthropic_names() -> dict[str, str]:
    names = sdk_types.anthropic_names()
    assert names is not None
    return names


@pytest.mark.parametrize("call", ["sync", "async"])
def test_anthropic_tools_and_structured_output(corpus_dir: Path, tmp_path: Path, call: str) -> None:
    recorded = pydantic_ai_cassette(corpus_dir, "anthropic", "test_anthropic_tool_output.yaml")

    def run(url: str) -> dict[str, Any]:
        # max_tokens as recorded: above 21,333 pydantic-ai streams the request instead.
        agent = _anthropic_agent(
            url,
            "claude-sonnet-4-5",
            output_type=ToolOutput(CityLocation),
            model_settings={"max_tokens": 4096},
        )

        @agent.tool_plain
        async def get_user_country() -> str:
            return "Mexico"

        return RUNS[call](agent, "What is the largest city in the user country?")

    rec = Recording(tmp_path, recorded, run)
    assert rec.live["output"] == {"city": "Mexico City", "country": "Mexico"}
    usage = rec.live["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["requests"]) == (445 + 497, 23 + 56, 2)
    rec.assert_replays_equal()
    assert rec.types() == [[_anthropic_names()["message"]]] * 2
    rec.assert_no_key(ANTHROPIC_KEY)


def test_anthropic_text(corpus_dir: Path, tmp_path: Path) -> None:
    recorded = pydantic_ai_cassette(corpus_dir, "anthropic", "test_anthropic_model_instructions.yaml")

    def run(url: str) -> dict[str, Any]:
        agent = _anthropic_agent(url, "claude-3-opus-latest", instructions="You are a helpful assistant.")
        return _run_sync(agent, "What is the capital of France?")

    rec = Recording(tmp_path, recorded, run)
    assert rec.live["output"] == "The capital of France is Paris."
    rec.assert_replays_equal()
    assert rec.types() == [[_anthropic_names()["message"]]]
    rec.assert_no_key(ANTHROPIC_KEY)


def test_anthropic_stream(corpus_dir: Path, tmp_path: Path) -> None:
    recorded = pydantic_ai_cassette(
        corpus_dir, "anthropic", "test_request_stream_fallback_for_high_max_tokens.yaml"
    )

    def run(url: str) -> dict[str, Any]:
        agent = _anthropic_agent(url, "claude-sonnet-4-5", model_settings={"max_tokens": 32000})
        return _run_stream(agent, "What is 1+1? Answer with just the number.")

    rec = Recording(tmp_path, recorded, run)
    assert rec.live["output"] == "2"
    rec.assert_replays_equal()
    names = _anthropic_names()
    (types,) = rec.types()
    typed = [t for t in types if t != sdk_types.SSE_EVENT]  # ping has no class in the SDK
    assert typed and set(typed) <= set(names.values())
    assert names["message_start"] in typed and names["content_block_delta"] in typed
    rec.assert_no_key(ANTHROPIC_KEY)


def test_anthropic_thinking_stream(corpus_dir: Path, tmp_path: Path) -> None:
    recorded = pydantic_ai_cassette(corpus_dir, "anthropic", "test_anthropic_model_thinking_part_stream.yaml")

    def run(url: str) -> dict[str, Any]:
        agent = _anthropic_agent(
            url,
            "claude-sonnet-4-0",
            model_settings={
                "max_tokens": 4096,
                "anthropic_thinking": {"type": "enabled", "budget_tokens": 1024},
            },
        )
        return _run_stream(agent, "How do I cross the street?")

    rec = Recording(tmp_path, recorded, run)
    (response,) = [m for m in rec.live["messages"] if m["kind"] == "response"]
    kinds = [p["part_kind"] for p in response["parts"]]
    assert kinds == ["thinking", "text"] and response["parts"][0]["signature"]
    assert "".join(rec.live["deltas"]) == rec.live["output"] == response["parts"][1]["content"]
    rec.assert_replays_equal()
    names = _anthropic_names()
    (types,) = rec.types()
    assert set(types) - {sdk_types.SSE_EVENT} <= set(names.values())
    deltas = [
        item["__data__"]["delta"]["type"]
        for item in rec.records[0]["response"]["body"]
        if item.get("__type__") == names["content_block_delta"]
    ]
    assert {"thinking_delta", "signature_delta", "text_delta"} <= set(deltas)
    rec.assert_no_key(ANTHROPIC_KEY)


# ------------------------------------------------------------------ Google (Gemini API)


def _google_agent(base_url: str, model: str, **kwargs: Any) -> Agent[Any, Any]:
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.providers.google import GoogleProvider

    provider = GoogleProvider(api_key=GOOGLE_KEY, base_url=base_url)
    return Agent(GoogleModel(model, provider=provider), **kwargs)


GEMINI_TYPE = "google.genai.types.GenerateContentResponse"


def _assert_gemini_typed(rec: Recording) -> None:
    assert all(t and set(t) == {GEMINI_TYPE} for t in rec.types()), rec.types()


def _google_text(corpus_dir: Path, tmp_path: Path) -> Recording:
    recorded = pydantic_ai_cassette(corpus_dir, "google", "test_google_model.yaml")
    rec = Recording(
        tmp_path,
        recorded,
        lambda url: _run_sync(
            _google_agent(url, "gemini-2.5-flash", system_prompt="You are a chatbot."), "Hello!"
        ),
    )
    return rec


def test_google_text(corpus_dir: Path, tmp_path: Path) -> None:
    rec = _google_text(corpus_dir, tmp_path)
    assert rec.live["output"] == "Hello! How can I help you today?"
    rec.assert_replays_equal()
    rec.assert_no_key(GOOGLE_KEY)


def test_google_text_typed(corpus_dir: Path, tmp_path: Path) -> None:
    _assert_gemini_typed(_google_text(corpus_dir, tmp_path))


def _google_stream(corpus_dir: Path, tmp_path: Path) -> Recording:
    recorded = pydantic_ai_cassette(corpus_dir, "google", "test_google_model_stream.yaml")

    def run(url: str) -> dict[str, Any]:
        agent = _google_agent(
            url,
            "gemini-2.0-flash-exp",
            system_prompt="You are a helpful chatbot.",
            model_settings={"temperature": 0.0},
        )
        return _run_stream(agent, "What is the capital of France?")

    return Recording(tmp_path, recorded, run)


def test_google_stream(corpus_dir: Path, tmp_path: Path) -> None:
    rec = _google_stream(corpus_dir, tmp_path)
    assert rec.live["output"] == "The capital of France is Paris.\n"
    assert "".join(rec.live["deltas"]) == rec.live["output"]
    rec.assert_replays_equal()
    (record,) = rec.records
    assert record["response"]["is_streaming"] is True and len(record["response"]["body"]) == 3
    rec.assert_no_key(GOOGLE_KEY)


def test_google_stream_typed(corpus_dir: Path, tmp_path: Path) -> None:
    _assert_gemini_typed(_google_stream(corpus_dir, tmp_path))


@pytest.mark.parametrize("call", ["sync", "async"])
def test_google_structured_output(corpus_dir: Path, tmp_path: Path, call: str) -> None:
    recorded = pydantic_ai_cassette(corpus_dir, "google", "test_google_native_output.yaml")

    def run(url: str) -> dict[str, Any]:
        agent = _google_agent(url, "gemini-2.0-flash", output_type=NativeOutput(CityLocation))
        return RUNS[call](agent, "What is the largest city in Mexico?")

    rec = Recording(tmp_path, recorded, run)
    assert rec.live["output"] == {"city": "Mexico City", "country": "Mexico"}
    rec.assert_replays_equal()
    rec.assert_no_key(GOOGLE_KEY)


def _invented_ids_numbered(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with each id pydantic-ai invented (``pyd_ai_<uuid4>``) numbered by first appearance."""
    seen: dict[str, str] = {}

    def number(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: number(v) for k, v in value.items()}
        if isinstance(value, list):
            return [number(v) for v in value]
        if isinstance(value, str) and value.startswith("pyd_ai_"):
            return seen.setdefault(value, f"pyd_ai_{len(seen) + 1}")
        return value

    numbered: dict[str, Any] = number(summary)
    return numbered


def _google_tool_loop(corpus_dir: Path, tmp_path: Path, before_run: Callable[[], None]) -> Recording:
    recorded = pydantic_ai_cassette(corpus_dir, "google", "test_google_tool_output.yaml")

    def run(url: str) -> dict[str, Any]:
        before_run()
        agent = _google_agent(url, "gemini-2.0-flash", output_type=ToolOutput(CityLocation))

        @agent.tool_plain
        async def get_user_country() -> str:
            return "Mexico"

        return _run_sync(agent, "What is the largest city in the user country?")

    rec = Recording(tmp_path, recorded, run)
    assert rec.live["output"] == {"city": "Mexico City", "country": "Mexico"}
    return rec


def test_google_tool_loop(corpus_dir: Path, tmp_path: Path) -> None:
    # pydantic-ai invents the functionCall id (pyd_ai_<uuid4>) Gemini does not send, and
    # sends it back in the second request: that request differs on every run, and replays
    # by the client-ids rule (an id no recorded response holds compares by where it appears).
    # The ids differ in the messages too, legitimately: compared by where they appear.
    rec = _google_tool_loop(corpus_dir, tmp_path, lambda: None)
    assert _invented_ids_numbered(rec.replayed) == _invented_ids_numbered(rec.live)
    assert _invented_ids_numbered(rec.elsewhere) == _invented_ids_numbered(rec.live)


def test_google_tool_loop_replays_when_the_invented_id_is_pinned(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same run with pydantic-ai's id generator made to give the same ids on every run:
    # then it replays equal, so the invented id is all test_google_tool_loop lacks.
    import types
    import uuid

    from pydantic_ai import _utils

    # generate_tool_call_id is bound into dataclass default factories at import, so the
    # uuid4 it calls is what can be pinned: uuid.UUID(int=n) per call, from 1 every run.
    counter: list[int] = []

    def uuid4() -> uuid.UUID:
        counter.append(0)
        return uuid.UUID(int=len(counter))

    monkeypatch.setattr(_utils, "uuid", types.SimpleNamespace(uuid4=uuid4))
    rec = _google_tool_loop(corpus_dir, tmp_path, counter.clear)
    rec.assert_replays_equal()
    assert len(rec.records) == 2
    sent_back = [
        part["functionResponse"]["id"]
        for r in rec.records
        for content in r["request"]["body"]["contents"]
        for part in content["parts"]
        if "functionResponse" in part
    ]
    assert sent_back == ["pyd_ai_" + uuid.UUID(int=1).hex]
    rec.assert_no_key(GOOGLE_KEY)
