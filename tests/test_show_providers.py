"""``vcr-ext show`` on Anthropic, Cohere, Google and Bedrock native APIs: text, tool calls, finish, usage.

Each record comes from real traffic: a pydantic-ai cassette of the shared corpus
(``$VCR_EXT_CORPUS/providers/pydantic-ai/<provider>/``) converted with ``vcr-ext convert``
in a subprocess, as a user would, then printed by ``vcr-ext show`` (text and ``--json``).
Every expected value is read here from the source cassette, apart from the code under
test: from its ``parsed_body``, from its stream's ``data:`` lines, for Anthropic from the
anthropic SDK's own stream accumulator, for Bedrock from the frames botocore's parser
reads. Cohere streams have no corpus sample: they are built from the wire shapes
``tests/providers/test_cohere.py`` serves.

Recordings are read in every form they are stored in: typed per chunk, plain JSON (an
SDK not installed), a stream kept as raw text, a Bedrock event stream kept as bytes (the
form on main before event streams are stored per frame), and the per-frame forms the
h/google and h/bedrock branches store (built here from the same source bytes).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PYDANTIC_AI = Path("providers") / "pydantic-ai"
RAW_TEXT = "vcr_ext.raw.Text"
RAW_BASE64 = "vcr_ext.raw.Base64"
BEDROCK_PREFIX = "botocore.bedrock-runtime."
FRAME = "vcr_ext.eventstream.Frame"


# ------------------------------------------------------------------ helpers


def _cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vcr-ext ARGS`` in a fresh interpreter (it inherits PYTHONPATH), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "vcr_ext.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _source(corpus_dir: Path, provider: str, name: str) -> Path:
    path = corpus_dir / PYDANTIC_AI / provider / name
    if not path.is_file():
        pytest.skip(f"corpus cassette {path} not found (the shared corpus is older or partial)")
    return path


def _interactions(path: Path) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    return interactions


_CONVERTED: dict[Path, list[dict[str, Any]]] = {}


def _convert(src: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """The records ``vcr-ext convert`` writes for a vcrpy cassette (one ``.json`` file), a fresh copy.

    Each source is converted once per test process: a subprocess costs seconds on a shared machine.
    """
    if src not in _CONVERTED:
        dst = tmp_path / (src.stem + ".json")
        proc = _cli("convert", src, dst)
        assert proc.returncode == 0, proc.stderr
        _CONVERTED[src] = json.loads(dst.read_text(encoding="utf-8"))
    return copy.deepcopy(_CONVERTED[src])


def _write(records: list[dict[str, Any]], tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return path


def _show(path: Path, env: dict[str, str] | None = None) -> str:
    proc = _cli("show", path, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _show_json(path: Path) -> list[dict[str, Any]]:
    proc = _cli("show", "--json", path)
    assert proc.returncode == 0, proc.stderr
    shown: list[dict[str, Any]] = json.loads(proc.stdout)
    return shown


def _data_lines(text: str) -> list[dict[str, Any]]:
    """The JSON of every ``data:`` line of an SSE body (none of these streams sends ``[DONE]``)."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def _plain(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with every chunk's envelope taken off: how they read with the SDK not installed."""
    for rec in records:
        body = rec["response"]["body"]
        if isinstance(body, list):
            rec["response"]["body"] = [_untyped(item) for item in body]
    return records


def _untyped(item: Any) -> Any:
    # Our own generic envelopes (an SSE event no class holds) stay: they are no SDK's type.
    typed = isinstance(item, dict) and not str(item.get("__type__", "vcr_ext.")).startswith("vcr_ext.")
    return item["__data__"] if typed else item


def _raw_text(records: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The records with the stream kept whole as the text that was sent."""
    records[0]["response"]["body"] = {"__type__": RAW_TEXT, "__data__": text}
    return records


def _as_bytes(records: list[dict[str, Any]], raw: bytes) -> list[dict[str, Any]]:
    """The first record with its event stream kept whole as bytes: how recordings made before
    event streams were stored per frame (h/bedrock) hold them, and must still be shown."""
    records[0]["response"]["body"] = {
        "__type__": RAW_BASE64,
        "__data__": base64.b64encode(raw).decode("ascii"),
    }
    records[0]["response"]["is_streaming"] = False
    return records


def _block_lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines()]


# ------------------------------------------------------------------ Anthropic


def test_anthropic_message_shows_the_tool_use_and_its_input(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(
        corpus_dir, "anthropic", "test_anthropic_opus_46_adaptive_thinking_accepts_tool_output[unified].yaml"
    )
    message = _interactions(src)[0]["response"]["parsed_body"]
    uses = [b for b in message["content"] if b["type"] == "tool_use"]
    assert uses, "the chosen cassette holds a tool_use block"
    path = _write(_convert(src, tmp_path), tmp_path, "anthropic")

    [shown] = _show_json(path)
    assert (shown["provider"], shown["kind"], shown["route"]) == ("anthropic", "chat", "/v1/messages")
    choice = shown["choices"][0]
    assert [(c["id"], c["type"], c["name"]) for c in choice["tool_calls"]] == [
        (b["id"], "tool_use", b["name"]) for b in uses
    ]
    assert [json.loads(c["arguments"]) for c in choice["tool_calls"]] == [b["input"] for b in uses]
    assert choice["finish_reason"] == message["stop_reason"]
    usage = message["usage"]
    assert (shown["usage"]["input_tokens"], shown["usage"]["output_tokens"]) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    lines = _block_lines(_show(path))
    assert f"tool_use {uses[0]['name']} ({uses[0]['id']})" in lines
    assert f"stop_reason: {message['stop_reason']}" in lines
    assert f"usage: {usage['input_tokens']} in, {usage['output_tokens']} out, " in " ".join(lines)


def _anthropic_snapshot(events: list[dict[str, Any]]) -> Any:
    """The Message the anthropic SDK's own (beta) stream accumulator builds from these events."""
    import httpx2
    from anthropic._models import construct_type
    from anthropic.lib.streaming._beta_messages import accumulate_event
    from anthropic.types.beta import BetaRawMessageStreamEvent

    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for data in events:
        if data["type"] in ("ping", "error"):
            continue  # the SDK's stream skips pings, and raises on an error event
        event = construct_type(type_=BetaRawMessageStreamEvent, value=data)
        snapshot = accumulate_event(
            event=event, current_snapshot=snapshot, json_bufs=json_bufs, request_headers=httpx2.Headers()
        )
    return snapshot


def _assert_anthropic_stream(shown: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """``shown`` says what the anthropic SDK's accumulator says of ``events``."""
    snapshot = _anthropic_snapshot(events)
    blocks = snapshot.content
    texts = [b.text for b in blocks if b.type == "text"]
    thinking = [b.thinking for b in blocks if b.type == "thinking"]
    calls = [b for b in blocks if b.type in ("tool_use", "server_tool_use", "mcp_tool_use")]
    assert texts and thinking and calls, "the chosen stream holds text, thinking and tool calls"
    assert shown["provider"] == "anthropic" and shown["streaming"]
    choice = shown["choices"][0]
    assert choice["text"] == "".join(texts)
    assert choice["reasoning"] == "".join(thinking)
    assert [(c["id"], c["type"], c["name"]) for c in choice["tool_calls"]] == [
        (b.id, b.type, b.name) for b in calls
    ]
    assert [json.loads(c["arguments"]) for c in choice["tool_calls"]] == [b.input for b in calls]
    assert choice["finish_reason"] == snapshot.stop_reason
    assert shown["usage"]["input_tokens"] == snapshot.usage.input_tokens
    assert shown["usage"]["output_tokens"] == snapshot.usage.output_tokens
    shown_kinds = ("text", "thinking", "redacted_thinking", "tool_use", "server_tool_use", "mcp_tool_use")
    others = [b.type for b in blocks if b.type not in shown_kinds]
    assert others, "the chosen stream holds a server tool's result"
    assert shown["note"].endswith("other content blocks: " + ", ".join(others))


@pytest.mark.parametrize("form", ["typed", "plain JSON", "raw text"])
def test_anthropic_stream_joins_text_thinking_and_tool_input(
    corpus_dir: Path, tmp_path: Path, form: str
) -> None:
    pytest.importorskip("anthropic", reason="the anthropic SDK's accumulator gives the expected message")
    src = _source(corpus_dir, "anthropic", "test_anthropic_code_execution_tool_stream.yaml")
    text = _interactions(src)[0]["response"]["body"]["string"]
    records = _convert(src, tmp_path)
    if form == "typed":
        assert any(item["__type__"].startswith("anthropic.types.") for item in records[0]["response"]["body"])
    elif form == "plain JSON":
        records = _plain(records)
    else:
        records = _raw_text(records, text)
    [shown] = _show_json(_write(records, tmp_path, "stream"))
    _assert_anthropic_stream(shown, _data_lines(text))


def test_anthropic_stream_error_event_is_shown(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "anthropic", "test_anthropic_code_execution_tool_stream.yaml")
    text = _interactions(src)[0]["response"]["body"]["string"]
    # An overloaded API ends a stream with this event (the shape of Anthropic's documented errors).
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    torn = text.split("event: message_delta")[0] + f"event: error\ndata: {json.dumps(error)}\n\n"
    out = _show(_write(_raw_text(_convert(src, tmp_path), torn), tmp_path, "torn"))
    assert "error: overloaded_error: Overloaded" in _block_lines(out)


# ------------------------------------------------------------------ Cohere


def test_cohere_v2_chat_shows_text_finish_and_both_usages(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "cohere", "test_request_simple_success_with_vcr.yaml")
    body = _interactions(src)[0]["response"]["parsed_body"]
    path = _write(_convert(src, tmp_path), tmp_path, "cohere")
    [shown] = _show_json(path)
    assert (shown["provider"], shown["route"]) == ("cohere", "/v2/chat")
    assert shown["choices"][0]["text"] == "".join(p["text"] for p in body["message"]["content"])
    assert shown["choices"][0]["finish_reason"] == body["finish_reason"]
    tokens, billed = body["usage"]["tokens"], body["usage"]["billed_units"]
    usage = shown["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (
        tokens["input_tokens"],
        tokens["output_tokens"],
    )
    assert (usage["billed_input_tokens"], usage["billed_output_tokens"]) == (
        billed["input_tokens"],
        billed["output_tokens"],
    )
    lines = _block_lines(_show(path))
    assert f"finish_reason: {body['finish_reason']}" in lines
    assert any(
        f"(billed {billed['input_tokens']} in, {billed['output_tokens']} out)" in line for line in lines
    )


def test_cohere_v2_thinking_is_shown_apart_from_the_text(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "cohere", "test_cohere_model_thinking_part.yaml")
    at = next(i for i, it in enumerate(_interactions(src)) if it["request"]["uri"].endswith("/v2/chat"))
    content = _interactions(src)[at]["response"]["parsed_body"]["message"]["content"]
    thinking = "".join(p["thinking"] for p in content if p["type"] == "thinking")
    assert thinking, "the chosen response holds a thinking part"
    shown = _show_json(_write(_convert(src, tmp_path), tmp_path, "cohere"))[at]
    assert shown["choices"][0]["reasoning"] == thinking
    assert shown["choices"][0]["text"] == "".join(p["text"] for p in content if p["type"] == "text")


USAGE = {
    "billed_units": {"input_tokens": 5, "output_tokens": 3},
    "tokens": {"input_tokens": 71, "output_tokens": 3},
}
V2_MESSAGE_START = {
    "id": "a8fc192e-4bb8-4e15-ae1f-a174e8b02ae8",
    "type": "message-start",
    "delta": {
        "message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    },
}
TEXT_PIECES = ("Hello", ", ", "Wörld!")
PLAN = "I will look up the weather."
ARGUMENT_PIECES = ('{\n    "', 'city": "', 'Paris"\n}')
V2_TEXT = [
    V2_MESSAGE_START,
    {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
    *(
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}}
        for t in TEXT_PIECES
    ),
    {"type": "content-end", "index": 0},
    {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": USAGE}},
]
V2_TOOL = [
    V2_MESSAGE_START,
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": PLAN}}},
    {
        "type": "tool-call-start",
        "index": 0,
        "delta": {
            "message": {
                "tool_calls": {
                    "id": "get_weather_1byjy32y4hvq",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            }
        },
    },
    *(
        {
            "type": "tool-call-delta",
            "index": 0,
            "delta": {"message": {"tool_calls": {"function": {"arguments": a}}}},
        }
        for a in ARGUMENT_PIECES
    ),
    {"type": "tool-call-end", "index": 0},
    {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": USAGE}},
]
V1_RESPONSE = {
    "response_id": "ac6d5f86-f5a7-4db9-bacf-f01b98697a5b",
    "text": "Hello, Wörld!",
    "generation_id": "586ac33f-9c64-452c-8f8d-e5890e73b6fb",
    "finish_reason": "COMPLETE",
    "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": 17, "output_tokens": 4}},
}
V1_START = {"is_finished": False, "event_type": "stream-start", "generation_id": V1_RESPONSE["generation_id"]}
V1_TEXT = [
    V1_START,
    *({"is_finished": False, "event_type": "text-generation", "text": t} for t in TEXT_PIECES),
    {"is_finished": True, "event_type": "stream-end", "response": V1_RESPONSE, "finish_reason": "COMPLETE"},
]
V1_TOOL_CALLS = [{"name": "weather", "parameters": {"city": "Sydney"}}]
V1_TOOL = [
    V1_START,
    {
        "is_finished": False,
        "event_type": "tool-calls-chunk",
        "tool_call_delta": {"name": "weather", "index": 0},
    },
    {"is_finished": False, "event_type": "tool-calls-generation", "tool_calls": V1_TOOL_CALLS},
    {
        "is_finished": True,
        "event_type": "stream-end",
        "response": {**V1_RESPONSE, "text": "", "tool_calls": V1_TOOL_CALLS},
        "finish_reason": "COMPLETE",
    },
]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _cohere_cassette(tmp_path: Path, events: list[dict[str, Any]], version: str) -> Path:
    """A vcrpy cassette of one Cohere chat stream, framed as api.cohere.com frames it."""
    if version == "v2":
        body = "".join(f"event: {e['type']}\ndata: {_compact(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        content_type = "text/event-stream"
    else:
        body = "".join(_compact(e) + "\n" for e in events)
        content_type = "application/stream+json"
    cassette = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": f"https://api.cohere.com/{version}/chat",
                    "body": _compact({"model": "command-a-03-2025", "stream": True, "message": "hi"}),
                    "headers": {"content-type": ["application/json"]},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": [content_type]},
                    "body": {"string": body},
                },
            }
        ],
    }
    path = tmp_path / f"cohere-{version}.yaml"
    path.write_text(yaml.safe_dump(cassette, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("form", ["typed", "plain JSON"])
@pytest.mark.parametrize("name", ["v2-text", "v2-tool", "v1-text", "v1-tool"])
def test_cohere_streams_are_joined(tmp_path: Path, name: str, form: str) -> None:
    version = name[:2]
    events = {"v2-text": V2_TEXT, "v2-tool": V2_TOOL, "v1-text": V1_TEXT, "v1-tool": V1_TOOL}[name]
    records = _convert(_cohere_cassette(tmp_path, events, version), tmp_path)
    assert records[0]["response"]["is_streaming"]
    if form == "plain JSON":
        records = _plain(records)
    path = _write(records, tmp_path, name)
    [shown] = _show_json(path)
    choice = shown["choices"][0]
    assert (shown["provider"], shown["route"]) == ("cohere", f"/{version}/chat")
    if name == "v2-text":
        assert choice["text"] == "".join(TEXT_PIECES)
        assert choice["finish_reason"] == "COMPLETE"
    elif name == "v2-tool":
        [call] = choice["tool_calls"]
        assert (call["id"], call["name"], call["arguments"]) == (
            "get_weather_1byjy32y4hvq",
            "get_weather",
            "".join(ARGUMENT_PIECES),
        )
        assert (choice["plan"], choice["finish_reason"]) == (PLAN, "TOOL_CALL")
        lines = _block_lines(_show(path))
        assert "tool call get_weather (get_weather_1byjy32y4hvq)" in lines
        assert lines[lines.index("tool_plan:") + 1] == PLAN
    elif name == "v1-text":
        assert (choice["text"], choice["finish_reason"]) == ("".join(TEXT_PIECES), "COMPLETE")
    else:
        assert [(c["name"], json.loads(c["arguments"])) for c in choice["tool_calls"]] == [
            (c["name"], c["parameters"]) for c in V1_TOOL_CALLS
        ]
    usage = shown["usage"]
    if version == "v2":
        assert (usage["input_tokens"], usage["billed_input_tokens"]) == (71, 5)
    else:  # v1 reports only the billed units
        assert (usage["input_tokens"], usage["output_tokens"], usage["billed_output_tokens"]) == (17, 4, 4)


# ------------------------------------------------------------------ Google Gemini and Vertex AI


def test_gemini_function_call_and_thought_signature_response(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "google", "test_google_nested_models_without_native_output.yaml")
    body = _interactions(src)[0]["response"]["parsed_body"]
    [candidate] = body["candidates"]
    calls = [p["functionCall"] for p in candidate["content"]["parts"] if "functionCall" in p]
    assert calls, "the chosen response holds a functionCall"
    path = _write(_convert(src, tmp_path), tmp_path, "gemini")
    [shown] = _show_json(path)
    assert shown["provider"] == "google"
    choice = shown["choices"][0]
    assert [(c["name"], json.loads(c["arguments"])) for c in choice["tool_calls"]] == [
        (c["name"], c["args"]) for c in calls
    ]
    assert choice["finish_reason"] == candidate["finishReason"]
    meta = body["usageMetadata"]
    assert (
        shown["usage"]["input_tokens"],
        shown["usage"]["output_tokens"],
        shown["usage"]["total_tokens"],
    ) == (
        meta["promptTokenCount"],
        meta.get("candidatesTokenCount"),
        meta["totalTokenCount"],
    )
    lines = _block_lines(_show(path))
    assert any(line.startswith(f"functionCall {calls[0]['name']}") for line in lines)
    assert f"finishReason: {candidate['finishReason']}" in lines


def test_vertex_blocked_prompt_is_shown_as_the_error(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "google", "test_google_model_armor_prompt_template_text_gets_blocked.yaml")
    at = next(
        i for i, it in enumerate(_interactions(src)) if it["request"]["uri"].endswith(":generateContent")
    )
    body = _interactions(src)[at]["response"]["parsed_body"]
    feedback = body["promptFeedback"]
    shown = _show_json(_write(_convert(src, tmp_path), tmp_path, "blocked"))[at]
    assert shown["provider"] == "google" and shown["status"] == 200
    assert shown["error"] == f"prompt blocked: {feedback['blockReason']}: {feedback['blockReasonMessage']}"
    assert "promptTokenCount" not in body["usageMetadata"] and shown["usage"] is None  # no counts were sent


def test_gemini_response_stopped_by_a_filter_shows_why(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "google", "test_google_model_armor_response_template_real_block.yaml")
    at = next(
        i for i, it in enumerate(_interactions(src)) if it["request"]["uri"].endswith(":generateContent")
    )
    [candidate] = _interactions(src)[at]["response"]["parsed_body"]["candidates"]
    path = _write(_convert(src, tmp_path), tmp_path, "filtered")
    shown = _show_json(path)[at]
    assert shown["choices"][0]["finish_reason"] == candidate["finishReason"]
    assert shown["note"] == f"finishMessage: {candidate['finishMessage']}"


@pytest.mark.parametrize("form", ["plain JSON", "typed (h/google)", "raw text"])
def test_gemini_stream_joins_thought_and_text(corpus_dir: Path, tmp_path: Path, form: str) -> None:
    src = _source(corpus_dir, "google", "test_google_model_thinking_part_iter.yaml")
    interaction = _interactions(src)[0]
    text = interaction["response"]["body"]["string"]
    chunks = _data_lines(text)
    parts = [
        p
        for c in chunks
        for cand in c.get("candidates", [])
        for p in cand.get("content", {}).get("parts", [])
    ]
    thought = "".join(p["text"] for p in parts if p.get("thought") is True and "text" in p)
    answer = "".join(p["text"] for p in parts if not p.get("thought") and "text" in p)
    assert thought and answer, "the chosen stream holds thought summaries and an answer"
    finish = [
        cand["finishReason"] for c in chunks for cand in c.get("candidates", []) if "finishReason" in cand
    ]
    records = _convert(src, tmp_path)
    if form == "typed (h/google)":
        # h/google types each chunk as the class google-genai builds from it, the wire JSON
        # kept, and keeps the API version in the route.
        records[0]["response"]["body"] = [
            {"__type__": "google.genai.types.GenerateContentResponse", "__data__": item.get("__data__", item)}
            for item in records[0]["response"]["body"]
        ]
        path_part = interaction["request"]["uri"].split(".com", 1)[1].split("?")[0]
        records[0]["request"]["endpoint"] = path_part
    elif form == "raw text":
        records = _raw_text(records, text)
    [shown] = _show_json(_write(records, tmp_path, "gemini-stream"))
    assert shown["provider"] == "google"
    assert shown["model"] == interaction["request"]["uri"].split("/models/")[1].split(":")[0]
    choice = shown["choices"][0]
    assert (choice["reasoning"], choice["text"], choice["finish_reason"]) == (thought, answer, finish[-1])
    last = chunks[-1]["usageMetadata"]
    assert (shown["usage"]["input_tokens"], shown["usage"]["total_tokens"]) == (
        last["promptTokenCount"],
        last["totalTokenCount"],
    )


# ------------------------------------------------------------------ Bedrock


def test_bedrock_converse_shows_reasoning_text_and_tool_use(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "bedrock", "test_bedrock_anthropic_tool_with_thinking.yaml")
    body = _interactions(src)[0]["response"]["parsed_body"]
    content = body["output"]["message"]["content"]
    uses = [b["toolUse"] for b in content if "toolUse" in b]
    assert uses, "the chosen response holds a toolUse"
    path = _write(_convert(src, tmp_path), tmp_path, "bedrock")
    shown = _show_json(path)[0]
    assert shown["provider"] == "bedrock"
    model_id = _interactions(src)[0]["request"]["uri"].split("/model/")[1].split("/")[0]
    assert shown["model"] == model_id.replace("%3A", ":")  # the model is named in the path only
    choice = shown["choices"][0]
    assert choice["text"] == "".join(b["text"] for b in content if "text" in b)
    assert choice["reasoning"] == "".join(
        b["reasoningContent"]["reasoningText"]["text"] for b in content if "reasoningContent" in b
    )
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in choice["tool_calls"]] == [
        (u["toolUseId"], u["name"], u["input"]) for u in uses
    ]
    assert choice["finish_reason"] == body["stopReason"]
    assert (
        shown["usage"]["input_tokens"],
        shown["usage"]["output_tokens"],
        shown["usage"]["total_tokens"],
    ) == (
        body["usage"]["inputTokens"],
        body["usage"]["outputTokens"],
        body["usage"]["totalTokens"],
    )
    lines = _block_lines(_show(path))
    assert f"toolUse {uses[0]['name']} ({uses[0]['toolUseId']})" in lines
    # --usage adds the tokens of both calls of the cassette under the model the path names.
    proc = _cli("show", "--usage", "--json", path)
    assert proc.returncode == 0, proc.stderr
    bodies = [it["response"]["parsed_body"] for it in _interactions(src)]
    [row] = json.loads(proc.stdout)["models"]
    assert (row["model"], row["requests"], row["input_tokens"], row["output_tokens"]) == (
        shown["model"],
        len(bodies),
        sum(b["usage"]["inputTokens"] for b in bodies),
        sum(b["usage"]["outputTokens"] for b in bodies),
    )
    assert f"stopReason: {body['stopReason']}" in lines


def test_bedrock_invoke_of_an_anthropic_model_reads_as_its_message(corpus_dir: Path, tmp_path: Path) -> None:
    src = _source(corpus_dir, "anthropic", "test_anthropic_cache_bedrock_real_api.yaml")
    interactions = _interactions(src)
    at = next(i for i, it in enumerate(interactions) if it["request"]["uri"].endswith("/invoke"))
    message = interactions[at]["response"]["parsed_body"]
    shown = _show_json(_write(_convert(src, tmp_path), tmp_path, "invoke"))[at]
    assert shown["route"].startswith("/model/") and shown["provider"] == "anthropic"
    choice = shown["choices"][0]
    assert choice["text"] == "".join(b["text"] for b in message["content"] if b["type"] == "text")
    assert choice["finish_reason"] == message["stop_reason"]
    assert (shown["usage"]["input_tokens"], shown["usage"]["output_tokens"]) == (
        message["usage"]["input_tokens"],
        message["usage"]["output_tokens"],
    )


def _frames(raw: bytes) -> list[tuple[dict[str, Any], Any]]:
    """(headers, payload JSON) of every frame of an event-stream body, as botocore's parser reads it."""
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(m.headers), json.loads(m.payload)) for m in buffer]


def _bedrock_stream(corpus_dir: Path) -> tuple[Path, bytes]:
    pytest.importorskip("botocore", reason="botocore's event-stream parser reads the expected frames")
    src = _source(corpus_dir, "bedrock", "test_bedrock_model_iter_stream.yaml")
    return src, _interactions(src)[0]["response"]["body"]["string"]


def _shape_names() -> dict[str, str]:
    """``:event-type`` -> shape name in botocore's ConverseStreamOutput union (h/bedrock types frames so)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return {name: member.name for name, member in model.shape_for("ConverseStreamOutput").members.items()}


@pytest.mark.parametrize("form", ["as converted", "bytes", "typed (h/bedrock)", "frames (h/bedrock)"])
def test_bedrock_converse_stream_joins_text_and_tool_input(
    corpus_dir: Path, tmp_path: Path, form: str
) -> None:
    src, raw = _bedrock_stream(corpus_dir)
    frames = _frames(raw)
    payloads = {h[":event-type"]: [] for h, _ in frames}
    for headers, payload in frames:
        payloads[headers[":event-type"]].append(payload)
    deltas = [p["delta"] for p in payloads["contentBlockDelta"]]
    starts = [p["start"]["toolUse"] for p in payloads.get("contentBlockStart", []) if "toolUse" in p["start"]]
    assert starts, "the chosen stream holds a toolUse"
    records = _convert(src, tmp_path)[:1]
    if form == "typed (h/bedrock)":
        shapes = _shape_names()
        records[0]["response"]["body"] = [
            {"__type__": BEDROCK_PREFIX + shapes[h[":event-type"]], "__data__": p} for h, p in frames
        ]
        records[0]["response"]["is_streaming"] = True
    elif form == "frames (h/bedrock)":
        records[0]["response"]["body"] = [
            {
                "__type__": FRAME,
                "__data__": {"headers": [[k, "string", v] for k, v in h.items()], "payload": p},
            }
            for h, p in frames
        ]
        records[0]["response"]["is_streaming"] = True
    elif form == "bytes":
        records = _as_bytes(records, raw)
    path = _write(records, tmp_path, "bedrock-stream")
    [shown] = _show_json(path)
    assert (shown["provider"], shown["streaming"], shown["chunks"]) == ("bedrock", True, len(frames))
    choice = shown["choices"][0]
    assert choice["text"] == "".join(d["text"] for d in deltas if "text" in d)
    assert [(c["id"], c["name"], c["arguments"]) for c in choice["tool_calls"]] == [
        (s["toolUseId"], s["name"], "".join(d["toolUse"]["input"] for d in deltas if "toolUse" in d))
        for s in starts
    ]
    assert choice["finish_reason"] == payloads["messageStop"][-1]["stopReason"]
    usage = payloads["metadata"][-1]["usage"]
    assert (shown["usage"]["input_tokens"], shown["usage"]["output_tokens"]) == (
        usage["inputTokens"],
        usage["outputTokens"],
    )
    assert f"stopReason: {choice['finish_reason']}" in _block_lines(_show(path))


def test_bedrock_stream_kept_as_bytes_without_botocore_shows_its_size(
    corpus_dir: Path, tmp_path: Path
) -> None:
    src, raw = _bedrock_stream(corpus_dir)
    path = _write(_as_bytes(_convert(src, tmp_path)[:1], raw), tmp_path, "bedrock-bytes")
    # A botocore that cannot be imported, first on the path: show must still say what it holds.
    blocker = tmp_path / "no-botocore" / "botocore"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('botocore blocked by the test')\n", encoding="utf-8"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")]),
    }
    lines = _block_lines(_show(path, env=env))
    route = _interactions(src)[0]["request"]["uri"].split(".com", 1)[1]
    assert lines[1].startswith(f"POST {route}") and lines[1].endswith("status 200")
    assert f"note: event stream of {len(raw)} bytes (its frames cannot be read: botocore is needed)" in lines
    assert "text:" not in lines  # nothing made up from bytes it could not read


@pytest.mark.parametrize("form", ["typed (h/bedrock)", "frames (h/bedrock)"])
def test_bedrock_exception_frame_is_shown_as_the_error(corpus_dir: Path, tmp_path: Path, form: str) -> None:
    src, raw = _bedrock_stream(corpus_dir)
    frames = _frames(raw)[:3]  # the stream broke after its first frames
    message = "The model stopped streaming."
    shapes = _shape_names()
    records = _convert(src, tmp_path)[:1]
    if form == "typed (h/bedrock)":
        body = [{"__type__": BEDROCK_PREFIX + shapes[h[":event-type"]], "__data__": p} for h, p in frames]
        body.append(
            {"__type__": BEDROCK_PREFIX + "ModelStreamErrorException", "__data__": {"message": message}}
        )
    else:
        body = [
            {
                "__type__": FRAME,
                "__data__": {"headers": [[k, "string", v] for k, v in h.items()], "payload": p},
            }
            for h, p in frames
        ]
        headers = [
            [":exception-type", "string", "modelStreamErrorException"],
            [":content-type", "string", "application/json"],
            [":message-type", "string", "exception"],
        ]
        body.append({"__type__": FRAME, "__data__": {"headers": headers, "payload": {"message": message}}})
    records[0]["response"]["body"], records[0]["response"]["is_streaming"] = body, True
    [shown] = _show_json(_write(records, tmp_path, "bedrock-error"))
    name = "ModelStreamErrorException" if form.startswith("typed") else "modelStreamErrorException"
    assert shown["error"] == f"{name}: {message}"
    texts = [
        p["delta"]["text"]
        for h, p in frames
        if h[":event-type"] == "contentBlockDelta" and "text" in p["delta"]
    ]
    assert shown["choices"][0]["text"] == "".join(texts)


def test_bedrock_invoke_stream_of_an_anthropic_model_reads_as_its_messages_stream(
    corpus_dir: Path, tmp_path: Path
) -> None:
    """invoke-with-response-stream chunks (``PayloadPart``), ``bytes`` stored decoded as h/bedrock does."""
    pytest.importorskip("anthropic", reason="the anthropic SDK's accumulator gives the expected message")
    src = _source(corpus_dir, "anthropic", "test_anthropic_code_execution_tool_stream.yaml")
    events = _data_lines(_interactions(src)[0]["response"]["body"]["string"])
    records = _convert(src, tmp_path)
    route = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
    records[0]["request"]["endpoint"] = route
    records[0]["request"]["url"] = "https://bedrock-runtime.us-east-1.amazonaws.com" + route
    records[0]["response"]["body"] = [
        {"__type__": BEDROCK_PREFIX + "PayloadPart", "__data__": {"bytes": e, "p": "abc"}} for e in events
    ]
    [shown] = _show_json(_write(records, tmp_path, "invoke"))
    assert shown["route"] == route
    _assert_anthropic_stream(shown, events)  # named as the anthropic SDK's AnthropicBedrock client names them
