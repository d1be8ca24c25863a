"""``vcr-ext show``, run as a subprocess on real recordings: what it prints against what the SDK itself saw.

Every expected value is worked out here apart from the code under test: from the
objects the openai SDK built while recording (its own stream accumulation), or from
the recorded chunks read with the SDK's stream state.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer

TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}
RESPONSES_TOOL: Any = {"type": "function", **TOOL["function"]}
ANSI = "\x1b["


def vcr_ext_cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vcr-ext ARGS`` in a fresh interpreter, its output captured (so stdout is no terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "vcr_ext.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def record_session(cassette: Path) -> dict[str, Any]:
    """Record one of each kind of call through the real client; return what the SDK got back."""
    facts: dict[str, Any] = {}
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            with client.chat.completions.stream(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Tell me about cassettes."}],
                stream_options={"include_usage": True},
            ) as stream:
                for _ in stream:
                    pass
                final = stream.get_final_completion()
            facts["text"] = final.choices[0].message.content
            facts["text_usage"] = final.usage
            with client.chat.completions.stream(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "What time is it?"}], tools=[TOOL]
            ) as stream:
                for _ in stream:
                    pass
                final = stream.get_final_completion()
            call = (final.choices[0].message.tool_calls or [])[0]
            assert call.type == "function"
            facts["tool"] = (call.function.name, call.function.arguments, call.id)
            facts["tool_finish"] = final.choices[0].finish_reason
            completed = [
                ev
                for ev in client.responses.create(
                    model="gpt-4o-mini", input="What time is it?", tools=[RESPONSES_TOOL], stream=True
                )
                if ev.type == "response.completed"
            ]
            item = completed[-1].response.output[0]
            assert item.type == "function_call"
            facts["responses_call"] = (item.name, item.arguments, item.call_id)
            text_events = list(client.responses.create(model="gpt-4o-mini", input="Say hello.", stream=True))
            facts["responses_text"] = "".join(
                ev.delta for ev in text_events if ev.type == "response.output_text.delta"
            )
            embeddings = client.embeddings.create(
                model="text-embedding-3-small", input=["one", "two", "three"]
            )
            facts["embeddings"] = (len(embeddings.data), len(embeddings.data[0].embedding))
            with pytest.raises(openai.BadRequestError) as raised:
                client.chat.completions.create(model="error-400", messages=[{"role": "user", "content": "x"}])
            body = raised.value.body
            assert isinstance(body, dict)  # the SDK keeps the body's "error" member
            facts["error"] = body["message"]
    return facts


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    cassette = tmp_path_factory.mktemp("show") / "c"
    return cassette, record_session(cassette)


def test_show_prints_reassembled_results(session: tuple[Path, dict[str, Any]]) -> None:
    cassette, facts = session
    result = vcr_ext_cli("show", cassette)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ANSI not in out  # stdout is a pipe: no colour
    assert facts["text"] in out
    name, arguments, call_id = facts["tool"]
    assert f"tool call {name} ({call_id})" in out
    assert arguments in out
    assert f"finish: {facts['tool_finish']}" in out
    usage = facts["text_usage"]
    assert (
        f"{usage.prompt_tokens} in, {usage.completion_tokens} out, {usage.total_tokens} total tokens" in out
    )
    r_name, r_arguments, r_call_id = facts["responses_call"]
    assert f"{r_name} ({r_call_id})" in out and r_arguments in out
    assert facts["responses_text"] in out
    count, dims = facts["embeddings"]
    assert f"embeddings: {count} vectors of {dims} dims" in out
    assert facts["error"] in out and "status 400" in out
    assert out.count("POST /v1/") == 6  # one block per interaction


def test_show_json_has_stable_keys(session: tuple[Path, dict[str, Any]]) -> None:
    cassette, facts = session
    result = vcr_ext_cli("show", "--json", cassette)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert len(items) == 6
    assert len({tuple(item) for item in items}) == 1  # every object has the same keys, in the same order
    by_text = {item["text"]: item for item in items if item["text"]}
    chat = by_text[facts["text"]]
    assert (chat["method"], chat["route"], chat["model"], chat["status"]) == (
        "POST",
        "/v1/chat/completions",
        "gpt-4o-mini",
        200,
    )
    assert chat["usage"]["total_tokens"] == facts["text_usage"].total_tokens
    calls = [c for item in items for choice in item["choices"] for c in choice["tool_calls"]]
    assert [(c["name"], c["arguments"], c["id"]) for c in calls] == [facts["tool"]]
    outputs = [o for item in items for o in item["output"] if o["type"] == "function_call"]
    assert [(o["name"], o["arguments"], o["call_id"]) for o in outputs] == [facts["responses_call"]]
    [embedding] = [item for item in items if item["kind"] == "embeddings"]
    assert (embedding["embeddings"]["count"], embedding["embeddings"]["dims"]) == facts["embeddings"]
    [error] = [item for item in items if item["kind"] == "error"]
    assert error["status"] == 400 and facts["error"] in error["error"]


def test_show_usage_adds_up_per_model(session: tuple[Path, dict[str, Any]]) -> None:
    cassette, _ = session
    result = vcr_ext_cli("show", "--usage", "--json", cassette)
    assert result.returncode == 0, result.stderr
    usage = json.loads(result.stdout)
    records = [json.loads(p.read_text()) for p in cassette.glob("*.json")]
    per_model: dict[str, int] = {}
    for rec in records:
        model = rec["request"]["model"]
        per_model[model] = per_model.get(model, 0) + 1
    assert {m["model"]: m["requests"] for m in usage["models"]} == per_model
    [embedding_model] = [m for m in usage["models"] if m["model"] == "text-embedding-3-small"]
    assert embedding_model["output_tokens"] == 0 and embedding_model["input_tokens"] > 0
    table = vcr_ext_cli("show", "--usage", cassette)
    assert table.returncode == 0 and "gpt-4o-mini" in table.stdout and "total" in table.stdout


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def test_show_seed_tool_call_matches_the_sdk_accumulation(seed_file: Path) -> None:
    rec = json.loads(seed_file.read_text())
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for item in rec["response"]["body"]:
        # llama-stack dumped the chunks with explicit nulls, which the SDK's accumulator takes
        # for values ("type": null overwrites a tool call's type); the wire carries none.
        state.handle_chunk(ChatCompletionChunk.construct(**without_nulls(item["__data__"])))
    message = state.current_completion_snapshot.choices[0].message
    [call] = message.tool_calls or []
    result = vcr_ext_cli("show", seed_file)
    assert result.returncode == 0, result.stderr
    assert rec["test_id"] in result.stdout
    assert f"tool call {call.function.name} ({call.id})" in result.stdout
    assert call.function.arguments in result.stdout
    assert "stream of 17 chunks" in result.stdout


def test_show_whole_corpus(corpus_dir: Path) -> None:
    corpus = corpus_dir / "llama-stack-2025-10"
    if not corpus.is_dir():
        pytest.skip(f"llama-stack corpus not found at {corpus}")
    result = vcr_ext_cli("show", "--json", corpus)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    files = sorted(corpus.rglob("*.json"))
    assert len(items) == len(files)
    # The seed's twin in the corpus shows the same tool call as the SDK's accumulation of it.
    tool_records = [json.loads(f.read_text()) for f in files]
    skipped = [i for i in items if i["skipped"]]
    assert [i["kind"] for i in skipped] == ["tool"]
    assert sum("tool_name" in r["request"] for r in tool_records) == 1
    usage = vcr_ext_cli("show", "--usage", "--json", corpus)
    assert usage.returncode == 0, usage.stderr
    total = json.loads(usage.stdout)["total"]
    assert total["requests"] == len(files) - 1  # every HTTP record; the tool invocation is no request
    streams_with_text = [i for i in items if i["streaming"] and i["kind"] == "chat" and i["text"]]
    assert streams_with_text  # real chat streams reassemble to text


def test_show_colour_only_on_a_terminal(session: tuple[Path, dict[str, Any]]) -> None:
    cassette, _ = session

    def on_a_tty(env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "vcr_ext.cli.main", "show", str(cassette)],
                stdout=follower,
                stderr=subprocess.PIPE,
                env={**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, **env},
                check=False,
                timeout=300,
            )
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    data = os.read(leader, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            assert proc.returncode == 0
            return b"".join(chunks).decode()
        finally:
            if follower != -1:
                os.close(follower)
            os.close(leader)

    assert ANSI in on_a_tty({})
    assert ANSI not in on_a_tty({"NO_COLOR": "1"})


def test_show_exit_codes(tmp_path: Path) -> None:
    missing = vcr_ext_cli("show", tmp_path / "nothing-here")
    assert missing.returncode == 2 and "nothing-here" in missing.stderr
    (tmp_path / "empty").mkdir()
    assert vcr_ext_cli("show", tmp_path / "empty").returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = vcr_ext_cli("show", bad)
    assert result.returncode == 1
    assert f"{bad}:-: (file): is not valid JSON" in result.stderr
    assert vcr_ext_cli("show").returncode == 2  # argparse: PATH is required
