"""An example of an LLM application's tests: each records once, then replays offline."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.vcr
def test_chat_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello to the demo."}]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content


@pytest.mark.vcr
def test_chat_stream_text(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me about cassettes."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.vcr
def test_stream_helper_accumulates_tool_call(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=QUESTION, tools=[WEATHER_TOOL]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls
    call = calls[0]
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city", "unit"}


@pytest.mark.vcr
def test_responses_stream(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="Write one line about tapes.") as stream:
        final = stream.get_final_response()
    assert final.output_text


@pytest.mark.vcr
def test_async_chat_stream(async_client: openai.AsyncOpenAI) -> None:
    async def run() -> str:
        stream = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Count to three."}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run())


@pytest.mark.vcr
def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["vcr", "cassette"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0


@pytest.mark.vcr
def test_rate_limit_is_an_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="error-429", messages=QUESTION)
