"""instructor over the openai SDK, recorded and replayed through vcr_ext.

instructor pins an older ``jiter`` than the newest openai allows, so it runs in its own tox
environment (``tox -e instructor``) with the openai release that resolves there. Each test
runs one instructor call against a loopback server inside a new cassette, then twice more
from the cassette alone (the server stopped; once from the same base URL, once from another
host, port and base path), and compares the pydantic models instructor returned. It also
checks that the cassette is typed per chunk with openai SDK classes and that the API key the
client sent is in no written file.

``create_partial`` is served real captures from api.openai.com (see ``wire_server``): in
instructor's default ``TOOLS`` mode (a streamed tool call) openai-python's ``GetWeatherArgs``
tool-call snapshot, in ``JSON_SCHEMA`` mode (streamed text) its ``Location`` structured-output
snapshot. No capture exists of a non-streamed tool call, so ``create`` (sync and
async) is served the bytes ``vcr_ext.demo.server.FakeOpenAIServer`` generates: a call of the
forced function with arguments made from its JSON schema.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

import pytest

instructor = pytest.importorskip(
    "instructor", reason="instructor is not installed (tox -e instructor installs it)"
)

from openai import AsyncOpenAI, OpenAI  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from wire_server import (  # noqa: E402
    API_KEY,
    CHAT_TYPE,
    Run,
    assert_no_key_written,
    assert_typed,
    chat_text,
    record_and_replay,
    serve_capture,
    sse_data,
)

from vcr_ext.demo.server import FakeOpenAIServer  # noqa: E402

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "What's the weather like in Edinburgh?"}]


class GetWeatherArgs(BaseModel):
    """The model openai-python's tool-call snapshot was recorded with."""

    city: str
    country: str
    units: Literal["c", "f"] = "c"


def _assert_equal(run: Run[Any]) -> None:
    assert run.replayed == run.live
    assert run.other == run.live


def _view(result: Any, completion: Any) -> dict[str, Any]:
    """The model, and the completion instructor parsed it from, without its per-call id.

    The completion's ``id`` (``chatcmpl-…``) and ``created`` are normalized on purpose by the
    recording (``rec-<hash>``, 0); :func:`_assert_normalized` checks them apart.
    """
    assert isinstance(result, GetWeatherArgs)
    data = completion.model_dump()
    return {
        "model": result.model_dump(),
        "completion": {k: v for k, v in data.items() if k not in ("id", "created")},
        "id": data["id"],
        "created": data["created"],
    }


def _assert_normalized(run: Run[dict[str, Any]]) -> None:
    assert run.live["id"].startswith("chatcmpl-") and run.live["created"] > 0
    for replay in (run.replayed, run.other):
        assert replay["id"].startswith("rec-") and replay["created"] == 0
        assert {k: v for k, v in replay.items() if k not in ("id", "created")} == {
            k: v for k, v in run.live.items() if k not in ("id", "created")
        }
    assert run.replayed == run.other


def test_create(tmp_path: Path) -> None:
    def call(base_url: str) -> dict[str, Any]:
        client = instructor.from_openai(OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0))
        result, completion = client.chat.completions.create_with_completion(
            model="gpt-4o-mini", response_model=GetWeatherArgs, messages=MESSAGES, max_retries=0
        )
        return _view(result, completion)

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_normalized(run)
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    assert record["response"]["body"]["__type__"] == CHAT_TYPE
    # instructor forced its function; the recorded answer calls it with the model's arguments.
    assert record["request"]["body"]["tool_choice"]["function"]["name"] == "GetWeatherArgs"
    (tool_call,) = record["response"]["body"]["__data__"]["choices"][0]["message"]["tool_calls"]
    assert (
        GetWeatherArgs.model_validate_json(tool_call["function"]["arguments"]).model_dump()
        == run.live["model"]
    )
    assert_no_key_written(tmp_path, run.sent)


def test_async_create(tmp_path: Path) -> None:
    def call(base_url: str) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            client = instructor.from_openai(AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0))
            result = await client.chat.completions.create(
                model="gpt-4o-mini", response_model=GetWeatherArgs, messages=MESSAGES, max_retries=0
            )
            # instructor keeps the completion it parsed on the model.
            return _view(result, result._raw_response)  # type: ignore[attr-defined]

        return asyncio.run(run())

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_normalized(run)
    assert_typed(run.cassette, {CHAT: 1})
    assert_no_key_written(tmp_path, run.sent)


def test_create_partial_serves_the_real_capture(tmp_path: Path) -> None:
    raw: list[bytes] = []

    def serve(server: FakeOpenAIServer) -> None:
        raw.append(serve_capture(server, CHAT, "tool_call_weather_args"))

    def call(base_url: str) -> list[dict[str, Any]]:
        client = instructor.from_openai(OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0))
        partials = client.chat.completions.create_partial(
            model="gpt-4o-mini", response_model=GetWeatherArgs, messages=MESSAGES, max_retries=0
        )
        return [p.model_dump() for p in partials]

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    arguments = "".join(
        tc["function"].get("arguments") or ""
        for d in sse_data(raw[0])
        for c in d["choices"]
        for tc in c["delta"].get("tool_calls") or []
    )
    assert run.live[-1] == json.loads(arguments) == {"city": "Edinburgh", "country": "UK", "units": "c"}
    assert len(run.live) > 1  # partial models as the arguments stream in, not one at the end
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    assert record["request"]["body"]["stream"] is True
    assert_no_key_written(tmp_path, run.sent)


class Location(BaseModel):
    """The schema openai-python's structured-output snapshot was recorded with."""

    city: str
    temperature: float
    units: Literal["c", "f"]


def test_async_create_partial_json_schema_mode_serves_the_real_capture(tmp_path: Path) -> None:
    # Mode.JSON_SCHEMA asks for a response_format json_schema and parses the streamed text.
    raw: list[bytes] = []

    def serve(server: FakeOpenAIServer) -> None:
        raw.append(serve_capture(server, CHAT, "structured_location"))

    def call(base_url: str) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            client = instructor.from_openai(
                AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0),
                mode=instructor.Mode.JSON_SCHEMA,
            )
            partials = client.chat.completions.create_partial(
                model="gpt-4o-mini",
                response_model=Location,
                messages=[{"role": "user", "content": "What's the weather like in SF?"}],
                max_retries=0,
            )
            return [p.model_dump() async for p in partials]

        return asyncio.run(run())

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    assert (
        run.live[-1]
        == json.loads(chat_text(raw[0]))
        == {"city": "San Francisco", "temperature": 61, "units": "f"}
    )
    assert len(run.live) > 1
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    assert record["request"]["body"]["response_format"]["type"] == "json_schema"
    assert_no_key_written(tmp_path, run.sent)
