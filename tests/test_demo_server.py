"""The embedded fake OpenAI server, exercised through the real openai SDK over loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest

from vcr_ext.demo.server import FakeOpenAIServer, ReceivedRequest

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "What is the weather like in Paris today?"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "detailed": {"type": "boolean"},
            },
            "required": ["city", "unit", "days", "detailed"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}
# Headers that legitimately differ between two identical real requests.
VOLATILE = {
    "date",
    "set-cookie",
    "cf-ray",
    "openai-processing-ms",
    "x-envoy-upstream-service-time",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test-fake", max_retries=0) as sdk:
        yield sdk


def async_client(server: FakeOpenAIServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-fake", max_retries=0)


def sse_payloads(raw: bytes) -> list[str]:
    """The ``data:`` lines of a ``data:``-only SSE body, checking its framing on the way."""
    text = raw.decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    return [e[len("data: ") :] for e in events]


def read_raw_chunks(server: FakeOpenAIServer, request: bytes) -> tuple[bytes, list[bytes]]:
    """Send ``request`` on a fresh socket and return the response head and its HTTP chunks, undecoded."""
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return head + b"\r\n", chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def post_request(path: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload


# --------------------------------------------------------------------------- chat completions


def test_chat_stream_text_equals_non_stream_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    text = completion.choices[0].message.content
    assert text is not None and "What is the weather like in Paris today?" in text
    assert text.count(".") >= 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert len(chunks) > 10
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert chunks[-1].choices == [] and chunks[-1].usage == completion.usage
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_chat_stream_wire_format_matches_the_real_api(server: FakeOpenAIServer) -> None:
    body = {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    head, chunks = read_raw_chunks(server, post_request("/v1/chat/completions", body))

    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncontent-type: text/event-stream; charset=utf-8\r\n" in head
    assert b"\r\ntransfer-encoding: chunked\r\n" in head
    # One SSE event per HTTP chunk, as each is flushed on its own.
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") and c.count(b"\n\n") == 1 for c in chunks)
    payloads = sse_payloads(b"".join(chunks))
    assert payloads[-1] == "[DONE]"
    objects = [json.loads(p) for p in payloads[:-1]]
    for raw, obj in zip(payloads, objects, strict=False):
        assert raw == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        assert list(obj) == [
            "id",
            "object",
            "created",
            "model",
            "service_tier",
            "system_fingerprint",
            "choices",
            "usage",
            "obfuscation",
        ]
    assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    middle = objects[1:-2]
    assert all(list(o["choices"][0]["delta"]) == ["content"] for o in middle)
    assert all(o["usage"] is None for o in objects[:-1])
    assert objects[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert objects[-1]["choices"] == [] and objects[-1]["usage"]["total_tokens"] > 0
    assert len({len(o["obfuscation"]) for o in objects}) > 3
    assert len({o["id"] for o in objects}) == 1 and objects[0]["id"].startswith("chatcmpl-")


def test_chat_stream_without_include_usage_has_no_usage_key(server: FakeOpenAIServer) -> None:
    response = httpx.post(
        server.base_url + "/chat/completions", json={"model": "m", "messages": USER, "stream": True}
    )
    objects = [json.loads(p) for p in sse_payloads(response.content)[:-1]]
    assert all("usage" not in o for o in objects)
    assert objects[0]["model"] == "m"


def test_stream_helper_accumulates_tool_call_with_valid_arguments(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"
    arguments = json.loads(calls[0].function.arguments)
    assert arguments == {"city": "Paris", "unit": "celsius", "days": 3, "detailed": True}
    assert calls[0].function.parsed_arguments == arguments
    assert sum(e.type == "tool_calls.function.arguments.delta" for e in events) >= 5

    plain = client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL])
    plain_calls = plain.choices[0].message.tool_calls
    assert plain_calls is not None
    assert plain_calls[0].function.arguments == calls[0].function.arguments


def test_tool_call_stream_deltas_carry_only_changed_keys(server: FakeOpenAIServer) -> None:
    body = {"model": "gpt-4o", "messages": USER, "tools": [WEATHER_TOOL], "stream": True}
    objects = [
        json.loads(p)
        for p in sse_payloads(httpx.post(server.base_url + "/chat/completions", json=body).content)[:-1]
    ]

    first = objects[0]["choices"][0]["delta"]
    assert list(first) == ["role", "content", "tool_calls", "refusal"]
    assert first["content"] is None and first["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": "",
    }
    pieces = [o["choices"][0]["delta"]["tool_calls"][0] for o in objects[1:-1]]
    assert all(p.keys() == {"index", "function"} and p["function"].keys() == {"arguments"} for p in pieces)
    assert all(3 <= len(p["function"]["arguments"]) <= 6 for p in pieces[:-1])
    assert json.loads("".join(p["function"]["arguments"] for p in pieces))["city"] == "Paris"
    assert objects[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_both_in_user_message_calls_two_tools_unless_parallel_disabled(client: openai.OpenAI) -> None:
    both = [{"role": "user", "content": "Tell me both the weather and the time in Paris."}]
    tools: Any = [WEATHER_TOOL, TIME_TOOL]

    with client.chat.completions.stream(model="gpt-4o", messages=both, tools=tools) as stream:
        calls = stream.get_final_completion().choices[0].message.tool_calls
    assert calls is not None
    assert [(c.index, c.function.name) for c in calls] == [(0, "get_weather"), (1, "get_time")]
    assert json.loads(calls[1].function.arguments) == {"timezone": "Paris"}

    single = client.chat.completions.create(
        model="gpt-4o", messages=both, tools=tools, parallel_tool_calls=False
    )
    assert [c.function.name for c in single.choices[0].message.tool_calls or []] == ["get_weather"]


def test_tool_choice_selects_the_named_function(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in completion.choices[0].message.tool_calls or []] == ["get_time"]


def test_tool_result_turn_gets_a_text_answer(client: openai.OpenAI) -> None:
    messages: Any = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 C"},
    ]
    completion = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    assert completion.choices[0].finish_reason == "stop"
    assert "Sunny, 24 C" in (completion.choices[0].message.content or "")


def test_n_choices_stream_and_non_stream_agree(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER, n=3)
    texts: dict[int, str] = {}
    for chunk in client.chat.completions.create(model="gpt-4o", messages=USER, n=3, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")

    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert texts == {c.index: c.message.content for c in completion.choices}
    assert len(set(texts.values())) > 1


def test_logprobs_cover_the_content_in_both_modes(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER, logprobs=True, top_logprobs=2)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content
    assert all(t.logprob <= 0 and bytes(t.bytes or []) == t.token.encode() for t in logprobs.content)
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in logprobs.content)

    streamed = []
    for chunk in client.chat.completions.create(
        model="gpt-4o", messages=USER, logprobs=True, top_logprobs=2, stream=True
    ):
        if chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
            streamed.extend(chunk.choices[0].logprobs.content)
    assert [t.model_dump() for t in streamed] == [t.model_dump() for t in logprobs.content]


class City(pydantic.BaseModel):
    name: str
    population: int
    coastal: bool
    landmarks: list[str]


def test_json_schema_response_format_parses_into_the_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model="gpt-4o", messages=USER, response_format=City)
    parsed = completion.choices[0].message.parsed
    assert parsed == City(name="Ada Lovelace", population=3, coastal=True, landmarks=["Paris"])


# --------------------------------------------------------------------------- responses


def test_responses_stream_and_helper_give_the_non_stream_output_text(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="gpt-4o", input="Say hello to Paris")
    assert plain.status == "completed" and plain.usage is not None
    assert "Say hello to Paris" in plain.output_text

    events = list(client.responses.create(model="gpt-4o", input="Say hello to Paris", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert types.count("response.output_text.delta") > 5
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == plain.output_text

    with client.responses.stream(model="gpt-4o", input="Say hello to Paris") as stream:
        assert stream.get_final_response().output_text == plain.output_text


def test_responses_stream_wire_format(server: FakeOpenAIServer) -> None:
    body = {"model": "gpt-4o", "input": "Hi", "stream": True}
    head, chunks = read_raw_chunks(server, post_request("/v1/responses", body))

    assert b"\r\ncontent-type: text/event-stream; charset=utf-8\r\n" in head
    for chunk in chunks:
        event_line, data_line, blank = chunk.decode().split("\n", 2)
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}" and blank == "\n"
        assert data_line == "data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    created = json.loads(chunks[0].decode().split("\n")[1][6:])["response"]
    assert list(created)[:4] == ["id", "object", "created_at", "status"]
    assert created["service_tier"] == "auto" and created["usage"] is None
    delta = json.loads(chunks[4].decode().split("\n")[1][6:])
    assert list(delta) == [
        "type",
        "sequence_number",
        "item_id",
        "output_index",
        "content_index",
        "delta",
        "logprobs",
        "obfuscation",
    ]
    assert b"[DONE]" not in b"".join(chunks)


def test_responses_function_call(client: openai.OpenAI) -> None:
    tool: Any = {"type": "function", **WEATHER_TOOL["function"]}
    plain = client.responses.create(model="gpt-4o", input="Weather in Paris?", tools=[tool])
    call = plain.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather" and call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert json.loads(call.arguments)["unit"] == "celsius"

    events = list(
        client.responses.create(model="gpt-4o", input="Weather in Paris?", tools=[tool], stream=True)
    )
    types = [e.type for e in events]
    assert "response.function_call_arguments.done" in types
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) > 3 and "".join(deltas) == call.arguments

    with client.responses.stream(model="gpt-4o", input="Weather in Paris?", tools=[tool]) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call" and final.output[0].arguments == call.arguments

    follow_up = client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "Rainy, 12 C"},
        ],
        tools=[tool],
    )
    assert "Rainy, 12 C" in follow_up.output_text


def test_responses_error_stream(client: openai.OpenAI, server: FakeOpenAIServer) -> None:
    seen = []
    with pytest.raises(openai.APIError, match="You exceeded your current quota"):
        for event in client.responses.create(model="error-stream", input="Hi", stream=True):
            seen.append(event.type)
    assert seen == ["response.created", "response.in_progress"]

    raw = httpx.post(
        server.base_url + "/responses", json={"model": "error-stream", "input": "Hi", "stream": True}
    )
    events = [block.split("\n") for block in raw.text.strip("\n").split("\n\n")]
    assert [e[0] for e in events] == [
        "event: response.created",
        "event: response.in_progress",
        "event: error",
        "event: response.failed",
    ]
    error = json.loads(events[2][1][6:])
    assert error["type"] == "error" and error["error"]["code"] == "insufficient_quota"
    failed = json.loads(events[3][1][6:])["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "insufficient_quota"


# --------------------------------------------------------------------------- other endpoints


def test_embeddings_float_and_base64_agree(client: openai.OpenAI, server: FakeOpenAIServer) -> None:
    texts = ["first text", "second text"]
    default = client.embeddings.create(model="text-embedding-3-small", input=texts)
    floats = client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")

    assert json.loads(server.requests[0].body)["encoding_format"] == "base64"
    assert [d.index for d in floats.data] == [0, 1]
    for b64_item, float_item in zip(default.data, floats.data, strict=True):
        assert len(float_item.embedding) == 8
        # The base64 bytes are exactly the float32 encoding of the float answer.
        assert struct.pack("<8f", *float_item.embedding) == struct.pack("<8f", *b64_item.embedding)
        assert b64_item.embedding == pytest.approx(float_item.embedding, rel=1e-6)
        assert sum(v * v for v in float_item.embedding) == pytest.approx(1.0, rel=1e-5)
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.usage.total_tokens > 0

    wide = client.embeddings.create(
        model="text-embedding-3-small", input="x", dimensions=32, encoding_format="float"
    )
    assert len(wide.data[0].embedding) == 32


def test_legacy_completions_stream_and_non_stream(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    assert plain.object == "text_completion" and "Once upon a time" in plain.choices[0].text
    chunks = list(
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time", stream=True)
    )
    assert len(chunks) > 5
    assert "".join(c.choices[0].text for c in chunks) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids and len(ids) >= 3
    model = client.models.retrieve("my-custom-model")
    assert model.id == "my-custom-model" and model.object == "model"


@pytest.mark.parametrize(
    ("model", "error", "status", "code"),
    [
        ("error-400", openai.BadRequestError, 400, "model_not_found"),
        ("error-401", openai.AuthenticationError, 401, "invalid_api_key"),
        ("error-429", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("error-500", openai.InternalServerError, 500, None),
    ],
)
def test_error_models_raise_the_sdk_error(
    client: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=model, messages=USER)

    exc = caught.value
    assert exc.status_code == status and exc.code == code
    body = exc.response.json()["error"]
    assert body["message"] in str(exc)
    assert exc.response.headers["content-type"] == "application/json"
    assert exc.response.headers["x-request-id"].startswith("req_demo_")
    if status == 429:
        assert exc.response.headers["retry-after"] == "1"
        assert exc.response.headers["x-should-retry"] == "true"
    with pytest.raises(error):
        client.responses.create(model=model, input="Hi")


def test_unknown_route_and_bad_json(server: FakeOpenAIServer) -> None:
    missing = httpx.post(server.base_url + "/does/not/exist", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/does/not/exist)"
    bad = httpx.post(server.base_url + "/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_model_names_echo_like_the_real_api(client: openai.OpenAI) -> None:
    def echoed(model: str) -> str:
        return client.chat.completions.create(model=model, messages=USER).model

    assert echoed("gpt-4o") == "gpt-4o-2024-08-06"
    assert echoed("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13"
    assert echoed("gpt-3.5-turbo-0125") == "gpt-3.5-turbo-0125"
    assert echoed("llama3.2") == "llama3.2"


# --------------------------------------------------------------------------- determinism and plumbing


def test_same_request_gives_identical_bytes(client: openai.OpenAI) -> None:
    def call(**extra: Any) -> Any:
        return client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER, **extra)

    first, second = call(), call()
    assert first.http_response.content == second.http_response.content
    stable = [(k, v) for k, v in first.headers.multi_items() if k not in VOLATILE]
    assert stable == [(k, v) for k, v in second.headers.multi_items() if k not in VOLATILE]
    assert first.headers["x-request-id"].startswith("req_demo_")
    for name in ("date", "cf-ray", "set-cookie", "openai-processing-ms", "x-ratelimit-remaining-requests"):
        assert name in first.headers

    streamed = [call(stream=True, stream_options={"include_usage": True}) for _ in range(2)]
    assert streamed[0].http_response.read() == streamed[1].http_response.read()
    assert streamed[0].headers["x-request-id"] == streamed[1].headers["x-request-id"]
    assert streamed[0].headers["x-request-id"] != first.headers["x-request-id"]

    other = call(temperature=0.5)
    assert other.http_response.content != first.http_response.content


def test_request_id_prefix_and_received_requests() -> None:
    with (
        FakeOpenAIServer(request_id_prefix="req_custom") as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test-fake", max_retries=0) as client,
    ):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
        client.models.list()

        assert raw.headers["x-request-id"].startswith("req_custom_")
        assert len(raw.headers["x-request-id"]) == len("req_custom_") + 32
        first, second = server.requests
        assert isinstance(first, ReceivedRequest)
        assert (first.method, first.path) == ("POST", "/v1/chat/completions")
        assert first.headers["authorization"] == "Bearer sk-test-fake"
        assert json.loads(first.body) == {"model": "gpt-4o", "messages": USER}
        assert (second.method, second.path, second.body) == ("GET", "/v1/models", b"")


def test_enqueue_serves_exact_bytes_first_in_first_out(
    client: openai.OpenAI, server: FakeOpenAIServer
) -> None:
    first = b'{"id":"canned-1","object":"model","created":1,"owned_by":"me"}'
    second = b'{"id":"canned-2","object":"model","created":2,"owned_by":"me"}'
    server.enqueue(
        "GET", "/v1/models/x", headers=[("content-type", "application/json"), ("x-canned", "yes")], body=first
    )
    server.enqueue("GET", "/v1/models/x", headers=[("content-type", "application/json")], body=second)

    raw = client.models.with_raw_response.retrieve("x")
    assert raw.http_response.content == first
    assert raw.headers["x-canned"] == "yes" and raw.headers["content-length"] == str(len(first))
    assert "x-request-id" not in raw.headers
    assert client.models.retrieve("x").id == "canned-2"
    assert client.models.retrieve("x").owned_by == "system"  # queue drained: generated again


def test_enqueue_iterable_body_is_sent_chunk_by_chunk(
    client: openai.OpenAI, server: FakeOpenAIServer
) -> None:
    events = [
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n',
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    headers = [("content-type", "text/event-stream")]
    server.enqueue("POST", "/v1/chat/completions", status=200, headers=headers, body=iter(events))
    server.enqueue("POST", "/v1/chat/completions", status=200, headers=headers, body=events)

    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "Hello"
    head, chunks = read_raw_chunks(
        server, post_request("/v1/chat/completions", {"model": "m", "messages": USER})
    )
    assert chunks == events
    assert b"\r\ntransfer-encoding: chunked\r\n" in head


def test_enqueue_error_status_reaches_the_sdk(client: openai.OpenAI, server: FakeOpenAIServer) -> None:
    body = json.dumps(
        {"error": {"message": "canned overload", "type": "server_error", "param": None, "code": None}}
    )
    server.enqueue(
        "POST",
        "/v1/embeddings",
        status=503,
        headers=[("content-type", "application/json")],
        body=body.encode(),
    )
    with pytest.raises(openai.InternalServerError, match="canned overload"):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_keep_alive_connection_is_reused(server: FakeOpenAIServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port)
    try:
        for stream in (False, True, False):
            body = json.dumps({"model": "gpt-4o", "messages": USER, "stream": stream})
            connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            assert response.getheader("connection") == "keep-alive"
        sock = connection.sock
        connection.request("GET", "/v1/models")
        assert connection.getresponse().read() and connection.sock is sock
    finally:
        connection.close()
    assert len(server.requests) == 4


def test_stop_closes_pooled_connections_and_the_port() -> None:
    server = FakeOpenAIServer().start()
    url = server.url
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test-fake", max_retries=0) as pooled:
        pooled.models.list()
        server.stop()
        with pytest.raises(openai.APIConnectionError):
            pooled.models.list()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


@pytest.mark.asyncio
async def test_async_client_chat_responses_and_embeddings() -> None:
    with FakeOpenAIServer() as server:
        async with async_client(server) as client:
            plain = await client.chat.completions.create(model="gpt-4o", messages=USER)
            text = ""
            async for chunk in await client.chat.completions.create(
                model="gpt-4o", messages=USER, stream=True
            ):
                text += chunk.choices[0].delta.content or ""
            assert text == plain.choices[0].message.content

            async with client.chat.completions.stream(
                model="gpt-4o", messages=USER, tools=[WEATHER_TOOL]
            ) as stream:
                final = await stream.get_final_completion()
            calls = final.choices[0].message.tool_calls or []
            assert json.loads(calls[0].function.arguments)["city"] == "Paris"

            async with client.responses.stream(model="gpt-4o", input="Async hello") as response_stream:
                response = await response_stream.get_final_response()
            assert "Async hello" in response.output_text

            embedded = await client.embeddings.create(model="text-embedding-3-small", input="x")
            assert len(embedded.data[0].embedding) == 8

            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model="error-429", messages=USER)


def test_module_runs_in_the_foreground_and_stops_on_sigterm() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "vcr_ext.demo.server", "--request-id-prefix", "req_cli"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        response = httpx.get(base_url + "/models/gpt-4o")
        assert response.json()["id"] == "gpt-4o"
        assert response.headers["x-request-id"].startswith("req_cli_")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        if process.stdout is not None:
            process.stdout.close()
