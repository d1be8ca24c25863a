"""The OpenAI traffic every tool records and replays, and what a replay must give back.

Each call returns a plain, comparable summary of what the SDK produced (text, tool
calls, embedding values, token counts), so that a replay can be checked against its
recording with ``==``: a tool that answered from the network or mangled a response
cannot pass. Completion ids are kept for inspection but left out of ``==``: vcr_ext's
recording format stores ``chat.completion`` ids as ``rec-<request hash>`` (and
``created`` as 0) on purpose, so its replays never return the live id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx2
import openai
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

CHAT_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
# text-embedding-3-small's native width: a realistic embedding body (~8 KB base64).
EMBEDDING_DIMENSIONS = 1536

# The demo server streams a tool call's arguments 3-6 characters per chunk; this schema
# yields ~275 characters of arguments, so the streamed answer is ~57 chunks plus the
# role, finish and usage chunks: ~60 in all, typical of a short streamed reply.
_FORECAST_PARAMETERS: dict[str, object] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "country": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "include_hourly": {"type": "boolean"},
        "fields": {
            "type": "array",
            "items": {"type": "string", "enum": ["temperature", "precipitation", "wind_speed"]},
            "minItems": 3,
        },
        "language": {"type": "string"},
        "timezone": {"type": "string"},
        "latitude": {"type": "number"},
        "longitude": {"type": "number"},
        "region": {"type": "string"},
        "alerts": {"type": "boolean"},
        "station": {"type": "string"},
    },
    "required": ["city"],
}
FORECAST_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_forecast",
        "description": "Weather forecast for a city.",
        "parameters": _FORECAST_PARAMETERS,
    },
}


@dataclass(frozen=True)
class StreamSummary:
    chunks: int
    completion_id: str = field(compare=False)
    tool_calls: tuple[tuple[str, str, str], ...]  # (id, name, arguments) per call
    finish_reason: str | None
    total_tokens: int | None


@dataclass(frozen=True)
class ChatSummary:
    completion_id: str = field(compare=False)
    text: str | None
    total_tokens: int | None


@dataclass(frozen=True)
class UnitResult:
    """What one test-like unit of the suite saw."""

    stream: StreamSummary
    chat: ChatSummary
    embedding: tuple[float, ...]


def make_client(
    base_url: str, *, close_connections: bool = False, http_client: httpx2.Client | None = None
) -> openai.OpenAI:
    """The real SDK client; no retries, so a failed replay fails at once instead of backing off.

    ``close_connections`` is for recording only: the demo server answers a kept-alive
    connection's non-streamed requests ~40 ms late (its headers and body go out as two
    small writes, which Nagle's algorithm holds until the client's delayed ACK), which
    would make recording take minutes. Replay never opens a connection, so it is unaffected.
    """
    headers = {"Connection": "close"} if close_connections else None
    return openai.OpenAI(
        base_url=base_url, api_key="sk-bench", max_retries=0, default_headers=headers, http_client=http_client
    )


def unit_prompt(index: int) -> str:
    return f"Test {index}: what is the weather forecast for Paris this week?"


def lookup_prompt(index: int) -> str:
    return f"Lookup {index}: give me one fact about the number {index}."


def _user(prompt: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": prompt}]


def stream_tool_call(client: openai.OpenAI, prompt: str) -> StreamSummary:
    """A streamed chat completion that calls a tool, consumed to the end as an agent loop would."""
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=_user(prompt),
        tools=[FORECAST_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, list[str]] = {}
    chunks, completion_id, finish, tokens = 0, "", None, None
    for chunk in stream:
        chunks += 1
        completion_id = chunk.id
        if chunk.usage is not None:
            tokens = chunk.usage.total_tokens
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, ["", "", ""])
                fn = delta.function
                call[0] += delta.id or ""
                call[1] += (fn.name if fn else None) or ""
                call[2] += (fn.arguments if fn else None) or ""
    tool_calls = tuple((c[0], c[1], c[2]) for _, c in sorted(calls.items()))
    return StreamSummary(chunks, completion_id, tool_calls, finish, tokens)


def chat(client: openai.OpenAI, prompt: str) -> ChatSummary:
    """A plain, non-streamed chat completion."""
    completion = client.chat.completions.create(model=CHAT_MODEL, messages=_user(prompt))
    usage = completion.usage
    return ChatSummary(
        completion.id, completion.choices[0].message.content, usage.total_tokens if usage else None
    )


def embed(client: openai.OpenAI, text: str) -> tuple[float, ...]:
    """An embeddings call (the SDK asks for base64 and decodes it, as it does by default)."""
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=text, dimensions=EMBEDDING_DIMENSIONS)
    return tuple(response.data[0].embedding)


def run_unit(client: openai.OpenAI, index: int) -> UnitResult:
    """One test of the suite: the three calls its cassette holds."""
    prompt = unit_prompt(index)
    return UnitResult(stream_tool_call(client, prompt), chat(client, prompt), embed(client, prompt))


def run_lookup(client: openai.OpenAI, index: int) -> ChatSummary:
    """One of the big cassette's requests; they differ only by the user message."""
    return chat(client, lookup_prompt(index))
