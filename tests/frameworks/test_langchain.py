"""LangChain's OpenAI integration (``langchain_openai``), recorded and replayed through vcr_ext.

Each test runs one LangChain call against a loopback server, inside a new cassette, then
twice more from the cassette alone (the server stopped; once from the same base URL, once
from another host, port and base path), and compares what LangChain returned: message
content, tool calls, usage, response metadata, structured output models, embedding vectors.
It also checks that the cassette is typed per chunk with openai SDK classes and that the
API key the client sent is in no written file.

Real captures from api.openai.com (``$VCR_EXT_CORPUS/wire/``, see ``wire_server``) are
served for the streamed calls: ``stream``/``astream`` (the 2025 chat text stream),
a Responses stream that fails mid-way (the 2025 ``event: error`` capture),
``bind_tools`` + ``stream`` (openai-python's ``get_weather`` tool-call snapshot),
``with_structured_output(...).stream`` (its ``Location`` structured-output snapshot) and
the Responses API stream (the 2025 Responses capture). No capture exists of a non-streamed
chat completion, a non-streamed Responses object, an embeddings response or a non-streamed
tool call, so ``invoke``/``ainvoke``/``batch``, ``bind_tools(...).invoke`` and its follow-up
with the tool's result (chat and Responses), ``with_structured_output(...).invoke``
(``json_schema`` and ``function_calling``), the Responses ``invoke``/``ainvoke`` and the
embeddings are served the bytes ``FakeOpenAIServer`` generates in the API's shape.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

pytest.importorskip(
    "langchain_openai", reason="langchain-openai is not installed (tox -e frameworks installs it)"
)

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel
from wire_server import (
    API_KEY,
    CHAT_TEXT_STREAM,
    CHAT_TYPE,
    RESPONSES_ERROR_STREAM,
    RESPONSES_TEXT_STREAM,
    Run,
    assert_no_key_written,
    assert_typed,
    chat_text,
    record_and_replay,
    serve_capture,
    sse_data,
)

from vcr_ext.demo.server import FakeOpenAIServer

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


class Location(BaseModel):
    """The schema openai-python's structured-output snapshot was recorded with."""

    city: str
    temperature: float
    units: str


def get_weather(city: str) -> str:
    """Get the weather of a city."""
    return f"sunny in {city}"


def _chat(base_url: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", base_url=base_url, api_key=API_KEY, max_retries=0, **kwargs)  # type: ignore[arg-type]


def _view(message: BaseMessage) -> dict[str, Any]:
    """What LangChain hands the application, without LangChain's own per-run ``lc_run-…`` id.

    A chat completion's ``id`` (``chatcmpl-…``) is normalized on purpose by the recording
    (``rec-<hash>``): it is compared apart, in :func:`_assert_equal`.
    """
    assert isinstance(message, AIMessage)
    meta = dict(message.response_metadata)
    meta.pop("id", None)
    return {
        "content": message.content,
        "additional_kwargs": message.additional_kwargs,
        "tool_calls": message.tool_calls,
        "invalid_tool_calls": message.invalid_tool_calls,
        "usage_metadata": message.usage_metadata,
        "response_metadata": meta,
        "id": None if (message.id or "").startswith("lc_run-") else message.id,
    }


def _joined(chunks: list[AIMessageChunk]) -> AIMessage:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return AIMessage(**{k: v for k, v in total.model_dump().items() if k not in ("type", "tool_call_chunks")})


def _stream_view(chunks: list[AIMessageChunk]) -> dict[str, Any]:
    """The per-chunk content (the deltas an app prints) and the aggregated message."""
    return {"deltas": [c.content for c in chunks], "message": _view(_joined(chunks))}


def _assert_equal(run: Run[Any]) -> None:
    assert run.replayed == run.live
    assert run.other == run.live


def _chat_ids(message: BaseMessage) -> str | None:
    return message.response_metadata.get("id")


# ------------------------------------------------------------------ chat completions


def test_invoke(tmp_path: Path) -> None:
    ids: list[str | None] = []

    def call(base_url: str) -> dict[str, Any]:
        message = _chat(base_url).invoke("Tell me about cassettes.")
        ids.append(_chat_ids(message))
        return _view(message)

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    assert isinstance(run.live["content"], str) and run.live["content"]
    assert run.live["usage_metadata"]["total_tokens"] > 0
    # The per-call id is the one thing normalized: live chatcmpl-…, replayed rec-<hash>.
    assert ids[0] is not None and ids[0].startswith("chatcmpl-")
    assert ids[1] == ids[2] and ids[1] is not None and ids[1].startswith("rec-")
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    assert record["response"]["body"]["__type__"] == CHAT_TYPE
    assert_no_key_written(tmp_path, run.sent)


def test_stream_serves_the_real_capture(tmp_path: Path) -> None:
    raw: list[bytes] = []

    def serve(server: FakeOpenAIServer) -> None:
        raw.append(serve_capture(server, CHAT, CHAT_TEXT_STREAM))

    def call(base_url: str) -> dict[str, Any]:
        return _stream_view(list(_chat(base_url).stream("Say hi.")))

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    assert run.live["message"]["content"] == chat_text(raw[0]) != ""
    assert [d for d in run.live["deltas"] if d] == [
        c["delta"]["content"] for d in sse_data(raw[0]) for c in d["choices"] if c["delta"].get("content")
    ]
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    # One typed chunk per event of the capture, each the JSON the API sent (normalized ids aside).
    stored = [item["__data__"] for item in record["response"]["body"]]
    wire = sse_data(raw[0])
    assert len(stored) == len(wire)
    assert [{**c, "id": None, "created": None} for c in stored] == [
        {**c, "id": None, "created": None} for c in wire
    ]
    assert_no_key_written(tmp_path, run.sent)


def test_async_ainvoke_and_astream(tmp_path: Path) -> None:
    raw: list[bytes] = []

    def serve(server: FakeOpenAIServer) -> None:
        raw.append(serve_capture(server, CHAT, CHAT_TEXT_STREAM))

    def call(base_url: str) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            llm = _chat(base_url)
            chunks = [c async for c in llm.astream("Say hi.")]
            message = await llm.ainvoke("Tell me about cassettes.")
            return {"stream": _stream_view(chunks), "invoke": _view(message)}

        return asyncio.run(run())

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    assert run.live["stream"]["message"]["content"] == chat_text(raw[0])
    assert run.live["invoke"]["content"]
    assert_typed(run.cassette, {CHAT: 2})
    assert_no_key_written(tmp_path, run.sent)


def test_bind_tools_stream_serves_the_real_tool_call(tmp_path: Path) -> None:
    def serve(server: FakeOpenAIServer) -> None:
        serve_capture(server, CHAT, "tool_call_city")

    def call(base_url: str) -> dict[str, Any]:
        # stream_usage asks for the usage chunk (empty choices) the snapshot ends with.
        llm = _chat(base_url, stream_usage=True).bind_tools([get_weather])
        return _stream_view(list(llm.stream("What's the weather like in NYC?")))

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    (tool_call,) = run.live["message"]["tool_calls"]
    assert tool_call["name"] == "get_weather"
    assert tool_call["args"] == {"city": "New York City"}
    assert tool_call["id"].startswith("call_")
    assert run.live["message"]["response_metadata"]["finish_reason"] == "tool_calls"
    usage = run.live["message"]["usage_metadata"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert run.sent[0].body.count(b'"include_usage":true') == 1
    assert_typed(run.cassette, {CHAT: 1})
    assert_no_key_written(tmp_path, run.sent)


def test_bind_tools_invoke_then_tool_result(tmp_path: Path) -> None:
    # Generated bytes: a tool call, then (the tool's result sent back) a text answer.
    def call(base_url: str) -> dict[str, Any]:
        llm = _chat(base_url).bind_tools([get_weather])
        question = "What's the weather like in Paris?"
        first = llm.invoke(question)
        assert isinstance(first, AIMessage)
        (tool_call,) = first.tool_calls
        result = get_weather(**tool_call["args"])
        from langchain_core.messages import HumanMessage, ToolMessage

        second = llm.invoke(
            [HumanMessage(question), first, ToolMessage(result, tool_call_id=tool_call["id"])]
        )
        return {"first": _view(first), "second": _view(second)}

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    assert run.live["first"]["tool_calls"][0]["name"] == "get_weather"
    assert run.live["second"]["content"] and not run.live["second"]["tool_calls"]
    assert_typed(run.cassette, {CHAT: 2})
    assert_no_key_written(tmp_path, run.sent)


def test_structured_output_invoke(tmp_path: Path) -> None:
    def call(base_url: str) -> Location:
        structured = _chat(base_url).with_structured_output(Location, method="json_schema")
        result = structured.invoke("What's the weather like in SF?")
        assert isinstance(result, Location)
        return result

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    assert record["request"]["body"]["response_format"]["type"] == "json_schema"
    assert_no_key_written(tmp_path, run.sent)


def test_structured_output_function_calling(tmp_path: Path) -> None:
    def call(base_url: str) -> dict[str, Any]:
        structured = _chat(base_url).with_structured_output(
            Location, method="function_calling", include_raw=True
        )
        result = structured.invoke("What's the weather like in SF?")
        assert isinstance(result["parsed"], Location) and result["parsing_error"] is None
        return {"parsed": result["parsed"], "raw": _view(result["raw"])}

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    assert run.live["raw"]["tool_calls"][0]["name"] == "Location"
    (record,) = assert_typed(run.cassette, {CHAT: 1})
    assert record["request"]["body"]["tool_choice"]["function"]["name"] == "Location"
    assert_no_key_written(tmp_path, run.sent)


def test_batch_from_threads(tmp_path: Path) -> None:
    # LangChain's batch sends the requests concurrently from a thread pool, into one cassette.
    questions = [f"Tell me about cassette number {n}." for n in range(6)]

    def call(base_url: str) -> list[dict[str, Any]]:
        return [_view(m) for m in _chat(base_url).batch(questions, config={"max_concurrency": 6})]

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    contents = [m["content"] for m in run.live]
    assert len(set(contents)) == len(questions)
    assert all(f"number {n}" in c for n, c in enumerate(contents))
    assert_typed(run.cassette, {CHAT: len(questions)})
    assert_no_key_written(tmp_path, run.sent)


def test_structured_output_stream_serves_the_real_capture(tmp_path: Path) -> None:
    def serve(server: FakeOpenAIServer) -> None:
        serve_capture(server, CHAT, "structured_location")

    def call(base_url: str) -> list[Any]:
        structured = _chat(base_url).with_structured_output(Location, method="json_schema")
        return list(structured.stream("What's the weather like in SF?"))

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    assert run.live[-1] == Location(city="San Francisco", temperature=61, units="f")
    assert_typed(run.cassette, {CHAT: 1})
    assert_no_key_written(tmp_path, run.sent)


# ------------------------------------------------------------------ embeddings


def test_embeddings(tmp_path: Path) -> None:
    def call(base_url: str) -> dict[str, Any]:
        # Without check_embedding_ctx_length=False LangChain tokenizes with tiktoken, which
        # downloads its encoding file: this test is loopback only.
        embeddings = OpenAIEmbeddings(
            model="text-embedding-3-small",
            base_url=base_url,
            api_key=API_KEY,  # type: ignore[arg-type]
            max_retries=0,
            check_embedding_ctx_length=False,
        )
        return {
            "query": embeddings.embed_query("a cassette"),
            "documents": embeddings.embed_documents(["one tape", "two tapes"]),
        }

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    assert len(run.live["documents"]) == 2
    assert {len(v) for v in run.live["documents"]} == {len(run.live["query"])} != {0}
    assert all(isinstance(x, float) for x in run.live["query"])
    assert run.live["documents"][0] != run.live["documents"][1]
    recs = assert_typed(run.cassette, {"/v1/embeddings": 2})
    assert {r["response"]["body"]["__type__"] for r in recs} == {
        "openai.types.create_embedding_response.CreateEmbeddingResponse"
    }
    assert_no_key_written(tmp_path, run.sent)


# ------------------------------------------------------------------ Responses API


def test_responses_stream_serves_the_real_capture(tmp_path: Path) -> None:
    raw: list[bytes] = []

    def serve(server: FakeOpenAIServer) -> None:
        raw.append(serve_capture(server, RESPONSES, RESPONSES_TEXT_STREAM))

    def call(base_url: str) -> dict[str, Any]:
        return _stream_view(list(_chat(base_url, use_responses_api=True).stream("Say hello.")))

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    expected = "".join(e["delta"] for e in sse_data(raw[0]) if e["type"] == "response.output_text.delta")
    assert expected
    message = run.live["message"]
    assert "".join(b["text"] for b in message["content"] if b.get("type") == "text") == expected
    assert message["usage_metadata"]["total_tokens"] > 0
    (record,) = assert_typed(run.cassette, {RESPONSES: 1})
    assert [i["__data__"] for i in record["response"]["body"]] == sse_data(raw[0])  # kept as sent
    assert_no_key_written(tmp_path, run.sent)


def test_responses_invoke_and_ainvoke(tmp_path: Path) -> None:
    def call(base_url: str) -> dict[str, Any]:
        llm = _chat(base_url, use_responses_api=True)
        sync = llm.invoke("Tell me about cassettes.")
        asynchronous = asyncio.run(llm.ainvoke("Tell me about tapes."))
        return {"sync": _view(sync), "async": _view(asynchronous)}

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    assert run.live["sync"]["content"] and run.live["async"]["content"]
    recs = assert_typed(run.cassette, {RESPONSES: 2})
    assert {r["response"]["body"]["__type__"] for r in recs} == {"openai.types.responses.response.Response"}
    assert_no_key_written(tmp_path, run.sent)


def test_responses_stream_failing_mid_way_fails_the_same_on_replay(tmp_path: Path) -> None:
    # The real capture of a Responses stream that ends in `event: error` (insufficient quota).
    raw: list[bytes] = []

    def serve(server: FakeOpenAIServer) -> None:
        raw.append(serve_capture(server, RESPONSES, RESPONSES_ERROR_STREAM))

    def call(base_url: str) -> dict[str, Any]:
        chunks: list[Any] = []
        # The SDK raises APIError on a data object with an "error" key (the `event: error`).
        with pytest.raises(openai.APIError) as failure:
            for chunk in _chat(base_url, use_responses_api=True).stream("Say hello."):
                chunks.append(chunk.content)
        return {"chunks": chunks, "error": type(failure.value).__qualname__, "message": str(failure.value)}

    run = record_and_replay(tmp_path, serve, call)
    _assert_equal(run)
    (error,) = [e for e in sse_data(raw[0]) if e["type"] == "error"]
    assert error["error"]["message"] in run.live["message"]
    (record,) = assert_typed(run.cassette, {RESPONSES: 1})
    stored = [i["__data__"]["type"] for i in record["response"]["body"]]
    assert stored == [e["type"] for e in sse_data(raw[0])]
    assert_no_key_written(tmp_path, run.sent)


def test_responses_tool_call_then_tool_result(tmp_path: Path) -> None:
    # Generated bytes: a Responses function call, then (its output sent back) a text answer.
    from langchain_core.messages import HumanMessage, ToolMessage

    def call(base_url: str) -> dict[str, Any]:
        llm = _chat(base_url, use_responses_api=True).bind_tools([get_weather])
        question = "What's the weather like in Paris?"
        first = llm.invoke(question)
        assert isinstance(first, AIMessage)
        (tool_call,) = first.tool_calls
        output = ToolMessage(get_weather(**tool_call["args"]), tool_call_id=tool_call["id"])
        second = llm.invoke([HumanMessage(question), first, output])
        return {"first": _view(first), "second": _view(second)}

    run = record_and_replay(tmp_path, lambda server: None, call)
    _assert_equal(run)
    assert run.live["first"]["tool_calls"][0]["name"] == "get_weather"
    assert run.live["second"]["content"] and not run.live["second"]["tool_calls"]
    recs = assert_typed(run.cassette, {RESPONSES: 2})
    inputs = [json.dumps(r["request"]["body"]["input"]) for r in recs]
    assert sum("function_call_output" in i for i in inputs) == 1
    assert_no_key_written(tmp_path, run.sent)
