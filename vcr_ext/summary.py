"""What one recorded interaction said, reassembled: the result a person wants to see, not the chunks.

:func:`summarize` turns a record of the format into a :class:`Summary`: the streamed
text joined, tool calls with their joined arguments, finish reasons, token usage,
Responses API output items (from ``response.completed``, or the joined deltas of a
stream that never got there), embeddings as counts and dimensions, and errors (a body
with status >= 400, llama-stack's exception records). The native chat APIs of Anthropic
(Messages), Cohere (v2 and v1), Google (Gemini API, Vertex AI) and Amazon Bedrock
(converse, converse-stream, invoke-with-response-stream) read into the same choices,
their ``provider`` named. :func:`usage_by_model` adds up the
tokens of many. Nothing here prints; ``vcr-ext show`` does.

Every record is read by its route and the shape of its payloads (``object``, a Responses
event's ``type``, ollama's ``done``, Gemini's ``candidates``), not only by its
``__type__``: recordings of other tools are plain JSON, and a stream vcr_ext kept as raw
text is parsed as the SSE it is. Odd shapes never raise: what cannot be read is left out of the summary.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from . import sdk_types, sse
from .formats import llamastack

_RESPONSES_ENDINGS = ("response.completed", "response.failed", "response.incomplete")


@dataclass
class ToolCall:
    """A function call the model made: its id, name and arguments (the streamed pieces joined)."""

    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Choice:
    """One choice of a chat or text completion (``n`` > 1 gives several)."""

    index: int
    text: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    plan: str | None = None  # Cohere's ``tool_plan``: what the model says it will do with its tools


@dataclass
class OutputItem:
    """One item of a Responses API output: a message, a function call, a reasoning summary, or other."""

    type: str
    id: str | None = None
    status: str | None = None
    text: str | None = None
    name: str | None = None
    call_id: str | None = None
    arguments: str | None = None
    summary: str | None = None


@dataclass
class Usage:
    """Tokens a call used, whatever the API calls them (prompt/completion, input/output, eval counts)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    # Cohere reports the tokens it bills apart from the tokens the model saw.
    billed_input_tokens: int | None = None
    billed_output_tokens: int | None = None


@dataclass
class Embeddings:
    """How many vectors came back, and their dimensions (``None`` if they differ or cannot be read)."""

    count: int
    dims: int | None


@dataclass
class Summary:
    """One interaction, reassembled. ``kind`` is what the response is (see :func:`summarize`)."""

    test_id: str | None
    method: str | None
    route: str | None
    model: str | None
    response_model: str | None
    status: int
    streaming: bool
    chunks: int | None
    kind: str
    choices: list[Choice] = field(default_factory=list)
    output: list[OutputItem] = field(default_factory=list)
    usage: Usage | None = None
    embeddings: Embeddings | None = None
    models: int | None = None
    error: str | None = None
    skipped: str | None = None
    note: str | None = None
    # Whose native API answered (``anthropic``, ``cohere``, ``google``, ``bedrock``); ``None``
    # for OpenAI's API and the ones shaped like it. ``vcr-ext show`` names fields the way it does.
    provider: str | None = None

    @property
    def text(self) -> str | None:
        """The text answer: the first choice's text, or a Responses call's message texts joined."""
        if self.choices:
            return self.choices[0].text
        texts = [item.text for item in self.output if item.type == "message" and item.text is not None]
        return "".join(texts) if texts else None

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON, every key always present (``null`` when it does not apply)."""
        data = asdict(self)
        data["text"] = self.text
        return data


# -- reading payloads ----------------------------------------------------------------------


def payload_of(value: Any) -> Any:
    """The JSON a stored value carries: the payload of an envelope or of an SSE event, or the value."""
    u = sdk_types.unwrap(value)
    if u.type_name == sdk_types.SSE_EVENT:
        data = u.payload.get("data") if isinstance(u.payload, dict) else None
        return payload_of(data)
    return u.payload


def _raw_text(value: Any) -> str | None:
    """The text of a ``vcr_ext.raw.Text`` / ``Base64`` body, else ``None``."""
    u = sdk_types.unwrap(value)
    if u.type_name == sdk_types.RAW_TEXT and isinstance(u.payload, str):
        return u.payload
    if u.type_name == sdk_types.RAW_BASE64 and isinstance(u.payload, str):
        try:
            return base64.b64decode(u.payload).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
    return None


def _events_of_text(text: str) -> list[Any] | None:
    """The JSON payloads of a stream stored whole as text (SSE, or NDJSON), or ``None`` if it is neither."""
    events = sse.decode_sse(text.lstrip("\ufeff"))
    payloads: list[Any] = []
    if events and any(ev.data is not None for ev in events):
        for ev in events:
            if ev.data is None or ev.data.startswith("[DONE]"):
                continue
            try:
                payloads.append(json.loads(ev.data))
            except ValueError:
                payloads.append(ev.data)
        return payloads
    ndjson = sse.decode_ndjson(text)
    return ndjson if ndjson and len(ndjson) > 1 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _usage(data: Any) -> Usage | None:
    """Usage in any API's words: chat/completions/embeddings, Responses, or ollama's eval counts."""
    d = _dict(data)
    if not d:
        return None
    if "input_tokens" in d or "output_tokens" in d:
        inp, out = _int(d.get("input_tokens")), _int(d.get("output_tokens"))
    else:
        inp, out = _int(d.get("prompt_tokens")), _int(d.get("completion_tokens"))
    total = _int(d.get("total_tokens"))
    if total is None and inp is not None:
        total = inp + (out or 0)
    if inp is None and out is None and total is None:
        return None
    return Usage(inp, out, total)


def _ollama_usage(data: dict[str, Any]) -> Usage | None:
    inp, out = _int(data.get("prompt_eval_count")), _int(data.get("eval_count"))
    if inp is None and out is None:
        return None
    return Usage(inp, out, (inp or 0) + (out or 0))


def _error_text(body: Any) -> str:
    """The message of an error body (OpenAI's ``{"error": {"message"}}``, ollama's ``{"error": "..."}``)."""
    raw = _raw_text(body)
    if raw is not None:
        return raw.strip() or "(empty body)"
    payload = payload_of(body)
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, str):
            return error
        if isinstance(error, dict):
            message = _str(error.get("message"))
            kind = _str(error.get("type")) or _str(error.get("code"))
            if message:
                return f"{kind}: {message}" if kind else message
        message = _str(payload.get("message")) or _str(payload.get("detail"))
        if message:
            return message
    if payload is None:
        return "(empty body)"
    return sse.dumps_compact(payload)


# -- chat and text completions --------------------------------------------------------------


def _choice(choices: dict[int, Choice], index: Any) -> Choice:
    i = _int(index) or 0
    if i not in choices:
        choices[i] = Choice(i)
    return choices[i]


def _append(current: str | None, piece: Any) -> str | None:
    return current if not isinstance(piece, str) else (current or "") + piece


def _tool_call_piece(calls: dict[int, ToolCall], delta: dict[str, Any], position: int) -> None:
    """Add one streamed tool-call delta: the id, type and name are sent once, the arguments in pieces."""
    i = _int(delta.get("index"))
    call = calls.setdefault(position if i is None else i, ToolCall())
    call.id = call.id or _str(delta.get("id"))
    call.type = call.type or _str(delta.get("type"))
    function = _dict(delta.get("function"))
    call.name = call.name or _str(function.get("name"))
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        call.arguments += arguments
    elif arguments is not None:
        call.arguments += json.dumps(arguments)  # ollama sends the arguments as an object


def _chunk_choices(payloads: Iterable[dict[str, Any]]) -> tuple[list[Choice], Usage | None, str | None]:
    """The choices of a chat or completion stream, each one's pieces joined in order."""
    choices: dict[int, Choice] = {}
    calls: dict[int, dict[int, ToolCall]] = {}
    usage: Usage | None = None
    model: str | None = None
    for data in payloads:
        model = model or _str(data.get("model"))
        usage = _usage(data.get("usage")) or usage
        for raw in _list(data.get("choices")):
            c = _dict(raw)
            choice = _choice(choices, c.get("index"))
            delta = _dict(c.get("delta"))
            if "text" in c:  # a text completion chunk
                choice.text = _append(choice.text, c.get("text"))
            choice.text = _append(choice.text, delta.get("content"))
            choice.refusal = _append(choice.refusal, delta.get("refusal"))
            # Reasoning models served by vLLM, DeepSeek and others stream their thinking apart.
            choice.reasoning = _append(choice.reasoning, delta.get("reasoning_content"))
            choice.reasoning = _append(choice.reasoning, delta.get("reasoning"))
            for position, piece in enumerate(_list(delta.get("tool_calls"))):
                _tool_call_piece(calls.setdefault(choice.index, {}), _dict(piece), position)
            choice.finish_reason = _str(c.get("finish_reason")) or choice.finish_reason
    for index, by_position in calls.items():
        choices[index].tool_calls = [by_position[k] for k in sorted(by_position)]
    return [choices[k] for k in sorted(choices)], usage, model


def _message_choices(data: dict[str, Any]) -> list[Choice]:
    """The choices of a whole (non-streamed) chat or text completion."""
    out: list[Choice] = []
    for position, raw in enumerate(_list(data.get("choices"))):
        c = _dict(raw)
        choice = Choice(_int(c.get("index")) or position, finish_reason=_str(c.get("finish_reason")))
        if "text" in c:
            choice.text = _str(c.get("text"))
        message = _dict(c.get("message"))
        if message:
            choice.text = _str(message.get("content"))
            choice.refusal = _str(message.get("refusal"))
            choice.reasoning = _str(message.get("reasoning_content")) or _str(message.get("reasoning"))
            calls: dict[int, ToolCall] = {}
            for position, call in enumerate(_list(message.get("tool_calls"))):
                # Whole tool calls carry no index: each is one piece at its position.
                _tool_call_piece(calls, {**_dict(call), "index": position}, position)
            choice.tool_calls = [calls[k] for k in sorted(calls)]
        out.append(choice)
    return out


# -- the Responses API ------------------------------------------------------------------------


def _output_items(output: Any) -> list[OutputItem]:
    """The items of a ``Response.output``."""
    items: list[OutputItem] = []
    for raw in _list(output):
        d = _dict(raw)
        kind = _str(d.get("type")) or "?"
        item = OutputItem(kind, id=_str(d.get("id")), status=_str(d.get("status")))
        if kind == "message":
            parts = [_dict(p) for p in _list(d.get("content"))]
            texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
            refusals = [p["refusal"] for p in parts if isinstance(p.get("refusal"), str)]
            item.text = "".join(texts) if texts or not refusals else None
            if refusals:
                item.summary = "refusal: " + "".join(refusals)
        elif kind in ("function_call", "custom_tool_call"):
            item.name, item.call_id = _str(d.get("name")), _str(d.get("call_id"))
            item.arguments = _str(d.get("arguments")) or _str(d.get("input"))
        elif kind == "reasoning":
            summary = [_str(_dict(s).get("text")) or "" for s in _list(d.get("summary"))]
            item.summary = "\n".join(summary) if summary else None
        items.append(item)
    return items


def _responses_stream(events: list[dict[str, Any]]) -> tuple[list[OutputItem], dict[str, Any], str | None]:
    """Output items, the last ``response`` object and an error of a Responses stream.

    The items come from the response a ``response.completed`` (or failed/incomplete)
    event carries when it has output; else from the stream's own events, as a client
    accumulates them: ``output_item.added/done`` for each item, the text, argument and
    reasoning-summary deltas joined by output index.
    """
    response: dict[str, Any] = {}
    ended_with: dict[str, Any] | None = None
    error: str | None = None
    items: dict[int, OutputItem] = {}
    texts: dict[int, dict[int, str]] = {}
    summaries: dict[int, dict[int, str]] = {}
    done_text: dict[int, bool] = {}
    for ev in events:
        kind = _str(ev.get("type")) or ""
        if isinstance(ev.get("response"), dict):
            response = ev["response"]
            if kind in _RESPONSES_ENDINGS:
                ended_with = response
        index = _int(ev.get("output_index"))
        if kind in ("response.output_item.added", "response.output_item.done") and index is not None:
            built = _output_items([ev.get("item")])
            if built:
                old = items.get(index)
                new = built[0]
                if old is not None and kind == "response.output_item.added":
                    continue
                if old is not None and new.text is None:
                    new.text = old.text
                if old is not None and new.arguments in (None, "") and old.arguments:
                    new.arguments = old.arguments
                items[index] = new
                if kind == "response.output_item.done" and new.type == "message":
                    done_text[index] = True
        elif kind == "response.output_text.delta" and index is not None:
            content = _int(ev.get("content_index")) or 0
            piece = _str(ev.get("delta")) or ""
            texts.setdefault(index, {})[content] = texts.get(index, {}).get(content, "") + piece
        elif kind == "response.function_call_arguments.delta" and index is not None:
            item = items.setdefault(index, OutputItem("function_call", id=_str(ev.get("item_id"))))
            item.arguments = (item.arguments or "") + (_str(ev.get("delta")) or "")
        elif kind == "response.reasoning_summary_text.delta" and index is not None:
            part = _int(ev.get("summary_index")) or 0
            piece = _str(ev.get("delta")) or ""
            summaries.setdefault(index, {})[part] = summaries.get(index, {}).get(part, "") + piece
        elif kind == "error":
            error = _error_text(ev)
    for index, by_part in texts.items():
        item = items.setdefault(index, OutputItem("message"))
        if not done_text.get(index) or item.text is None:
            item.text = "".join(by_part[k] for k in sorted(by_part))
    for index, by_part in summaries.items():
        item = items.setdefault(index, OutputItem("reasoning"))
        if not item.summary:
            item.summary = "\n".join(by_part[k] for k in sorted(by_part))
    if ended_with is not None and _list(ended_with.get("output")):
        out = _output_items(ended_with.get("output"))
    else:
        out = [items[k] for k in sorted(items)]
    return out, response, error


# -- embeddings, models, ollama ---------------------------------------------------------------


def _vector_dims(vector: Any) -> int | None:
    if isinstance(vector, list):
        return len(vector)
    if isinstance(vector, str):  # encoding_format="base64": little-endian float32s
        try:
            return len(base64.b64decode(vector)) // 4
        except (binascii.Error, ValueError):
            return None
    return None


def _embeddings(vectors: list[Any]) -> Embeddings:
    dims = {_vector_dims(v) for v in vectors}
    return Embeddings(len(vectors), dims.pop() if len(dims) == 1 else None)


# -- other providers' native APIs -------------------------------------------------------------
#
# Each reader below takes the payloads of one body (one for a whole body, one per event of a
# stream) and fills a Choice the way that provider's SDK accumulates a stream. They read
# shapes only, so a recording stored with generic types (the SDK not installed, raw SSE
# text) reads the same as a typed one.

_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)
_COHERE_V2_EVENTS = frozenset(
    {
        "message-start",
        "content-start",
        "content-delta",
        "content-end",
        "tool-plan-delta",
        "tool-call-start",
        "tool-call-delta",
        "tool-call-end",
        "citation-start",
        "citation-end",
        "message-end",
        "debug",
    }
)
# Anthropic content blocks that are calls (the rest are text, thinking or tool results).
_ANTHROPIC_CALLS = ("tool_use", "server_tool_use", "mcp_tool_use")
_BEDROCK_STREAMS = ("converse-stream", "invoke-with-response-stream")
_BEDROCK_ACTIONS = ("converse", "invoke", *_BEDROCK_STREAMS)


def _model_in_route(route: str) -> str | None:
    """The model Gemini, Vertex AI and Bedrock name in the path: ``models/<m>:call``, ``/model/<id>/call``."""
    if _bedrock_action(route) is not None:
        return unquote(route.split("/")[2])
    _, found, rest = route.rpartition("/models/")
    model, colon, _ = rest.partition(":")
    return model if found and colon and model else None


def _bedrock_action(route: str) -> str | None:
    """``converse``, ``converse-stream``, ``invoke``... of a ``/model/<id>/<action>`` route, else ``None``."""
    parts = route.split("/")
    if len(parts) == 4 and parts[1] == "model" and parts[3] in _BEDROCK_ACTIONS:
        return parts[3]
    return None


def _provider(route: str, dicts: list[dict[str, Any]]) -> str | None:
    """Whose native API these payloads are, by the route first and then by their shape."""
    if _bedrock_action(route) is not None:
        return "bedrock"
    if route.endswith((":generateContent", ":streamGenerateContent")):
        return "google"
    if route in ("/v2/chat", "/v1/chat"):
        return "cohere"
    kinds = {_str(d.get("type")) for d in dicts}
    if kinds & _ANTHROPIC_EVENTS or any(
        d.get("type") == "message" and isinstance(d.get("content"), list) and "stop_reason" in d
        for d in dicts
    ):
        return "anthropic"
    if kinds & _COHERE_V2_EVENTS or any("event_type" in d for d in dicts):
        return "cohere"
    if any(isinstance(d.get("candidates"), list) or "usageMetadata" in d for d in dicts):
        return "google"
    return None


def _arguments(value: Any) -> str:
    """Tool arguments as text: as sent when they are text, else their JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _marker(current: str | None, what: str) -> str:
    """A stand-in for reasoning whose text is encrypted, on its own line."""
    return ("\n" if current else "") + f"[{what}]"


def _anthropic_block(
    choice: Choice, calls: dict[int, ToolCall], index: int, block: dict[str, Any]
) -> str | None:
    """A whole content block of a ``Message`` (or the opening of one); its type if it is none of these."""
    kind = _str(block.get("type"))
    if kind == "text":
        choice.text = _append(choice.text, block.get("text"))
    elif kind == "thinking":
        choice.reasoning = _append(choice.reasoning, block.get("thinking"))
    elif kind == "redacted_thinking":
        # Its data is encrypted: say it is there rather than print the blob.
        choice.reasoning = _append(choice.reasoning, _marker(choice.reasoning, "redacted_thinking"))
    elif kind in _ANTHROPIC_CALLS:
        call = ToolCall(_str(block.get("id")), kind, _str(block.get("name")))
        if "input" in block:
            call.arguments = _arguments(block.get("input"))
        calls[index] = call
    else:
        return kind or "?"  # a server tool's result, a container upload...: named, not shown
    return None


def _fill_anthropic(s: Summary, dicts: list[dict[str, Any]]) -> None:
    """Anthropic Messages: a whole ``Message``, or its stream joined as the SDK's accumulator does."""
    choice = Choice(0)
    calls: dict[int, ToolCall] = {}
    streamed_input: dict[int, str] = {}
    usage: dict[str, Any] = {}
    others: list[str | None] = []
    for d in dicts:
        kind = d.get("type")
        if kind == "message":
            s.response_model = _str(d.get("model"))
            for index, block in enumerate(_list(d.get("content"))):
                others.append(_anthropic_block(choice, calls, index, _dict(block)))
            choice.finish_reason = _str(d.get("stop_reason"))
            usage.update(_dict(d.get("usage")))
        elif kind == "message_start":
            message = _dict(d.get("message"))
            s.response_model = _str(message.get("model"))
            usage.update(_dict(message.get("usage")))
        elif kind == "content_block_start":
            block = _dict(d.get("content_block"))
            others.append(_anthropic_block(choice, calls, _int(d.get("index")) or 0, block))
        elif kind == "content_block_delta":
            index, delta = _int(d.get("index")) or 0, _dict(d.get("delta"))
            choice.text = _append(choice.text, delta.get("text"))
            choice.reasoning = _append(choice.reasoning, delta.get("thinking"))
            if isinstance(delta.get("partial_json"), str):
                streamed_input[index] = streamed_input.get(index, "") + delta["partial_json"]
        elif kind == "message_delta":
            choice.finish_reason = _str(_dict(d.get("delta")).get("stop_reason")) or choice.finish_reason
            # The closing usage counts the output; newer models repeat the input counts in it.
            usage.update({k: v for k, v in _dict(d.get("usage")).items() if v is not None})
        elif kind == "error":
            s.error = _error_text(d)
    for index, text in streamed_input.items():
        if index in calls:
            calls[index].arguments = text  # the start's ``input: {}`` is replaced by the streamed JSON
    choice.tool_calls = [calls[k] for k in sorted(calls)]
    s.choices = [choice]
    s.usage = _usage(usage)
    named = [kind for kind in others if kind is not None]
    if named:
        text = "other content blocks: " + ", ".join(named)
        s.note = f"{s.note}; {text}" if s.note else text  # a raw stream's note stays


def _cohere_usage(data: Any) -> Usage | None:
    """Cohere's ``usage`` (v2) or ``meta`` (v1): the tokens the model saw, and the billed ones."""
    d = _dict(data)
    tokens, billed = _dict(d.get("tokens")), _dict(d.get("billed_units"))
    seen = tokens or billed
    if not seen:
        return None
    usage = _usage(seen) or Usage()
    usage.billed_input_tokens = _int(billed.get("input_tokens"))
    usage.billed_output_tokens = _int(billed.get("output_tokens"))
    return usage


def _cohere_v2_message(choice: Choice, calls: dict[int, ToolCall], message: dict[str, Any]) -> None:
    for part in _list(message.get("content")):
        p = _dict(part)
        choice.text = _append(choice.text, p.get("text"))
        choice.reasoning = _append(choice.reasoning, p.get("thinking"))
    choice.plan = _append(choice.plan, message.get("tool_plan") or None)
    for position, call in enumerate(_list(message.get("tool_calls"))):
        _tool_call_piece(calls, {**_dict(call), "index": position}, position)


def _fill_cohere(s: Summary, dicts: list[dict[str, Any]]) -> None:
    """Cohere chat: v2 (a whole response or its SSE events) and v1 (a whole response or NDJSON events)."""
    choice = Choice(0)
    calls: dict[int, ToolCall] = {}
    v1_calls: list[Any] = []
    for d in dicts:
        kind, event = d.get("type"), d.get("event_type")
        message = _dict(_dict(d.get("delta")).get("message"))
        if "message" in d and kind is None and event is None:  # a whole v2 response
            _cohere_v2_message(choice, calls, _dict(d.get("message")))
            choice.finish_reason = _str(d.get("finish_reason"))
            s.usage = _cohere_usage(d.get("usage"))
        elif kind == "content-delta":
            content = _dict(message.get("content"))
            choice.text = _append(choice.text, content.get("text"))
            choice.reasoning = _append(choice.reasoning, content.get("thinking"))
        elif kind == "tool-plan-delta":
            choice.plan = _append(choice.plan, message.get("tool_plan"))
        elif kind in ("tool-call-start", "tool-call-delta"):
            # One call per event (not a list): its id, type and name come first, arguments in pieces.
            _tool_call_piece(calls, {**_dict(message.get("tool_calls")), "index": d.get("index")}, len(calls))
        elif kind == "message-end":
            delta = _dict(d.get("delta"))
            choice.finish_reason = _str(delta.get("finish_reason"))
            s.usage = _cohere_usage(delta.get("usage"))
        elif event == "text-generation":
            choice.text = _append(choice.text, d.get("text"))
        elif event == "tool-calls-generation":
            v1_calls = _list(d.get("tool_calls"))
        elif event == "stream-end":
            choice.finish_reason = _str(d.get("finish_reason"))
            response = _dict(d.get("response"))
            s.usage = _cohere_usage(response.get("meta"))
            v1_calls = _list(response.get("tool_calls")) or v1_calls
        elif event is None and kind is None and isinstance(d.get("text"), str):  # a whole v1 response
            choice.text = d["text"]
            choice.finish_reason = _str(d.get("finish_reason"))
            s.usage = _cohere_usage(d.get("meta"))
            v1_calls = _list(d.get("tool_calls"))
    for raw in v1_calls:  # v1 calls come whole: a name and a ``parameters`` object
        c = _dict(raw)
        calls[len(calls)] = ToolCall(name=_str(c.get("name")), arguments=_arguments(c.get("parameters", {})))
    choice.tool_calls = [calls[k] for k in sorted(calls)]
    s.choices = [choice]


def _fill_google(s: Summary, dicts: list[dict[str, Any]]) -> None:
    """Gemini API and Vertex AI ``GenerateContentResponse``: whole, or chunks joined per candidate."""
    choices: dict[int, Choice] = {}
    calls: dict[int, list[ToolCall]] = {}
    for d in dicts:
        s.response_model = _str(d.get("modelVersion")) or s.response_model
        metadata = _dict(d.get("usageMetadata"))
        counts = [
            _int(metadata.get(k)) for k in ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")
        ]
        if any(c is not None for c in counts):  # each chunk has the counts so far: the last holds the totals
            s.usage = Usage(*counts)
        feedback = _dict(d.get("promptFeedback"))
        blocked = _str(feedback.get("blockReason"))
        if blocked:  # no candidates then: the reason is the whole answer
            why = _str(feedback.get("blockReasonMessage"))
            s.error = f"prompt blocked: {blocked}" + (f": {why}" if why else "")
        for position, raw in enumerate(_list(d.get("candidates"))):
            c = _dict(raw)
            choice = _choice(choices, c.get("index", position))
            for part in _list(_dict(c.get("content")).get("parts")):
                p = _dict(part)
                if p.get("thought") is True:  # a thought summary, not the answer
                    choice.reasoning = _append(choice.reasoning, p.get("text"))
                else:
                    choice.text = _append(choice.text, p.get("text"))
                function = _dict(p.get("functionCall"))
                if function:  # sent whole, never in pieces
                    call = ToolCall(_str(function.get("id")), "functionCall", _str(function.get("name")))
                    call.arguments = _arguments(function.get("args", {}))
                    calls.setdefault(choice.index, []).append(call)
            choice.finish_reason = _str(c.get("finishReason")) or choice.finish_reason
            why = _str(c.get("finishMessage"))  # why a filter stopped it, when one did
            s.note = f"finishMessage: {why}" if why else s.note
    for index, found in calls.items():
        choices[index].tool_calls = found
    s.choices = [choices[k] for k in sorted(choices)]


def _bedrock_usage(data: Any) -> Usage | None:
    d = _dict(data)
    inp, out, total = _int(d.get("inputTokens")), _int(d.get("outputTokens")), _int(d.get("totalTokens"))
    return None if inp is None and out is None and total is None else Usage(inp, out, total)


def _bedrock_content(choice: Choice, calls: dict[int, ToolCall], index: int, block: dict[str, Any]) -> None:
    """A whole ``ContentBlock`` of a converse ``output.message``."""
    choice.text = _append(choice.text, block.get("text"))
    reasoning = _dict(block.get("reasoningContent"))
    choice.reasoning = _append(choice.reasoning, _dict(reasoning.get("reasoningText")).get("text"))
    if "redactedContent" in reasoning:
        choice.reasoning = _append(choice.reasoning, _marker(choice.reasoning, "redactedContent"))
    use = _dict(block.get("toolUse"))
    if use:
        call = ToolCall(_str(use.get("toolUseId")), "toolUse", _str(use.get("name")))
        call.arguments = _arguments(use.get("input", {}))
        calls[index] = call


def _bedrock_event(item: Any) -> tuple[str | None, Any]:
    """(exception name or ``None``, payload) of one stored event-stream item, however it is stored.

    Typed items name their botocore shape (``...ContentBlockDeltaEvent``, ``...ThrottlingException``);
    an explicit ``vcr_ext.eventstream.Frame`` carries its headers; a frame read from raw
    bytes is ``{"headers": {...}, "payload": ...}`` too. Events are told apart by the
    payload's keys, which are the same in every form.
    """
    u = sdk_types.unwrap(item)
    read_raw = u.type_name is None and isinstance(u.payload, dict) and "headers" in u.payload
    if u.type_name == _FRAME or read_raw:
        frame = _dict(u.payload)
        raw_headers = frame.get("headers")
        headers = (
            {str(h[0]): h[-1] for h in raw_headers if isinstance(h, list) and h}
            if isinstance(raw_headers, list)
            else _dict(raw_headers)
        )
        exception = _str(headers.get(":exception-type"))
        is_exception = headers.get(":message-type") == "exception"
        return (exception if is_exception else None), payload_of(frame.get("payload"))
    name = (u.type_name or "").rsplit(".", 1)[-1]
    return (name if name.endswith("Exception") else None), payload_of(item)


def _fill_bedrock(s: Summary, route: str, items: list[Any]) -> None:
    """Bedrock Runtime: converse JSON, converse-stream events, invoke-with-response-stream chunks."""
    choice = Choice(0)
    calls: dict[int, ToolCall] = {}
    inner: list[Any] = []  # the model's own JSON, from invoke-with-response-stream chunks
    for item in items:
        exception, d = _bedrock_event(item)
        d = _dict(d)
        if exception is not None:
            s.error = f"{exception}: {_str(d.get('message')) or _str(d.get('Message')) or ''}".rstrip(": ")
            continue
        if "bytes" in d:
            inner.append(payload_of(d["bytes"]))
        message = _dict(_dict(d.get("output")).get("message"))
        for index, block in enumerate(_list(message.get("content"))):
            _bedrock_content(choice, calls, index, _dict(block))
        index = _int(d.get("contentBlockIndex")) or 0
        use = _dict(_dict(d.get("start")).get("toolUse"))
        if use:
            calls[index] = ToolCall(_str(use.get("toolUseId")), "toolUse", _str(use.get("name")))
        delta = _dict(d.get("delta"))
        choice.text = _append(choice.text, delta.get("text"))
        choice.reasoning = _append(choice.reasoning, _dict(delta.get("reasoningContent")).get("text"))
        piece = _dict(delta.get("toolUse")).get("input")
        if isinstance(piece, str):
            calls.setdefault(index, ToolCall(type="toolUse")).arguments += piece
        choice.finish_reason = _str(d.get("stopReason")) or choice.finish_reason
        s.usage = _bedrock_usage(d.get("usage")) or s.usage
    if inner:
        dicts = [p for p in inner if isinstance(p, dict)]
        # An Anthropic model's own stream, as the anthropic SDK's AnthropicBedrock client reads it.
        # ``provider`` names whose payloads they are (the route still says Bedrock).
        if _provider("", dicts) == "anthropic":
            s.provider = "anthropic"
            _fill_anthropic(s, dicts)
            return
        s.note = _preview(inner if len(inner) > 1 else inner[0])
    choice.tool_calls = [calls[k] for k in sorted(calls)]
    if choice.text is not None or choice.tool_calls or choice.finish_reason or choice.reasoning:
        s.choices = [choice]


_FRAME = "vcr_ext.eventstream.Frame"  # how an event-stream frame is stored with its headers
_READERS = {"anthropic": _fill_anthropic, "cohere": _fill_cohere, "google": _fill_google}


def _summarize_bedrock(s: Summary, body: Any) -> None:
    """A Bedrock Runtime body: JSON, stored event-stream items, or event-stream bytes kept whole."""
    s.kind, s.provider = "chat", "bedrock"
    s.model = s.model or _model_in_route(s.route or "")
    u = sdk_types.unwrap(body)
    if u.type_name in sdk_types.RAW_TYPES and isinstance(u.payload, str):
        try:
            raw = base64.b64decode(u.payload) if u.type_name == sdk_types.RAW_BASE64 else u.payload.encode()
        except (binascii.Error, ValueError):
            raw = b""
        frames = _event_stream(raw) if raw else None
        if not frames:
            s.kind = "raw"
            s.note = f"event stream of {len(raw)} bytes (its frames cannot be read: botocore is needed)"
            return
        s.streaming, s.chunks = True, len(frames)
        s.note = f"event stream of {len(raw)} bytes kept whole (read frame by frame with botocore)"
        _fill_bedrock(s, s.route or "", list(frames))
        return
    items = body if isinstance(body, list) else [body]
    dicts = [p for p in map(payload_of, items) if isinstance(p, dict)]
    if _provider("", dicts) == "anthropic":  # invoke of an Anthropic model: its own Message
        s.provider = "anthropic"
        _fill_anthropic(s, dicts)
        return
    _fill_bedrock(s, s.route or "", items)


def _event_stream(raw: bytes) -> list[dict[str, Any]] | None:
    """The frames of an AWS event-stream body, read with botocore's own parser; ``None`` if it cannot.

    A recording made before event streams were stored per frame keeps the body as bytes.
    """
    try:
        from botocore.eventstream import EventStreamBuffer, ParserError
    except ImportError:
        return None
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    frames: list[dict[str, Any]] = []
    try:
        for message in buffer:
            payload: Any = bytes(message.payload)
            try:
                payload = json.loads(payload)
            except ValueError:
                payload = payload.decode("utf-8", "replace")
            if isinstance(payload, dict) and isinstance(payload.get("bytes"), str):
                # invoke-with-response-stream: the model's JSON, base64-encoded.
                with contextlib.suppress(binascii.Error, ValueError):
                    payload = {**payload, "bytes": json.loads(base64.b64decode(payload["bytes"]))}
            frames.append({"headers": dict(message.headers), "payload": payload})
    except (ParserError, ValueError, KeyError):
        return None
    return frames


# -- one record -------------------------------------------------------------------------------


def _request_parts(rec: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Method, route and requested model as sent on the wire (llama-stack's POSTs read as GETs)."""
    request = _dict(rec.get("request"))
    method = _str(request.get("method"))
    route = _str(request.get("endpoint"))
    if route is None and isinstance(request.get("url"), str):
        route = urlsplit(request["url"]).path
    body = llamastack.recorded_body(request)
    if method and route:
        method, route, body = llamastack.wire_request(method, route, body)
    model = _str(request.get("model")) or _str(_dict(body).get("model"))
    return method, route, model


def summarize(rec: Any, *, skipped: str | None = None) -> Summary:
    """What one record says, reassembled. ``skipped``: why the loader leaves it out of replay.

    ``kind`` is one of ``chat`` (also the chats of Anthropic Messages, Cohere, Gemini and
    Bedrock, named by ``provider``), ``completion``, ``responses``, ``embeddings``, ``models``,
    ``ollama``, ``error`` (status >= 400 or a recorded exception), ``tool`` (a
    llama-stack tool invocation), ``raw`` (a body that is not JSON) or ``other``.
    """
    rec = rec if isinstance(rec, dict) else {}
    method, route, model = _request_parts(rec)
    response = _dict(rec.get("response"))
    status = _int(response.get("status")) or 200
    streaming = response.get("is_streaming") is True
    body = response.get("body")
    s = Summary(
        test_id=_str(rec.get("test_id")),
        method=method,
        route=route,
        model=model,
        response_model=None,
        status=status,
        streaming=streaming,
        chunks=len(body) if streaming and isinstance(body, list) else None,
        kind="other",
        skipped=skipped,
    )
    request = _dict(rec.get("request"))
    if "tool_name" in request and not method:
        s.kind = "tool"
        s.route = f"tool {request.get('provider', '?')}.{request.get('tool_name', '?')}"
        s.note = _preview(payload_of(body))
        return s
    if response.get("is_exception"):
        # llama-stack's later recorder: a failed call, with the chunks it got before failing.
        data = _dict(response.get("exception_data"))
        s.status = _int(data.get("status_code")) or status
        kind = _str(data.get("type")) or "Exception"
        s.error = f"{kind}: {response.get('exception_message') or data.get('message') or ''}".rstrip(": ")
        if streaming and isinstance(body, list) and body:
            _fill(s, route, [payload_of(v) for v in body], streamed=True)
        s.kind = "error"
        return s
    if status >= 400:
        s.kind = "error"
        s.error = _error_text(body)
        return s
    if _bedrock_action(route or "") is not None:
        _summarize_bedrock(s, body)
        return s
    raw = _raw_text(body)
    if raw is not None:
        payloads = _events_of_text(raw)
        if payloads is None:
            s.kind = "raw"
            s.note = f"raw body, {len(raw)} characters: {_preview(raw)}"
            return s
        s.note = "stream stored as raw text (reassembled from its events)"
        s.chunks = len(payloads)
        _fill(s, route, payloads, streamed=True)
        return s
    if isinstance(body, list):
        _fill(s, route, [payload_of(v) for v in body], streamed=streaming)
    else:
        _fill(s, route, [payload_of(body)], streamed=False)
    return s


def _preview(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else sse.dumps_compact(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fill(s: Summary, route: str | None, payloads: list[Any], *, streamed: bool) -> None:
    """Fill ``s`` from the payloads of a body (one for a whole body, one per chunk for a stream)."""
    dicts = [p for p in payloads if isinstance(p, dict)]
    errors = [p for p in dicts if p.get("error") and "choices" not in p and "type" not in p]
    first = dicts[0] if dicts else {}
    route = route or ""
    provider = _provider(route, dicts)
    if provider in _READERS:
        s.kind, s.provider = "chat", provider
        s.model = s.model or _model_in_route(route)
        _READERS[provider](s, dicts)
    elif any(_str(p.get("type")) and str(p["type"]).startswith("response.") for p in dicts) or (
        route.startswith("/v1/responses") and streamed
    ):
        s.kind = "responses"
        s.output, response, error = _responses_stream(dicts)
        s.response_model = _str(response.get("model"))
        s.usage = _usage(response.get("usage"))
        s.error = error or _response_error(response)
    elif first.get("object") == "response":
        s.kind = "responses"
        s.output = _output_items(first.get("output"))
        s.response_model = _str(first.get("model"))
        s.usage = _usage(first.get("usage"))
        s.error = _response_error(first)
    elif any("choices" in p for p in dicts):
        chunks = [p for p in dicts if "choices" in p or "usage" in p]
        objects = {p.get("object") for p in chunks}
        is_text = "text_completion" in objects or (route.endswith("/completions") and "chat" not in route)
        s.kind = "completion" if is_text else "chat"
        if streamed or "chat.completion.chunk" in objects:
            s.choices, s.usage, s.response_model = _chunk_choices(chunks)
        else:
            s.choices = _message_choices(first)
            s.usage = _usage(first.get("usage"))
            s.response_model = _str(first.get("model"))
    elif first.get("object") == "list" and any("embedding" in _dict(d) for d in _list(first.get("data"))):
        s.kind = "embeddings"
        s.embeddings = _embeddings([_dict(d).get("embedding") for d in _list(first.get("data"))])
        s.usage = _usage(first.get("usage"))
        s.response_model = _str(first.get("model"))
    elif dicts and all(p.get("object") == "model" for p in dicts):
        s.kind = "models"
        s.models = len(dicts)
    elif first.get("object") == "list" and all(
        _dict(d).get("object") == "model" for d in _list(first.get("data"))
    ):
        s.kind = "models"
        s.models = len(_list(first.get("data")))
    elif route.startswith("/api/") or any(
        "done" in p or "embeddings" in p or "embedding" in p for p in dicts
    ):
        _fill_ollama(s, dicts)
    elif payloads:
        s.note = _preview(payloads[0] if len(payloads) == 1 else payloads)
    if errors and s.error is None:
        s.error = _error_text(errors[-1])  # a stream that failed midway ends with the error
        s.kind = "error" if s.kind == "other" else s.kind


def _response_error(response: Mapping[str, Any]) -> str | None:
    error = _dict(response.get("error"))
    if error:
        return _error_text({"error": error})
    details = _dict(response.get("incomplete_details"))
    if response.get("status") == "incomplete":
        return f"incomplete: {details.get('reason') or 'no reason given'}"
    return None


def _fill_ollama(s: Summary, dicts: list[dict[str, Any]]) -> None:
    """Ollama's native API: ``/api/generate`` and ``/api/chat`` (streamed as NDJSON), embed, ps, tags."""
    s.kind = "ollama"
    if not dicts:
        return
    first, last = dicts[0], dicts[-1]
    s.response_model = _str(first.get("model"))
    if "embeddings" in first:
        s.embeddings = _embeddings(_list(first.get("embeddings")))
        s.kind = "embeddings"
        return
    if "embedding" in first:
        s.embeddings = _embeddings([first.get("embedding")])
        s.kind = "embeddings"
        return
    if "models" in first:
        s.models = len(_list(first.get("models")))
        s.kind = "models"
        return
    choice = Choice(0)
    thinking: str | None = None
    calls: dict[int, ToolCall] = {}
    for d in dicts:
        message = _dict(d.get("message"))
        choice.text = _append(choice.text, d.get("response"))
        choice.text = _append(choice.text, message.get("content"))
        thinking = _append(thinking, d.get("thinking"))
        thinking = _append(thinking, message.get("thinking"))
        for call in _list(message.get("tool_calls")):
            _tool_call_piece(calls, {**_dict(call), "index": len(calls)}, len(calls))
    choice.reasoning = thinking or None
    choice.tool_calls = [calls[k] for k in sorted(calls)]
    choice.finish_reason = _str(last.get("done_reason")) or ("stop" if last.get("done") is True else None)
    s.choices = [choice]
    s.usage = _ollama_usage(last)


# -- many records -----------------------------------------------------------------------------


@dataclass
class ModelUsage:
    """Tokens of every call to one model; ``without_usage``: calls whose response reported none."""

    model: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    without_usage: int = 0


def usage_by_model(summaries: Iterable[Summary]) -> list[ModelUsage]:
    """Tokens per requested model (the response's model when the request names none), by model name.

    Records the loader skips (tool invocations, client-side exceptions) are left out:
    no tokens were billed for them by any API.
    """
    totals: dict[str, ModelUsage] = {}
    for s in summaries:
        if s.kind == "tool" or (s.skipped is not None and s.usage is None):
            continue
        name = s.model or s.response_model or "(unknown model)"
        m = totals.setdefault(name, ModelUsage(name))
        m.requests += 1
        if s.usage is None:
            m.without_usage += 1
            continue
        m.input_tokens += s.usage.input_tokens or 0
        m.output_tokens += s.usage.output_tokens or 0
        m.total_tokens += s.usage.total_tokens or 0
    return [totals[k] for k in sorted(totals)]
