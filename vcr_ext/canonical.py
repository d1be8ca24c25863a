"""Canonical requests: the API route of a URL and the canonical form of a JSON body.

Two requests that the API treats the same get the same canonical form, so the matcher,
the cassette index and the miss explanation all read from this one module. Every body
rule is an entry of :data:`BODY_RULES`, with the reason it is safe; the README's table
is checked against it by the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import client_ids
from .providers import google

# First path segments of the OpenAI REST API. A path that has no ``v1`` segment (Azure's
# ``/openai/deployments/<name>/chat/completions``, base URLs without ``/v1``) is routed
# from the first of these it contains.
OPENAI_RESOURCES = frozenset(
    {
        "assistants",
        "audio",
        "batches",
        "chat",
        "completions",
        "containers",
        "conversations",
        "embeddings",
        "evals",
        "files",
        "fine_tuning",
        "images",
        "models",
        "moderations",
        "realtime",
        "responses",
        "threads",
        "uploads",
        "vector_stores",
    },
)

# Query parameters that say nothing about what is asked: API versions, and credentials
# (which scrubbing also removes from the recorded URL).
NOISE_QUERY_PARAMETERS = frozenset({"api-version", "api_version"})
SECRET_QUERY_PARAMETERS = frozenset(
    {
        "api_key",
        "api-key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "code",
        "sig",
        "signature",
        "secret",
        "client_secret",
        "password",
        "x-api-key",
    },
)

FLOAT_DIGITS = 5


def route(url_or_path: str) -> str:
    """The API route of a URL, independent of scheme, host, port and base path.

    ``https://h/openai/v1/v1/chat/completions?api-version=x`` -> ``/v1/chat/completions``;
    Ollama's native ``/api/...`` routes are kept as they are, and so are Google's from their
    version on (``/v1beta/models/<m>:generateContent``; see :func:`vcr_ext.providers.google.route`).
    """
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path.split("?", 1)[0]
    segments = [s for s in path.split("/") if s]
    google_route = google.route(segments)
    if google_route is not None:
        return google_route
    if "api" in segments:
        at = segments.index("api")
        if at + 1 < len(segments) and "v1" not in segments[at + 1 :]:
            return "/" + "/".join(segments[at:])
    if "v2" in segments and "v1" not in segments:
        # Cohere's v2 API (/v2/chat, /v2/embed, /v2/rerank) is not its v1 API (/v1/chat).
        return "/" + "/".join(segments[len(segments) - 1 - segments[::-1].index("v2") :])
    if "v1" in segments:
        last = len(segments) - 1 - segments[::-1].index("v1")
        rest = segments[last + 1 :]
        # A gateway's own path after its v1 (Vertex AI's /v1/projects/<p>/.../openapi,
        # Cloudflare's /v1/<account>/<gateway>/openai) ends where the OpenAI route starts.
        if rest and rest[0] not in OPENAI_RESOURCES:
            rest = _from_first_resource(rest) or rest
        return "/v1/" + "/".join(rest) if rest else "/v1"
    rest = _from_first_resource(segments)
    return "/v1/" + "/".join(rest) if rest else "/" + "/".join(segments)


def _from_first_resource(segments: list[str]) -> list[str]:
    """``segments`` from the first OpenAI resource name on; empty if there is none."""
    for at, segment in enumerate(segments):
        if segment in OPENAI_RESOURCES:
            return segments[at:]
    return []


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter carries a credential (never written, never matched)."""
    return name.lower() in SECRET_QUERY_PARAMETERS


def meaningful_query(url: str) -> tuple[tuple[str, str], ...]:
    """The query parameters that change what is asked, sorted (``limit``, ``after``, ...)."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return tuple(
        sorted(
            (k, v) for k, v in pairs if k.lower() not in NOISE_QUERY_PARAMETERS and not is_secret_parameter(k)
        )
    )


def route_key(url: str) -> str:
    """The route plus its meaningful query, as one comparable string."""
    query = meaningful_query(url)
    return route(url) + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")


# -- bodies ----------------------------------------------------------------------------


def parse_json_body(body: object) -> tuple[bool, Any]:
    """``(True, value)`` for a JSON body, ``(False, bytes)`` for anything else.

    Besides bytes and text, vcrpy's stubs hand over what the client was given: a list
    of byte chunks (iterator bodies), or, from aiohttp, the ``json=``/``data=`` object.
    """
    if body is None or body == b"" or body == "":
        return True, None
    if isinstance(body, list) and all(isinstance(chunk, bytes) for chunk in body):
        body = b"".join(body)
    if isinstance(body, (dict, list, tuple)):
        try:
            return True, json.loads(json.dumps(body))
        except (TypeError, ValueError):
            return False, repr(body).encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, (bytes, str)):
        return False, repr(body).encode("utf-8")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        return True, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, raw


def _nothing(body: dict[str, Any], route_: str) -> None:
    return None


@dataclass(frozen=True)
class Rule:
    """One canonicalization rule: what two bodies may differ in and still match, and why that is safe.

    ``apply`` rewrites the body; ``visit``, if any, rewrites each subschema of the body's
    tool and response-format JSON schemas (``strict`` says whether the API closes it).
    All visitors run in one walk of each schema.
    """

    name: str
    why: str
    apply: Callable[[dict[str, Any], str], None] = _nothing
    visit: Callable[[dict[str, Any], bool], None] | None = None


def _is_strict(owner: dict[str, Any], route_: str) -> bool:
    strict = owner.get("strict")
    # Responses API function tools are strict unless they say otherwise.
    return bool(strict) if strict is not None else route_.startswith("/v1/responses")


def _schemas(body: dict[str, Any], route_: str) -> list[tuple[dict[str, Any], bool]]:
    """The JSON schemas a body carries (tools, functions, response formats), each with its strictness."""
    found: list[tuple[dict[str, Any], bool]] = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        function: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
        if isinstance(function.get("parameters"), dict):
            found.append((function["parameters"], _is_strict(function, route_)))
    for function in body.get("functions") or []:
        if isinstance(function, dict) and isinstance(function.get("parameters"), dict):
            found.append((function["parameters"], False))
    formats = [body.get("response_format")]
    text = body.get("text")
    if isinstance(text, dict):
        formats.append(text.get("format"))
    for fmt in formats:
        if not isinstance(fmt, dict):
            continue
        holder: dict[str, Any] = fmt["json_schema"] if isinstance(fmt.get("json_schema"), dict) else fmt
        if isinstance(holder.get("schema"), dict):
            found.append((holder["schema"], _is_strict(holder, route_)))
    return found


def _descriptions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects whose ``description`` is prose for the model: tools, functions, response formats."""
    owners: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            owners.append(tool)
            if isinstance(tool.get("function"), dict):
                owners.append(tool["function"])
    owners += [f for f in body.get("functions") or [] if isinstance(f, dict)]
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        owners.append(fmt)
        if isinstance(fmt.get("json_schema"), dict):
            owners.append(fmt["json_schema"])
    return owners


# Keywords whose value is a mapping of names to subschemas, and those whose value is a
# subschema or a list of them (anything else in a schema is a constraint, not a schema).
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_SCHEMA_NESTED = frozenset(
    {
        "anyOf",
        "oneOf",
        "allOf",
        "prefixItems",
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
    }
)


def _walk_schema(schema: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    """Call ``visit`` on every subschema, never on a mapping of property names."""
    if isinstance(schema, list):
        for item in schema:
            _walk_schema(item, visit)
        return
    if not isinstance(schema, dict):
        return
    visit(schema)
    for key, value in list(schema.items()):
        if key in _SCHEMA_NESTED:
            _walk_schema(value, visit)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            for sub in value.values():
                _walk_schema(sub, visit)


def clean_prose(text: str) -> str:
    """A docstring-like text without its indentation: lines stripped, blank ends dropped."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return "\n".join(re.sub(r"[ \t]+", " ", line) for line in lines)


def _rule_descriptions(body: dict[str, Any], route_: str) -> None:
    # The prose of tools and formats themselves; descriptions inside schemas are
    # cleaned by the schema visitor of the same rule.
    for owner in _descriptions(body):
        if isinstance(owner.get("description"), str):
            owner["description"] = clean_prose(owner["description"])


def _visit_descriptions(schema: dict[str, Any], strict: bool) -> None:
    if isinstance(schema.get("description"), str):
        schema["description"] = clean_prose(schema["description"])


def _visit_titles(schema: dict[str, Any], strict: bool) -> None:
    if isinstance(schema.get("title"), str):
        del schema["title"]


def _visit_required_order(schema: dict[str, Any], strict: bool) -> None:
    required = schema.get("required")
    if isinstance(required, list) and all(isinstance(r, str) for r in required):
        schema["required"] = sorted(required)


def _visit_closed_objects(schema: dict[str, Any], strict: bool) -> None:
    if strict and schema.get("additionalProperties") is False:
        del schema["additionalProperties"]


def _drop_if(body: dict[str, Any], key: str, *defaults: Any) -> None:
    if key in body and any(body[key] == d and type(body[key]) is type(d) for d in defaults):
        del body[key]


def _rule_defaults(body: dict[str, Any], route_: str) -> None:
    has_tools = bool(body.get("tools"))
    _drop_if(body, "extra_body", {})
    _drop_if(body, "n", 1)
    _drop_if(body, "stream", False)
    _drop_if(body, "logprobs", False)
    _drop_if(body, "tools", [])
    _drop_if(body, "response_format", {"type": "text"})
    if has_tools:
        _drop_if(body, "tool_choice", "auto")
        _drop_if(body, "parallel_tool_calls", True)
    else:
        _drop_if(body, "tool_choice", "none")
    if body.get("stream") is not True:
        body.pop("stream_options", None)
    else:
        _drop_if(body, "stream_options", {"include_usage": False}, {})


def _rule_embedding_format(body: dict[str, Any], route_: str) -> None:
    if route_ == "/v1/embeddings":
        _drop_if(body, "encoding_format", "float", "base64")


def _rule_text_parts(body: dict[str, Any], route_: str) -> None:
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if (
            isinstance(content, list)
            and len(content) == 1
            and isinstance(content[0], dict)
            and set(content[0]) == {"type", "text"}
            and content[0]["type"] == "text"
        ):
            message["content"] = content[0]["text"]


BODY_RULES: tuple[Rule, ...] = (
    Rule(
        "defaults",
        "A field sent with the value the API uses when it is absent asks the same: `n: 1`, `stream: false`, "
        "`logprobs: false`, `tools: []`, `response_format: {type: text}`, `extra_body: {}` (an empty "
        "passthrough), `tool_choice: auto` and `parallel_tool_calls: true` when tools are given, "
        "`tool_choice: none` when none are, `stream_options` on a request that does not stream (the API "
        "ignores it) and `stream_options: {include_usage: false}`.",
        _rule_defaults,
    ),
    Rule(
        "embedding-encoding",
        "`encoding_format` on `/v1/embeddings`: the openai SDK adds `base64` to every request and decodes "
        "base64 or float answers alike, and `float` is the API's default, so the three ask the same vectors.",
        _rule_embedding_format,
    ),
    Rule(
        "text-parts",
        "A message whose content is a single text part (`[{type: text, text: T}]`) is the message with "
        "content `T`: the API reads both as the same text.",
        _rule_text_parts,
    ),
    Rule(
        "schema-descriptions",
        "Tool, function, response-format and schema `description` prose is compared without its "
        "indentation and surrounding blank lines: re-indenting a docstring does not change its words.",
        _rule_descriptions,
        _visit_descriptions,
    ),
    Rule(
        "schema-titles",
        "`title` keywords inside tool and response-format JSON schemas are ignored: pydantic generates them "
        "from class and field names, and they do not constrain the arguments. A property named `title` is "
        "kept.",
        visit=_visit_titles,
    ),
    Rule(
        "schema-required-order",
        "The order of a schema's `required` list is ignored: it is a set.",
        visit=_visit_required_order,
    ),
    Rule(
        "strict-closed-objects",
        "In a strict schema (`strict: true`, the default for Responses API tools) every object is closed "
        "by the API, so `additionalProperties: false` and its absence mean the same. In a non-strict "
        "schema they differ, and the difference is kept.",
        visit=_visit_closed_objects,
    ),
)
"""The rules, in the order they are applied. Key order and float noise (below) always apply,
and the ``client-ids`` rule (:mod:`vcr_ext.client_ids`) last, when the ids of the cassette's
responses are known."""

KEY_ORDER_WHY = "Object key order never matters in JSON."
FLOAT_NOISE_WHY = (
    "Floats are compared rounded to 5 decimal places (as the format's request hash does), and 1.0 equals 1: "
    "a float that went through a different serializer is the same parameter "
    "(so are two values less than 0.000005 apart)."
)


def rules_table() -> str:
    """The rules as the README's Markdown table (a test keeps the README equal to it)."""
    rows = [("`key-order`", KEY_ORDER_WHY), ("`float-noise`", FLOAT_NOISE_WHY)]
    rows += [(f"`{rule.name}`", rule.why) for rule in BODY_RULES]
    rows.append(("`client-ids`", client_ids.WHY))
    return "\n".join(["| rule | why it is safe |", "|---|---|", *(f"| {n} | {w} |" for n, w in rows)])


_MULTIPART_BOUNDARY = re.compile(rb"^--([^\r\n]{1,200})\r?\n")


def canonical_value(value: Any) -> Any:
    """A JSON value with float noise removed (floats rounded to 5 places, as the format hashes them)."""
    if isinstance(value, dict):
        return {k: canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_value(v) for v in value]
    if isinstance(value, float):
        rounded = round(value, FLOAT_DIGITS)
        # 1.0 and 1 are the same number to the API; compare them as one.
        return int(rounded) if rounded.is_integer() else rounded
    return value


def canonical_body(
    is_json: bool, value: Any, route_: str = "", produced: Container[str] | None = None
) -> Any:
    """The canonical form of a request body: every rule of :data:`BODY_RULES` applied, floats rounded.

    ``produced``: the ids the recorded responses of the cassette hold; with it, the
    ``client-ids`` rule replaces every other id the body sends back by its placeholder.
    Without it (no cassette to ask) ids compare by value.

    Non-JSON bodies stay bytes, except that a multipart body's random boundary is
    replaced, so the same upload matches however the client drew its boundary.
    """
    if not is_json:
        raw = bytes(value)
        m = _MULTIPART_BOUNDARY.match(raw)
        return raw.replace(m.group(1), b"vcr-ext-boundary") if m else raw
    # canonical_value builds new containers, which the rules then rewrite in place.
    body = canonical_value(value)
    if isinstance(body, dict):
        for rule in BODY_RULES:
            rule.apply(body, route_)
        visitors = [rule.visit for rule in BODY_RULES if rule.visit is not None]
        for schema, strict in _schemas(body, route_):

            def visit(sub: dict[str, Any], strict: bool = strict) -> None:
                for visitor in visitors:
                    visitor(sub, strict)

            _walk_schema(schema, visit)
        if produced is not None:
            client_ids.replace(body, produced)
    return body


def key_of(canonical: Any) -> str | bytes:
    """The hashable key of a canonical body (bytes stay bytes)."""
    if isinstance(canonical, bytes):
        return canonical
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_key(
    is_json: bool, value: Any, route_: str = "", produced: Container[str] | None = None
) -> str | bytes:
    """A hashable key equal for canonically equal bodies (``produced`` as for :func:`canonical_body`)."""
    return key_of(canonical_body(is_json, value, route_, produced))
