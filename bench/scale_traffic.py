"""The scale benchmark's traffic: N distinct chat completions, streamed and not, of realistic sizes.

Request ``i`` is the same in every cassette (a cassette of N holds requests 0 .. N-1),
so every size and every tool holds the same exchanges. Requests come in blocks of five,
one of each kind below, so that any whole number of blocks has the same mix (one in five
streamed): the per-request median of a sample of whole blocks is comparable across sizes.

Each call returns a plain JSON-shaped summary (chunk count, text, tool calls, finish
reason, token usage), computed either from what the openai SDK returned (replay) or from
the raw response bytes (recording, which does not go through the SDK's parsing, see
:func:`build_requests`), and the two must be equal. Completion ids are left out for the
reason given in :mod:`bench.traffic`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from .scenarios import suite_cassette
from .tools import Tool
from .traffic import (
    CHAT_MODEL,
    FORECAST_TOOL,
    UnitResult,
    chat,
    embed,
    make_client,
    stream_tool_call,
    unit_prompt,
)

KINDS = ("chat", "tools", "multi-turn", "long", "stream")
BLOCK = len(KINDS)

# Every request carries a system prompt, as application traffic does (~450 bytes).
SYSTEM_PROMPT = (
    "You are the assistant of a travel and weather app. Answer in at most three sentences, in plain "
    "text without markdown. Mention the country of every city you name, use metric units unless the "
    "user asks otherwise, and never invent opening hours, prices or phone numbers. If a question is "
    "about the weather, prefer calling the forecast tool over guessing. Do not ask follow-up questions."
)
# The "long" kind pastes a document into the prompt (~1.3 KB), like a summarise-this request.
_ITINERARY = " ".join(
    f"Day {d}: morning walk through the old town, lunch near the river, a museum in the afternoon "
    f"and dinner at a place the hotel recommends; travel time about {20 + 5 * d} minutes."
    for d in range(1, 8)
)

# (method, URL path with query, headers as the SDK sent them, body bytes)
WireRequest = tuple[str, str, list[tuple[bytes, bytes]], bytes]
# [chunks (0: not streamed), text, [[call id, name, arguments], ...], finish reason, total tokens]
Summary = list[Any]


def kind(i: int) -> str:
    return KINDS[i % BLOCK]


def _messages(k: str, i: str) -> list[ChatCompletionMessageParam]:
    """The messages of a request of kind ``k`` whose index is written ``i``."""
    system: ChatCompletionMessageParam = {"role": "system", "content": SYSTEM_PROMPT}
    if k == "multi-turn":
        return [
            system,
            {"role": "user", "content": f"Trip {i}: which city should I visit in early spring?"},
            {
                "role": "assistant",
                "content": "Lisbon, Portugal is mild in early spring, usually 15 to 19 degrees, "
                "with fewer visitors than in summer.",
            },
            {"role": "user", "content": f"Trip {i}: and what should I pack for four days there?"},
        ]
    if k == "long":
        return [
            system,
            {"role": "user", "content": f"Summarise itinerary {i} in two sentences: {_ITINERARY}"},
        ]
    if k == "tools":
        return [system, {"role": "user", "content": f"Request {i}: will it rain in Oslo tomorrow?"}]
    return [system, {"role": "user", "content": f"Question {i}: what is one thing to see in city {i}?"}]


def create_kwargs(i: int) -> dict[str, Any]:
    """The ``client.chat.completions.create`` arguments of request ``i``."""
    return _kwargs(kind(i), str(i))


def _kwargs(k: str, i: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": CHAT_MODEL, "messages": _messages(k, i)}
    if k == "tools":
        kwargs["tools"] = [FORECAST_TOOL]
    if k == "stream":
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    return kwargs


def is_stream(i: int) -> bool:
    return kind(i) == "stream"


# ----------------------------------------------------------------------------- cassettes and samples

# The existing suite's cassette (bench.scenarios: one streamed tool call, one chat, one
# embeddings call) stands for the smallest size: most test cassettes are that small.
SUITE_SIZE = 3


def cassette_for(tool: Tool, root: Path, size: int) -> Path:
    """The cassette of ``size`` interactions of one tool: the suite's first, or a mixed one."""
    if size == SUITE_SIZE:
        return suite_cassette(tool, root, 0)
    return tool.cassette_path(root / "scale", f"scale_{size}")


def _van_der_corput(n: int) -> float:
    """0, 1/2, 1/4, 3/4, 1/8, ...: every prefix of the sequence is spread evenly over [0, 1)."""
    x, denominator = 0.0, 1.0
    while n:
        n, digit = divmod(n, 2)
        denominator *= 2
        x += digit / denominator
    return x


def sample(size: int, count: int) -> list[int]:
    """Up to ``count`` request indices of the cassette, spread over it, in whole blocks.

    Blocks are taken in van der Corput order, so that a replay cut short by its time
    budget (vcrpy at 10,000 gets through a handful) has still sampled the whole cassette,
    and the kind mix of any prefix is the same as the cassette's.
    """
    if size == SUITE_SIZE:
        return list(range(SUITE_SIZE))
    blocks, wanted = size // BLOCK, max(1, min(count // BLOCK, size // BLOCK))
    chosen: dict[int, None] = {}  # an ordered set
    # From 1/2, not 0: a replay cut short after a block or two should have sampled the
    # middle of the cassette, not its first block, the cheapest for a tool that scans.
    n = 1
    while len(chosen) < wanted:
        chosen.setdefault(int(_van_der_corput(n) * blocks), None)
        n += 1
    return [block * BLOCK + offset for block in chosen for offset in range(BLOCK)]


# ----------------------------------------------------------------------------- replay (SDK)


def replay_call(client: openai.OpenAI, size: int, i: int) -> object:
    """Request ``i`` of the cassette of ``size``, through the SDK; what :func:`expected` compares to."""
    if size != SUITE_SIZE:
        return call(client, i)
    prompt = unit_prompt(0)
    if i == 0:
        return stream_tool_call(client, prompt)
    return chat(client, prompt) if i == 1 else embed(client, prompt)


def suite_expected(unit: UnitResult) -> list[object]:
    """What the suite cassette's three calls must give back, in :func:`replay_call`'s order."""
    return [unit.stream, unit.chat, unit.embedding]


def call(client: openai.OpenAI, i: int) -> Summary:
    """Request ``i`` through the openai SDK, consumed fully, summarised.

    Attribute access on the SDK's objects, not ``model_dump()``: dumping would add
    pydantic serialisation to every timed request.
    """
    if is_stream(i):
        count, text, finish, tokens = 0, "", None, None
        calls: dict[int, list[str]] = {}
        for chunk in client.chat.completions.create(**create_kwargs(i)):
            count += 1
            if chunk.usage is not None:
                tokens = chunk.usage.total_tokens
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                text += choice.delta.content or ""
                for piece in choice.delta.tool_calls or ():
                    entry = calls.setdefault(piece.index, ["", "", ""])
                    fn = piece.function
                    entry[0] += piece.id or ""
                    entry[1] += (fn.name if fn else None) or ""
                    entry[2] += (fn.arguments if fn else None) or ""
        return [count, text, [calls[k] for k in sorted(calls)], finish, tokens]
    completion = client.chat.completions.create(**create_kwargs(i))
    first = completion.choices[0]
    message = first.message
    tool_calls = [
        [c.id, c.function.name, c.function.arguments]
        for c in message.tool_calls or ()
        if c.type == "function"
    ]
    usage = completion.usage
    return [0, message.content, tool_calls, first.finish_reason, usage.total_tokens if usage else None]


# ----------------------------------------------------------------------------- recording (wire)


def wire_summary(i: int, body: bytes) -> Summary:
    """The summary :func:`call` must return for request ``i``, from its raw response body."""
    if not is_stream(i):
        completion = json.loads(body)
        first = completion["choices"][0]
        message = first["message"]
        tool_calls = [
            [c["id"], c["function"]["name"], c["function"]["arguments"]]
            for c in message.get("tool_calls") or ()
        ]
        tokens = (completion.get("usage") or {}).get("total_tokens")
        return [0, message.get("content"), tool_calls, first.get("finish_reason"), tokens]
    count, text, finish, tokens = 0, "", None, None
    calls: dict[int, list[str]] = {}
    for line in body.splitlines():
        if not line.startswith(b"data: "):
            continue
        data = line[len(b"data: ") :]
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        count += 1
        if chunk.get("usage"):
            tokens = chunk["usage"]["total_tokens"]
        for choice in chunk["choices"]:
            finish = choice.get("finish_reason") or finish
            delta = choice["delta"]
            text += delta.get("content") or ""
            for piece in delta.get("tool_calls") or ():
                entry = calls.setdefault(piece["index"], ["", "", ""])
                fn = piece.get("function") or {}
                entry[0] += piece.get("id") or ""
                entry[1] += fn.get("name") or ""
                entry[2] += fn.get("arguments") or ""
    return [count, text, [calls[k] for k in sorted(calls)], finish, tokens]


_NOT_SENT = (b"host", b"content-length", b"x-stainless-raw-response")


# Stands for the request index in the SDK-built templates; a character no request contains.
_INDEX = "\u2063"
_INDEX_BYTES = _INDEX.encode("utf-8")  # the SDK writes JSON with ensure_ascii=False


def build_requests(count: int) -> list[WireRequest]:
    """Requests 0 .. count-1 exactly as the openai SDK sends them (headers and body bytes).

    Recording sends these with a plain ``httpx2.Client`` (the SDK's own HTTP library, which
    every tool intercepts) instead of calling the SDK: parsing the responses into pydantic
    models (~40 per streamed answer) made recording 11,110 requests per tool through the
    whole SDK take ~5 ms a request. The recorders see the same HTTP exchange either way, so
    a cassette is what the SDK would have recorded, and vcr_ext's exact-bytes fast path
    sees the bytes it will see at replay.

    The SDK builds one template per kind, with a marker for the index: building all
    10,000 through it costs ~8 s (~25 s on a busy machine). The first and last blocks are
    built by the SDK too and must come out byte for byte the same as from the templates.
    """
    templates = dict(zip(KINDS, _sdk_requests([_kwargs(k, _INDEX) for k in KINDS]), strict=True))
    built: list[WireRequest] = []
    for i in range(count):
        method, path, headers, body = templates[kind(i)]
        built.append((method, path, headers, body.replace(_INDEX_BYTES, str(i).encode("ascii"))))
    checked = sorted({*range(min(BLOCK, count)), *range(max(0, count - BLOCK), count)})
    for i, direct in zip(checked, _sdk_requests([create_kwargs(i) for i in checked]), strict=True):
        if direct != built[i]:
            raise AssertionError(f"request {i} built from its template differs from the SDK's")
    return built


def _sdk_requests(calls: list[dict[str, Any]]) -> list[WireRequest]:
    """What the openai SDK sends for each of these ``chat.completions.create`` calls."""
    captured: list[WireRequest] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        # httpx2 sets host and length itself; the raw-response marker is there only because
        # of how the request is captured here, a plain SDK call does not send it.
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _NOT_SENT]
        captured.append((request.method, request.url.raw_path.decode("ascii"), headers, request.read()))
        return httpx2.Response(200, json={})

    # Connection: close, for the reason given in bench.traffic.make_client.
    client = make_client(
        "http://capture.invalid/v1",
        close_connections=True,
        http_client=httpx2.Client(transport=httpx2.MockTransport(capture)),
    )
    raw = client.chat.completions.with_raw_response  # returns without parsing the canned response
    for kwargs in calls:
        raw.create(**kwargs)
    return captured


def send(http: httpx2.Client, origin: str, request: WireRequest) -> bytes:
    """Send one built request to the server at ``origin``; the whole response body."""
    method, path, headers, body = request
    outgoing = http.build_request(method, origin + path, headers=headers, content=body)
    # Streamed answers are read as a stream, as the SDK reads them.
    streamed = b'"stream":true' in body
    response = http.send(outgoing, stream=streamed)
    try:
        content = response.read()
        response.raise_for_status()
        return content
    finally:
        response.close()
