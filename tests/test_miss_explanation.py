"""A request that matches nothing says why: cassette, route, model, first difference, and a diff."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import openai
import pytest
from vcr.errors import CannotOverwriteExistingCassetteException

import vcr_ext
from vcr_ext import explain
from vcr_ext.demo.server import FakeOpenAIServer

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
SYSTEM = "You are a helpful weather assistant. Answer briefly."


def _messages(system: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture
def cassette(tmp_path: Path) -> str:
    path = str(tmp_path / "weather")
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(path):
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=_messages(SYSTEM), tools=[TOOL])  # type: ignore[arg-type]
        client.chat.completions.create(model="gpt-4o", messages=_messages("Something else."), temperature=0.2)  # type: ignore[arg-type]
    return path


def _miss(cassette: str, **request: Any) -> str:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    with (
        vcr_ext.VCR(record_mode="none").use_cassette(cassette),
        pytest.raises((CannotOverwriteExistingCassetteException, openai.APIConnectionError)) as err,
    ):
        client.chat.completions.create(model="gpt-4o", **request)
    # openai 2.x wraps what its transport raised in APIConnectionError ("Connection error.").
    miss = err.value.__cause__ if isinstance(err.value, openai.APIConnectionError) else err.value
    assert isinstance(miss, CannotOverwriteExistingCassetteException)
    return str(miss)


def test_changed_system_prompt(cassette: str) -> None:
    message = _miss(cassette, messages=_messages(SYSTEM.replace("briefly", "in one word")), tools=[TOOL])
    print(message)
    assert f"Cassette: {cassette}" in message
    closest = message.split("Closest recorded requests:")[1]
    first = closest.split("  2. ")[0]
    assert "POST /v1/chat/completions, model 'gpt-4o': first difference at messages[0].content" in first
    assert 'recorded "…assistant. Answer briefly."' in first
    assert 'request  "…assistant. Answer in one word."' in first
    assert "tools" not in first  # the nearest recording (same tools) is shown first, with one difference


def test_changed_tool_parameter(cassette: str) -> None:
    tool = copy.deepcopy(TOOL)
    tool["function"]["parameters"]["properties"]["unit"]["enum"] = ["c", "f", "k"]
    message = _miss(cassette, messages=_messages(SYSTEM), tools=[tool])
    print(message)
    first = message.split("Closest recorded requests:")[1].split("  2. ")[0]
    assert "first difference at tools[0].function.parameters.properties.unit.enum[2]" in first
    assert '+ tools[0].function.parameters.properties.unit.enum[2] (only in the request): "k"' in first


def test_a_removed_field_is_named() -> None:
    text = explain.describe(
        {"a": 1, "temperature": 0.2}, {"a": 1}, route="POST /v1/chat/completions", model="m"
    )
    assert "first difference at temperature" in text
    assert "- temperature (only in the recording): 0.2" in text


def test_many_differences_are_cut_to_a_few_lines() -> None:
    text = explain.describe({f"k{i}": i for i in range(20)}, {}, route="POST /x", model=None)
    assert len(text.splitlines()) <= explain.MAX_LINES + 2
    assert "14 more difference(s)" in text


def test_nearest_has_most_fields_in_common() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "a"}], "temperature": 1}
    near = {"model": "m", "messages": [{"role": "user", "content": "b"}], "temperature": 1}
    far = {"model": "x", "messages": [{"role": "system", "content": "c"}]}
    assert explain.similarity(near, request) > explain.similarity(far, request)
