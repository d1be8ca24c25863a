"""Harmless variants of a request match its recording; meaningful ones do not. Each case says why."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from vcr_ext import canonical

CHAT = "/v1/chat/completions"

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "\n        Get the weather for a city.\n\n        :param city: the city\n        ",
        "parameters": {
            "title": "get_weatherArguments",
            "type": "object",
            "properties": {
                "city": {"title": "City", "type": "string"},
                "unit": {"title": "Unit", "type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
        },
    },
}
STRICT_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "score": {"type": "number"}},
            "required": ["title", "score"],
            "additionalProperties": False,
        },
    },
}
BASE: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "Weather in Paris?"},
    ],
    "tools": [WEATHER],
    "temperature": 0.2,
}


def variant(change: Callable[[dict[str, Any]], None], base: dict[str, Any] = BASE) -> dict[str, Any]:
    body = copy.deepcopy(base)
    change(body)
    return body


def _reorder(body: dict[str, Any]) -> None:
    items = list(body.items())
    body.clear()
    body.update(reversed(items))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(last) if last.isdigit() else last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        del target[last]

    return change


PARAMS = "tools.0.function.parameters"
STRICT_BASE = {**BASE, "response_format": STRICT_FORMAT}
EMBED: dict[str, Any] = {"model": "text-embedding-3-small", "input": ["a", "b"]}

HARMLESS = [
    pytest.param(CHAT, BASE, _reorder, id="top-level-key-order-is-not-meaning"),
    pytest.param(
        CHAT,
        BASE,
        lambda b: b["messages"].__setitem__(0, dict(reversed(list(b["messages"][0].items())))),
        id="message-key-order",
    ),
    pytest.param(CHAT, BASE, _set("temperature", 0.2000001), id="float-noise-below-5-decimals"),
    pytest.param(CHAT, BASE, _set("n", 1), id="n-1-is-the-default"),
    pytest.param(CHAT, BASE, _set("tool_choice", "auto"), id="tool-choice-auto-is-the-default-with-tools"),
    pytest.param(CHAT, BASE, _set("parallel_tool_calls", True), id="parallel-tool-calls-true-is-the-default"),
    pytest.param(CHAT, BASE, _set("stream", False), id="stream-false-is-the-default"),
    pytest.param(
        CHAT,
        BASE,
        _set("stream_options", {"include_usage": True}),
        id="stream-options-ignored-when-not-streaming",
    ),
    pytest.param(
        CHAT,
        {**BASE, "stream": True},
        _set("stream_options", {"include_usage": False}),
        id="include-usage-false-is-the-default",
    ),
    pytest.param(CHAT, BASE, _set("extra_body", {}), id="empty-extra-body-sends-nothing"),
    pytest.param(CHAT, BASE, _set("logprobs", False), id="logprobs-false-is-the-default"),
    pytest.param(
        CHAT, BASE, _set("response_format", {"type": "text"}), id="text-response-format-is-the-default"
    ),
    pytest.param(CHAT, BASE, _set(f"{PARAMS}.required", ["unit", "city"]), id="required-is-a-set"),
    pytest.param(CHAT, BASE, _delete(f"{PARAMS}.title"), id="pydantic-schema-title-is-not-a-constraint"),
    pytest.param(
        CHAT, BASE, _delete(f"{PARAMS}.properties.city.title"), id="property-title-is-not-a-constraint"
    ),
    pytest.param(
        CHAT,
        BASE,
        _set("tools.0.function.description", "Get the weather for a city.\n\n:param city: the city"),
        id="docstring-dedent",
    ),
    pytest.param(
        CHAT,
        BASE,
        _set(
            "tools.0.function.description", "\n    Get the weather for a city.\n\n    :param city: the city\n"
        ),
        id="docstring-reindented",
    ),
    pytest.param(
        CHAT,
        STRICT_BASE,
        _delete("response_format.json_schema.schema.additionalProperties"),
        id="strict-schema-is-closed-anyway",
    ),
    pytest.param(
        CHAT,
        BASE,
        _set("messages.1.content", [{"type": "text", "text": "Weather in Paris?"}]),
        id="single-text-part-is-the-text",
    ),
    pytest.param("/v1/embeddings", EMBED, _set("encoding_format", "base64"), id="sdk-adds-base64-encoding"),
    pytest.param(
        "/v1/embeddings", EMBED, _set("encoding_format", "float"), id="float-encoding-is-the-default"
    ),
    pytest.param(CHAT, {**BASE, "tools": []}, _delete("tools"), id="empty-tools-list-is-no-tools"),
    pytest.param(CHAT, BASE, _set("temperature", 0.2 + 1e-9), id="float-serializer-noise"),
]

MEANINGFUL = [
    pytest.param(CHAT, BASE, _set("messages.1.content", "Weather in Lyon?"), id="different-user-message"),
    pytest.param(CHAT, BASE, _set("messages.0.content", "You are a pirate."), id="different-system-prompt"),
    pytest.param(CHAT, BASE, _set("model", "gpt-4o-mini"), id="different-model"),
    pytest.param(CHAT, BASE, _set("temperature", 0.7), id="different-temperature"),
    pytest.param(CHAT, BASE, _delete("temperature"), id="temperature-removed-uses-another-default"),
    pytest.param(
        CHAT, BASE, _set(f"{PARAMS}.properties.unit.enum", ["c", "f", "k"]), id="different-enum-value"
    ),
    pytest.param(
        CHAT,
        BASE,
        lambda b: b["tools"].append({**WEATHER, "function": {**WEATHER["function"], "name": "get_time"}}),
        id="added-tool",
    ),
    pytest.param(CHAT, BASE, _set(f"{PARAMS}.required", ["city"]), id="fewer-required-arguments"),
    pytest.param(CHAT, BASE, _set(f"{PARAMS}.properties.city.type", "integer"), id="different-argument-type"),
    pytest.param(
        CHAT,
        BASE,
        _set("tools.0.function.description", "Get the time for a city."),
        id="different-tool-description-words",
    ),
    pytest.param(CHAT, BASE, _set("n", 2), id="two-choices"),
    pytest.param(CHAT, BASE, _set("tool_choice", "required"), id="tool-choice-required"),
    pytest.param(CHAT, BASE, _set("stream", True), id="streaming-changes-the-response-shape"),
    pytest.param(
        CHAT,
        {**BASE, "stream": True},
        _set("stream_options", {"include_usage": True}),
        id="include-usage-adds-a-chunk",
    ),
    pytest.param(CHAT, BASE, _set("parallel_tool_calls", False), id="parallel-tool-calls-false"),
    pytest.param(CHAT, BASE, _set(f"{PARAMS}.additionalProperties", False), id="closing-a-non-strict-schema"),
    pytest.param(CHAT, BASE, _set("temperature", 0.20002), id="float-difference-above-5-decimals"),
    pytest.param(CHAT, BASE, lambda b: b["messages"].reverse(), id="message-order"),
    pytest.param(
        CHAT,
        BASE,
        _set(
            "messages.1.content",
            [{"type": "text", "text": "Weather in Paris?"}, {"type": "text", "text": "Now."}],
        ),
        id="extra-content-part",
    ),
    pytest.param(
        CHAT,
        BASE,
        _set(f"{PARAMS}.properties.title", {"type": "string"}),
        id="a-property-named-title-is-a-property",
    ),
]


@pytest.mark.parametrize(("route", "base", "change"), HARMLESS)
def test_harmless_variant_matches(
    route: str, base: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> None:
    changed = variant(change, base)
    assert json.dumps(changed) != json.dumps(base)  # the variant really differs as sent
    assert canonical.body_key(True, changed, route) == canonical.body_key(True, base, route)


@pytest.mark.parametrize(("route", "base", "change"), MEANINGFUL)
def test_meaningful_variant_does_not_match(
    route: str, base: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> None:
    assert canonical.body_key(True, variant(change, base), route) != canonical.body_key(True, base, route)


def test_the_tables_are_large_enough() -> None:
    assert len(HARMLESS) >= 15 and len(MEANINGFUL) >= 15


@pytest.mark.parametrize(
    ("recorded", "live"),
    [
        pytest.param(
            "https://api.openai.com/v1/chat/completions",
            "http://127.0.0.1:8080/v1/chat/completions",
            id="other-host-and-port",
        ),
        pytest.param(
            "https://x.openai.azure.com/openai/v1/v1/chat/completions?api-version=2024-10-21",
            "https://api.openai.com/v1/chat/completions",
            id="azure-base-path-and-api-version",
        ),
        pytest.param(
            "https://api.fireworks.ai/inference/v1/v1/chat/completions",
            "http://localhost:11434/v1/chat/completions",
            id="provider-base-paths",
        ),
        pytest.param(
            "https://h/v1/files?purpose=batch&api_key=sk-1",
            "http://other/v1/files?purpose=batch",
            id="credentials-in-the-query",
        ),
    ],
)
def test_route_keys_match_across_base_urls(recorded: str, live: str) -> None:
    assert canonical.route_key(recorded) == canonical.route_key(live)


@pytest.mark.parametrize(
    ("recorded", "live"),
    [
        pytest.param("https://h/v1/chat/completions", "https://h/v1/embeddings", id="other-route"),
        pytest.param(
            "https://h/v1/files?purpose=batch",
            "https://h/v1/files?purpose=assistants",
            id="other-query-value",
        ),
        pytest.param("https://h/v1/models?limit=5", "https://h/v1/models", id="query-parameter-dropped"),
    ],
)
def test_route_keys_differ_when_the_api_call_differs(recorded: str, live: str) -> None:
    assert canonical.route_key(recorded) != canonical.route_key(live)


def test_multipart_boundaries_do_not_matter() -> None:
    upload = b'--%s\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--%s--\r\n'
    first = upload % (b"a1b2c3", b"a1b2c3")
    second = upload % (b"ffff00", b"ffff00")
    assert canonical.body_key(False, first) == canonical.body_key(False, second)
    assert canonical.body_key(False, first) != canonical.body_key(False, first.replace(b"batch", b"tuned"))


def test_every_rule_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    regenerate = "python -c 'from vcr_ext import canonical; print(canonical.rules_table())'"
    assert canonical.rules_table() in readme, (
        f"the README's rules table is stale; regenerate it with {regenerate}"
    )
