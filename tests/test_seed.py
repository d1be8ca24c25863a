"""The reference recording loads as a cassette and replays through the openai SDK."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import needs_openai_3

import vcr_ext

DEAD = "http://127.0.0.1:9/v1"  # nothing listens: a replay that tried the network would fail


@pytest.fixture
def seed(tmp_path: Path, seed_file: Path) -> tuple[Path, dict[str, Any]]:
    cassette = tmp_path / "seed"
    cassette.mkdir()
    shutil.copy(seed_file, cassette)
    return cassette, json.loads(seed_file.read_text())


def _recorded_arguments(rec: dict[str, Any]) -> tuple[str, str]:
    name, arguments = "", ""
    for chunk in rec["response"]["body"]:
        for call in chunk["__data__"]["choices"][0]["delta"]["tool_calls"] or []:
            name += call["function"]["name"] or ""
            arguments += call["function"]["arguments"] or ""
    return name, arguments


def test_seed_replays_through_create_stream(seed: tuple[Path, dict[str, Any]]) -> None:
    cassette, rec = seed
    client = openai.OpenAI(base_url=DEAD, api_key="sk-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        chunks = list(client.chat.completions.create(**rec["request"]["body"]))
    recorded = [c["__data__"] for c in rec["response"]["body"]]
    assert len(chunks) == len(recorded)
    assert [c.choices[0].finish_reason for c in chunks] == [
        r["choices"][0]["finish_reason"] for r in recorded
    ]
    name = "".join(
        d.function.name or "" for c in chunks for d in c.choices[0].delta.tool_calls or [] if d.function
    )
    args = "".join(
        d.function.arguments or "" for c in chunks for d in c.choices[0].delta.tool_calls or [] if d.function
    )
    assert (name, args) == _recorded_arguments(rec)


def test_seed_replays_through_the_stream_helper(seed: tuple[Path, dict[str, Any]]) -> None:
    cassette, rec = seed
    body = {k: v for k, v in rec["request"]["body"].items() if k != "stream"}
    client = openai.OpenAI(base_url=DEAD, api_key="sk-test", max_retries=0)
    replay = vcr_ext.VCR(record_mode="none").use_cassette(str(cassette))
    with replay, client.chat.completions.stream(**body) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == _recorded_arguments(rec)
    assert final.choices[0].finish_reason == "tool_calls"


@needs_openai_3
def test_seed_replays_through_the_async_stream_helper(seed: tuple[Path, dict[str, Any]]) -> None:
    cassette, rec = seed
    body = {k: v for k, v in rec["request"]["body"].items() if k != "stream"}

    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url=DEAD, api_key="sk-test", max_retries=0)
        async with client.chat.completions.stream(**body) as stream:
            return await stream.get_final_completion()

    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        final = asyncio.run(run())
    (call,) = final.choices[0].message.tool_calls or []
    assert (call.function.name, call.function.arguments) == _recorded_arguments(rec)
