"""Deterministic OpenAI-shaped payloads for :mod:`vcr_ext.demo.server`.

Every value here is a pure function of the request, so that recording the same test twice
yields the same bytes. Two digests are used: one over the raw request (ids, timestamps,
obfuscation padding: these differ between a streamed and a non-streamed call, as on the real
API) and one over the request with its streaming switches removed (text, tool arguments,
logprobs: these must agree between ``stream=True`` and ``stream=False`` so that tests can
compare the two).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import string
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

JsonObject = dict[str, Any]
_T = TypeVar("_T")

_ALNUM = string.ascii_letters + string.digits
_SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_JSON_CONTENT_TYPE = "application/json"
# Recent enough to look current, fixed so that echoed model names never change.
_MODEL_SNAPSHOT = "2024-08-06"
_DATED_MODEL = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")
_STREAM_KEYS = ("stream", "stream_options")


def request_digest(method: str, path: str, body: bytes) -> bytes:
    """The sha256 every deterministic value of one request derives from."""
    return hashlib.sha256(method.upper().encode() + b"\n" + path.encode() + b"\n" + body).digest()


class Entropy:
    """Pseudo-random values keyed by a label, all derived from one digest.

    Keying by label (rather than drawing from one sequence) keeps a value stable when
    an unrelated field is added to a payload later.
    """

    def __init__(self, digest: bytes) -> None:
        self._digest = digest

    def stream(self, label: str, size: int) -> bytes:
        out = bytearray()
        counter = 0
        while len(out) < size:
            out += hashlib.sha256(self._digest + f"{label}#{counter}".encode()).digest()
            counter += 1
        return bytes(out[:size])

    def integer(self, label: str, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        return low + int.from_bytes(self.stream(label, 8), "big") % (high - low + 1)

    def unit(self, label: str) -> float:
        """A float in ``[0, 1)``."""
        return int.from_bytes(self.stream(label, 7), "big") / float(1 << 56)

    def alnum(self, label: str, length: int) -> str:
        return "".join(_ALNUM[b % len(_ALNUM)] for b in self.stream(label, length))

    def hex(self, label: str, length: int) -> str:
        return self.stream(label, (length + 1) // 2).hex()[:length]

    def pick(self, label: str, options: Sequence[_T]) -> _T:
        return options[self.integer(label, 0, len(options) - 1)]


@dataclass
class FakeResponse:
    """What the server should send: a whole body, or SSE events sent one HTTP chunk each."""

    status: int
    body: bytes | list[bytes]
    content_type: str = _JSON_CONTENT_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    body: JsonObject
    ids: Entropy
    content: Entropy


def _pretty(obj: Any) -> bytes:
    # api.openai.com pretty-prints non-streamed JSON bodies with two spaces and a final newline.
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _data_event(obj: Any) -> bytes:
    return f"data: {_compact(obj)}\n\n".encode()


def _named_event(obj: JsonObject) -> bytes:
    return f"event: {obj['type']}\ndata: {_compact(obj)}\n\n".encode()


def error_response(
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> FakeResponse:
    """An error body exactly as the real API shapes it."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return FakeResponse(status, _pretty(body), headers=list(headers))


_MODEL_ERRORS: dict[str, tuple[int, str, str, str | None, str | None]] = {
    "error-400": (
        400,
        "The model `error-400` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model",
        "model_not_found",
    ),
    "error-401": (
        401,
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    ),
    "error-429": (
        429,
        "Rate limit reached for error-429 in organization org-demo on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 1s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        None,
        "rate_limit_exceeded",
    ),
    "error-500": (
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
}
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information "
    "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def _model_error(model: object) -> FakeResponse | None:
    if not isinstance(model, str) or model not in _MODEL_ERRORS:
        return None
    status, message, type_, param, code = _MODEL_ERRORS[model]
    headers = [("retry-after", "1"), ("x-should-retry", "true")] if status == 429 else []
    return error_response(status, message, type_, param, code, headers)


def echo_model(model: str) -> str:
    """The model name the real API reports back: ``gpt-*`` aliases resolve to a dated snapshot."""
    if model.startswith("gpt-") and not _DATED_MODEL.search(model):
        return f"{model}-{_MODEL_SNAPSHOT}"
    return model


# --------------------------------------------------------------------------- text


_OPENERS = (
    'You asked: "{topic}".',
    'Here is a reply about "{topic}".',
    'Regarding "{topic}":',
    'Thanks for the message "{topic}".',
)
_TOOL_OPENERS = (
    'The tool returned "{topic}".',
    'Based on the tool result "{topic}", here is a summary.',
)
_SENTENCES = (
    "This answer comes from the vcr-ext demo server, so it is the same every time.",
    "Nothing left this machine and no API key was needed.",
    "A recording of this exchange replays byte for byte.",
    "Every word here is derived from a hash of the request.",
    "Change the question and the reply changes with it.",
    "Streamed and non-streamed calls receive the same text.",
    "The weather is mild and the forecast is uneventful.",
    "Paris remains a popular example city in documentation.",
)
_PIECE = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")
_MAX_TOPIC = 80


def _topic(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return "your message"
    if len(text) <= _MAX_TOPIC:
        return text
    return text[:_MAX_TOPIC].rsplit(" ", 1)[0] + "..."


def _answer(entropy: Entropy, label: str, prompt: str, *, from_tool: bool = False) -> str:
    opener = entropy.pick(f"{label}/opener", _TOOL_OPENERS if from_tool else _OPENERS)
    first = entropy.integer(f"{label}/s1", 0, len(_SENTENCES) - 1)
    second = (first + entropy.integer(f"{label}/s2", 1, len(_SENTENCES) - 1)) % len(_SENTENCES)
    return " ".join((opener.format(topic=_topic(prompt)), _SENTENCES[first], _SENTENCES[second]))


def word_pieces(text: str) -> list[str]:
    """Token-like pieces (leading space kept on words, punctuation apart) that join back to ``text``."""
    return _PIECE.findall(text) or [text]


def _arg_pieces(entropy: Entropy, label: str, text: str) -> list[str]:
    pieces: list[str] = []
    pos = 0
    while pos < len(text):
        size = entropy.integer(f"{label}/{len(pieces)}", 3, 6)
        pieces.append(text[pos : pos + size])
        pos += size
    return pieces


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


# --------------------------------------------------------------------------- JSON schema


_STRING_EXAMPLES = (
    (("city", "location", "place", "destination", "capital"), "Paris"),
    (("country",), "France"),
    (("unit",), "celsius"),
    (("name",), "Ada Lovelace"),
    (("ticker", "symbol"), "ACME"),
    (("language", "lang"), "en"),
    (("email",), "ada@example.com"),
    (("url", "link"), "https://example.com"),
)
_STRING_FORMATS = {
    "date": "2024-08-06",
    "date-time": "2024-08-06T12:00:00Z",
    "time": "12:00:00",
    "email": "ada@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _resolve(schema: JsonObject, root: JsonObject) -> JsonObject:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def example_value(schema: object, root: object = None, key: str = "", depth: int = 0) -> Any:
    """A value valid for a (simple) JSON schema: enums take their first value, objects fill every property."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    root_schema = root if isinstance(root, dict) else schema
    schema = _resolve(schema, root_schema)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if isinstance(o, dict) and o.get("type") != "null"), options[0])
            return example_value(chosen, root_schema, key, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: example_value(sub, root_schema, name, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [example_value(schema.get("items", {}), root_schema, key, depth + 1) for _ in range(count)]
    if kind == "integer":
        return _clamp(3, schema)
    if kind == "number":
        return _clamp(21.5, schema)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema, key)


def _clamp(value: float, schema: JsonObject) -> Any:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, (int, float)) and value < low:
        value = low + (1 if "exclusiveMinimum" in schema else 0)
    if isinstance(high, (int, float)) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    return int(value) if schema.get("type") == "integer" else value


def _example_string(schema: JsonObject, key: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt]
    lowered = key.lower()
    value = next((v for hints, v in _STRING_EXAMPLES if any(h in lowered for h in hints)), "Paris")
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value.ljust(min_length, "x")
    return value


# --------------------------------------------------------------------------- shared pieces


@dataclass(frozen=True)
class _Call:
    call_id: str
    name: str
    arguments: str


def _choose_calls(
    req: _Request, tools: list[JsonObject], tool_choice: object, user_text: str, label: str
) -> list[_Call]:
    """The function calls the fake model makes; ``tools`` is ``[{"name", "parameters"}]``."""
    if not tools or tool_choice == "none":
        return []
    wanted = tool_choice.get("name") if isinstance(tool_choice, dict) else None
    if isinstance(tool_choice, dict) and isinstance(tool_choice.get("function"), dict):
        wanted = tool_choice["function"].get("name")
    if isinstance(wanted, str):
        chosen = [t for t in tools if t["name"] == wanted][:1] or tools[:1]
    elif (
        req.body.get("parallel_tool_calls") is not False
        and len(tools) >= 2
        and re.search(r"\bboth\b", user_text, re.IGNORECASE)
    ):
        chosen = tools[:2]
    else:
        chosen = tools[:1]
    return [
        _Call(
            call_id="call_" + req.content.alnum(f"{label}/call{i}", 24),
            name=t["name"],
            arguments=_compact(example_value(t.get("parameters") or {"type": "object", "properties": {}})),
        )
        for i, t in enumerate(chosen)
    ]


def _function_tools(raw_tools: object, *, nested: bool) -> list[JsonObject]:
    """Function tool specs (with ``name``); chat nests them under ``function``, Responses does not."""
    found: list[JsonObject] = []
    for tool in raw_tools if isinstance(raw_tools, list) else []:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        spec = tool.get("function") if nested else tool
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            found.append(spec)
    return found


def _structured(req: _Request, label: str, fmt: object, prompt: str, from_tool: bool) -> str:
    """Assistant text honouring a ``json_schema``/``json_object`` output format."""
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema", fmt)
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return _compact(example_value(schema or {"type": "object", "properties": {}}))
    answer = _answer(req.content, label, prompt, from_tool=from_tool)
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return _compact({"answer": answer})
    return answer


def _created(req: _Request) -> int:
    # Late 2024 to late 2025: plausible, and fixed per request.
    return 1_730_000_000 + req.ids.integer("created", 0, 30_000_000)


def _obfuscation(req: _Request, label: str, length: int | None = None) -> str:
    size = length if length is not None else req.ids.integer(f"{label}/len", 1, 15)
    return req.ids.alnum(f"{label}/obf", size)


def _wants_obfuscation(req: _Request) -> bool:
    options = req.body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_obfuscation") is False)


def _wants_usage_chunk(req: _Request) -> bool:
    options = req.body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _interleave(per_choice: list[list[_T]]) -> Iterator[_T]:
    # Like the real API with n > 1: choices advance in lockstep rather than one after another.
    for position in range(max((len(c) for c in per_choice), default=0)):
        for chunks in per_choice:
            if position < len(chunks):
                yield chunks[position]


def _dict_field(body: JsonObject, key: str) -> JsonObject:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _number(body: JsonObject, key: str, default: float) -> float:
    value = body.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _count(value: object, default: int, high: int) -> int:
    return min(max(value, 1), high) if isinstance(value, int) and not isinstance(value, bool) else default


# --------------------------------------------------------------------------- chat completions


def _logprob_entry(req: _Request, label: str, token: str, top: int) -> JsonObject:
    logprob = -float(f"{req.content.unit(label) ** 4 * 2.5:.8g}")
    # The sampled token leads its own top_logprobs list, as on the real API.
    alternatives = [(token, logprob)] + [
        (alt, -float(f"{2.0 + i + req.content.unit(f'{label}/alt{i}') * 3:.8g}"))
        for i, alt in enumerate(a for a in (" the", " a", ",", " and", ".", " it") if a != token)
    ]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives[:top]
        ],
    }


def _chat_usage(prompt_tokens: int, completion_tokens: int) -> JsonObject:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass
class _ChatChoice:
    text: str | None
    calls: list[_Call]
    logprobs: list[JsonObject] | None
    pieces: list[str]

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.calls else "stop"

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces) + sum(len(c.arguments) // 3 + 8 for c in self.calls)


def _chat_choices(req: _Request) -> tuple[list[_ChatChoice], int]:
    messages = [m for m in req.body["messages"] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    last_text = _text_of(last.get("content"))
    prompt_tokens = sum(_tokens(_text_of(m.get("content"))) + 4 for m in messages) + 3
    tools = _function_tools(req.body.get("tools"), nested=True)
    prompt_tokens += sum(_tokens(_compact(t)) for t in tools)
    top = _count(req.body.get("top_logprobs"), 0, 20) if req.body.get("top_logprobs") else 0
    choices = []
    for index in range(_count(req.body.get("n"), 1, 128)):
        label = f"choice{index}"
        calls = (
            _choose_calls(req, tools, req.body.get("tool_choice"), last_text, label)
            if last.get("role") == "user"
            else []
        )
        if calls:
            choices.append(_ChatChoice(None, calls, None, []))
            continue
        fmt = req.body.get("response_format")
        text = _structured(req, label, fmt, last_text, from_tool=last.get("role") == "tool")
        pieces = word_pieces(text)
        logprobs = None
        if req.body.get("logprobs") is True:
            logprobs = [_logprob_entry(req, f"{label}/lp{i}", p, top) for i, p in enumerate(pieces)]
        choices.append(_ChatChoice(text, [], logprobs, pieces))
    return choices, prompt_tokens


def _chat_message(choice: _ChatChoice) -> JsonObject:
    message: JsonObject = {"role": "assistant", "content": choice.text}
    if choice.calls:
        message["tool_calls"] = [
            {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in choice.calls
        ]
    message["refusal"] = None
    message["annotations"] = []
    return message


def _chat_completion(req: _Request, model: str) -> FakeResponse:
    choices, prompt_tokens = _chat_choices(req)
    body = {
        "id": "chatcmpl-" + req.ids.alnum("id", 29),
        "object": "chat.completion",
        "created": _created(req),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": _chat_message(c),
                "logprobs": None if c.logprobs is None else {"content": c.logprobs, "refusal": None},
                "finish_reason": c.finish_reason,
            }
            for i, c in enumerate(choices)
        ],
        "usage": _chat_usage(prompt_tokens, sum(c.completion_tokens for c in choices)),
        "service_tier": _service_tier(req),
        "system_fingerprint": "fp_" + req.ids.hex("fingerprint", 10),
    }
    return FakeResponse(200, _pretty(body))


def _service_tier(req: _Request) -> str:
    tier = req.body.get("service_tier")
    return tier if isinstance(tier, str) and tier not in ("auto", "") else "default"


def _chat_stream_deltas(req: _Request, index: int, choice: _ChatChoice) -> list[JsonObject]:
    """The ``choices[0]`` entries of one choice's chunks, in order."""

    def entry(delta: JsonObject, logprobs: Any = None, finish: str | None = None) -> JsonObject:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    wants_logprobs = choice.logprobs is not None
    if not choice.calls:
        first = entry(
            {"role": "assistant", "content": "", "refusal": None},
            {"content": [], "refusal": None} if wants_logprobs else None,
        )
        body = [
            entry(
                {"content": p},
                {"content": [choice.logprobs[i]], "refusal": None} if choice.logprobs else None,
            )
            for i, p in enumerate(choice.pieces)
        ]
        return [first, *body, entry({}, None, choice.finish_reason)]

    def header(pos: int, call: _Call) -> JsonObject:
        fn = {"name": call.name, "arguments": ""}
        return {"index": pos, "id": call.call_id, "type": "function", "function": fn}

    out: list[JsonObject] = []
    if len(choice.calls) == 1:
        delta = {
            "role": "assistant",
            "content": None,
            "tool_calls": [header(0, choice.calls[0])],
            "refusal": None,
        }
        out.append(entry(delta))
    else:
        # Parallel calls open with a bare role chunk, then announce each call in turn (as captured).
        out.append(entry({"role": "assistant", "content": None}))
    for pos, call in enumerate(choice.calls):
        if len(choice.calls) > 1:
            out.append(entry({"tool_calls": [header(pos, call)]}))
        for piece in _arg_pieces(req.content, f"choice{index}/args{pos}", call.arguments):
            out.append(entry({"tool_calls": [{"index": pos, "function": {"arguments": piece}}]}))
    out.append(entry({}, None, choice.finish_reason))
    return out


def _chat_stream(req: _Request, model: str) -> FakeResponse:
    choices, prompt_tokens = _chat_choices(req)
    usage_chunk = _wants_usage_chunk(req)
    obfuscate = _wants_obfuscation(req)
    base = {
        "id": "chatcmpl-" + req.ids.alnum("id", 29),
        "object": "chat.completion.chunk",
        "created": _created(req),
        "model": model,
        "service_tier": _service_tier(req),
        "system_fingerprint": "fp_" + req.ids.hex("fingerprint", 10),
    }
    entries = list(_interleave([_chat_stream_deltas(req, i, c) for i, c in enumerate(choices)]))
    usage = _chat_usage(prompt_tokens, sum(c.completion_tokens for c in choices))
    bodies: list[tuple[list[JsonObject], Any]] = [([e], None) for e in entries]
    if usage_chunk:
        bodies.append(([], usage))
    events = []
    for n, (chunk_choices, chunk_usage) in enumerate(bodies):
        chunk = {**base, "choices": chunk_choices}
        if usage_chunk:
            chunk["usage"] = chunk_usage
        if obfuscate:
            chunk["obfuscation"] = _obfuscation(req, f"chunk{n}")
        events.append(_data_event(chunk))
    if req.body.get("model") == "error-stream":
        # A failure after the stream started arrives as a bare error object, as the real API does.
        error = {
            "message": _QUOTA_MESSAGE,
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
        events = [events[0], _data_event({"error": error})]
    else:
        events.append(b"data: [DONE]\n\n")
    return FakeResponse(200, events, _SSE_CONTENT_TYPE)


def chat_completions(req: _Request) -> FakeResponse:
    messages = req.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return (
            _missing("messages") if messages is None else _invalid("messages", "[] is too short - 'messages'")
        )
    model = echo_model(str(req.body["model"]))
    return _chat_stream(req, model) if req.body.get("stream") is True else _chat_completion(req, model)


def _missing(param: str) -> FakeResponse:
    return error_response(
        400,
        f"Missing required parameter: '{param}'.",
        "invalid_request_error",
        param,
        "missing_required_parameter",
    )


def _invalid(param: str, message: str) -> FakeResponse:
    return error_response(400, message, "invalid_request_error", param, None)


# --------------------------------------------------------------------------- responses


def _response_input(body: JsonObject) -> tuple[list[JsonObject], str, bool, bool]:
    """The input items, the last item's text, whether it is a user turn and whether it is a tool result."""
    raw = body.get("input")
    items: list[JsonObject] = (
        [{"role": "user", "content": raw}]
        if isinstance(raw, str)
        else [i for i in raw if isinstance(i, dict)]
        if isinstance(raw, list)
        else []
    )
    last = items[-1] if items else {}
    if last.get("type") == "function_call_output":
        output = last.get("output")
        return items, output if isinstance(output, str) else _compact(output), False, True
    return items, _text_of(last.get("content")), last.get("role") == "user", False


def _response_ids(req: _Request, created: int) -> tuple[str, str]:
    # Real response and item ids share a prefix and embed the creation time.
    shared = req.ids.hex("resp-shared", 18)
    return (
        f"resp_{shared}{created:08x}{req.ids.hex('resp-tail', 24)}",
        f"{shared}{created + 1:08x}",
    )


def _response_object(
    req: _Request, resp_id: str, created: int, status: str, output: list[JsonObject], usage: JsonObject | None
) -> JsonObject:
    body = req.body
    text_cfg = _dict_field(body, "text")
    reasoning = _dict_field(body, "reasoning")
    tools = [
        {
            "type": "function",
            "description": t.get("description"),
            "name": t["name"],
            "parameters": t.get("parameters"),
            "strict": t.get("strict", True),
        }
        for t in _function_tools(body.get("tools"), nested=False)
    ]
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": bool(body.get("background", False)),
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": echo_model(str(body["model"])),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "auto" if status == "in_progress" else _service_tier(req),
        "store": body.get("store", True),
        "temperature": _number(body, "temperature", 1.0),
        "text": {
            "format": text_cfg.get("format", {"type": "text"}),
            "verbosity": text_cfg.get("verbosity", "medium"),
        },
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools,
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": _number(body, "top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _response_usage(input_tokens: int, output_tokens: int) -> JsonObject:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def responses(req: _Request) -> FakeResponse:
    body = req.body
    if "input" not in body and "previous_response_id" not in body:
        return _missing("input")
    streaming = body.get("stream") is True
    if body.get("model") == "error-stream" and not streaming:
        return error_response(429, _QUOTA_MESSAGE, "insufficient_quota", None, "insufficient_quota")
    created = _created(req)
    resp_id, item_stem = _response_ids(req, created)
    items, last_text, user_turn, from_tool = _response_input(body)
    input_tokens = sum(_tokens(_text_of(i.get("content")) or _compact(i)) for i in items) + 7
    if body.get("model") == "error-stream":
        return _failed_stream(req, resp_id, created)

    tools = _function_tools(body.get("tools"), nested=False)
    calls = _choose_calls(req, tools, body.get("tool_choice"), last_text, "response") if user_turn else []
    text_cfg = _dict_field(body, "text")
    text = None if calls else _structured(req, "response", text_cfg.get("format"), last_text, from_tool)
    output: list[JsonObject]
    if text is not None:
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        output = [
            {
                "id": f"msg_{item_stem}{req.ids.hex('msg-tail', 24)}",
                "type": "message",
                "status": "completed",
                "content": [part],
                "role": "assistant",
            }
        ]
        output_tokens = len(word_pieces(text))
    else:
        output = [
            {
                "id": f"fc_{item_stem}{req.ids.hex(f'fc-tail{i}', 24)}",
                "type": "function_call",
                "status": "completed",
                "arguments": c.arguments,
                "call_id": c.call_id,
                "name": c.name,
            }
            for i, c in enumerate(calls)
        ]
        output_tokens = sum(len(c.arguments) // 3 + 8 for c in calls)
    usage = _response_usage(input_tokens, output_tokens)
    if not streaming:
        return FakeResponse(200, _pretty(_response_object(req, resp_id, created, "completed", output, usage)))
    return FakeResponse(200, _response_events(req, resp_id, created, output, usage), _SSE_CONTENT_TYPE)


class _Sequencer:
    def __init__(self, req: _Request) -> None:
        self.req = req
        self.events: list[bytes] = []
        self.obfuscate = _wants_obfuscation(req)

    def emit(self, type_: str, **fields: Any) -> None:
        event = {"type": type_, "sequence_number": len(self.events), **fields}
        if "delta" in fields and self.obfuscate:
            # The real padding brings short deltas up to 16 characters.
            event["obfuscation"] = _obfuscation(
                self.req, f"event{len(self.events)}", 16 - len(fields["delta"]) % 16
            )
        self.events.append(_named_event(event))


def _response_events(
    req: _Request, resp_id: str, created: int, output: list[JsonObject], usage: JsonObject
) -> list[bytes]:
    seq = _Sequencer(req)
    in_progress = _response_object(req, resp_id, created, "in_progress", [], None)
    seq.emit("response.created", response=in_progress)
    seq.emit("response.in_progress", response=in_progress)
    for index, item in enumerate(output):
        if item["type"] == "message":
            part = item["content"][0]
            text = part["text"]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            seq.emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            seq.emit("response.content_part.added", **where, part={**part, "text": ""})
            for piece in word_pieces(text):
                seq.emit("response.output_text.delta", **where, delta=piece, logprobs=[])
            seq.emit("response.output_text.done", **where, text=text, logprobs=[])
            seq.emit("response.content_part.done", **where, part=part)
        else:
            where = {"item_id": item["id"], "output_index": index}
            seq.emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in _arg_pieces(req.content, f"response/args{index}", item["arguments"]):
                seq.emit("response.function_call_arguments.delta", **where, delta=piece)
            seq.emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        seq.emit("response.output_item.done", output_index=index, item=item)
    seq.emit(
        "response.completed", response=_response_object(req, resp_id, created, "completed", output, usage)
    )
    return seq.events


def _failed_stream(req: _Request, resp_id: str, created: int) -> FakeResponse:
    seq = _Sequencer(req)
    in_progress = _response_object(req, resp_id, created, "in_progress", [], None)
    seq.emit("response.created", response=in_progress)
    seq.emit("response.in_progress", response=in_progress)
    seq.emit(
        "error",
        error={
            "type": "insufficient_quota",
            "code": "insufficient_quota",
            "message": _QUOTA_MESSAGE,
            "param": None,
        },
    )
    failed = {
        **in_progress,
        "status": "failed",
        "error": {"code": "insufficient_quota", "message": _QUOTA_MESSAGE},
    }
    seq.emit("response.failed", response=failed)
    return FakeResponse(200, seq.events, _SSE_CONTENT_TYPE)


# --------------------------------------------------------------------------- embeddings


def _float32_short(value: float) -> float:
    """``value`` rounded to float32, as the shortest decimal that still reads back as that float32."""
    (single,) = struct.unpack("<f", struct.pack("<f", value))
    for digits in range(6, 10):
        candidate = float(f"{single:.{digits}g}")
        if struct.pack("<f", candidate) == struct.pack("<f", single):
            return candidate
    return float(single)


def _embedding(model: str, item: object, dimensions: int) -> list[float]:
    # Keyed by model and input only, so the float and base64 encodings of one text agree.
    entropy = Entropy(hashlib.sha256(_compact([model, item]).encode()).digest())
    raw = [entropy.unit(f"d{i}") * 2 - 1 for i in range(dimensions)]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [_float32_short(v / norm) for v in raw]


def embeddings(req: _Request) -> FakeResponse:
    body = req.body
    raw = body.get("input")
    if raw is None:
        return _missing("input")
    if raw in ("", []):
        return _invalid(
            "input",
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        )
    items: list[object]
    if isinstance(raw, list) and raw and all(isinstance(x, (str, list)) for x in raw):
        items = list(raw)
    else:
        items = [raw]
    dimensions = _count(body.get("dimensions"), 8, 4096)
    model = str(body["model"])
    data = []
    for index, item in enumerate(items):
        vector = _embedding(model, item, dimensions)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(_tokens(x) if isinstance(x, str) else len(x) if isinstance(x, list) else 1 for x in items)
    result = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return FakeResponse(200, _pretty(result))


# --------------------------------------------------------------------------- legacy completions


def completions(req: _Request) -> FakeResponse:
    body = req.body
    raw = body.get("prompt")
    if raw is None:
        return _missing("prompt")
    prompts = [p if isinstance(p, str) else _compact(p) for p in raw] if isinstance(raw, list) else [str(raw)]
    prompts = prompts or [""]
    n = _count(body.get("n"), 1, 128)
    logprobs_n = body.get("logprobs")
    model = echo_model(str(body["model"]))
    completion_id = "cmpl-" + req.ids.alnum("id", 29)
    created = _created(req)
    texts: list[tuple[int, str, list[str]]] = []
    for p_index, prompt in enumerate(prompts):
        for j in range(n):
            index = p_index * n + j
            text = " " + _answer(req.content, f"choice{index}", prompt)
            if body.get("echo") is True:
                text = prompt + text
            texts.append((index, text, word_pieces(text)))
    prompt_tokens = sum(_tokens(p) for p in prompts)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": sum(len(t[2]) for t in texts),
        "total_tokens": prompt_tokens + sum(len(t[2]) for t in texts),
    }

    def logprobs(index: int, pieces: list[str], offset: int) -> JsonObject | None:
        if not isinstance(logprobs_n, int) or isinstance(logprobs_n, bool):
            return None
        values = [-float(f"{req.content.unit(f'c{index}/{i}') ** 4 * 2.5:.8g}") for i in range(len(pieces))]
        offsets = [offset + sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
        tops = [{p: v} if logprobs_n > 0 else {} for p, v in zip(pieces, values, strict=True)]
        return {"tokens": pieces, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}

    if body.get("stream") is not True:
        result = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"text": t, "index": i, "logprobs": logprobs(i, pieces, 0), "finish_reason": "stop"}
                for i, t, pieces in texts
            ],
            "usage": usage,
            "system_fingerprint": None,
        }
        return FakeResponse(200, _pretty(result))

    def chunk(choices: list[JsonObject]) -> JsonObject:
        out = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "choices": choices,
            "model": model,
        }
        return out

    per_choice: list[list[JsonObject]] = []
    for i, _text, pieces in texts:
        entries = []
        offset = 0
        for piece in pieces:
            entries.append(
                {"text": piece, "index": i, "logprobs": logprobs(i, [piece], offset), "finish_reason": None}
            )
            offset += len(piece)
        entries.append({"text": "", "index": i, "logprobs": None, "finish_reason": "stop"})
        per_choice.append(entries)
    events = [_data_event(chunk([e])) for e in _interleave(per_choice)]
    if _wants_usage_chunk(req):
        events.append(_data_event({**chunk([]), "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return FakeResponse(200, events, _SSE_CONTENT_TYPE)


# --------------------------------------------------------------------------- models


_MODELS = (
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4.1", 1744316542, "system"),
    ("gpt-3.5-turbo", 1677610602, "openai"),
    ("text-embedding-3-small", 1705948997, "system"),
)


def _model_object(model_id: str) -> JsonObject:
    known = {m[0]: m for m in _MODELS}
    _, created, owner = known.get(
        model_id, (model_id, 1_700_000_000 + Entropy(model_id.encode()).integer("c", 0, 9_999_999), "system")
    )
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


# --------------------------------------------------------------------------- routing


_POST_ROUTES = {
    "/v1/chat/completions": chat_completions,
    "/v1/responses": responses,
    "/v1/embeddings": embeddings,
    "/v1/completions": completions,
}


def generate(method: str, path: str, raw_body: bytes) -> FakeResponse:
    """The generated response to one request; ``path`` includes any query string."""
    method = method.upper()
    route = path.split("?", 1)[0].rstrip("/") or "/"
    if method == "GET" and route == "/v1/models":
        return FakeResponse(200, _pretty({"object": "list", "data": [_model_object(m[0]) for m in _MODELS]}))
    if method == "GET" and route.startswith("/v1/models/"):
        model_id = route[len("/v1/models/") :]
        return _model_error(model_id) or FakeResponse(200, _pretty(_model_object(model_id)))
    handler = _POST_ROUTES.get(route) if method == "POST" else None
    if handler is None:
        return error_response(404, f"Invalid URL ({method} {route})", "invalid_request_error")
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return error_response(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
            "help center at help.openai.com.)",
            "invalid_request_error",
        )
    if "model" not in body:
        return _missing("model")
    error = _model_error(body["model"])
    if error is not None:
        return error
    canonical = {k: v for k, v in body.items() if k not in _STREAM_KEYS}
    req = _Request(
        method=method,
        path=route,
        body=body,
        ids=Entropy(request_digest(method, path, raw_body)),
        content=Entropy(request_digest(method, route, json.dumps(canonical, sort_keys=True).encode())),
    )
    return handler(req)
