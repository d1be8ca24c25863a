"""Conformance: replay every recording of a llama-stack corpus through the real SDK clients.

Each file of a llama-stack ``recordings/`` folder is one record, and a one-record file is
itself a cassette. For every record this module makes the client call the record
describes (the openai or ollama client method llama-stack's recorder patched, with the
recorded keyword arguments) inside ``vcr_ext.VCR(record_mode="none")``, against a base
URL where nothing listens, and compares what the SDK parsed with what the record holds,
rebuilt the way the SDK builds objects from the wire.

Public API: :func:`discover` (the cases of a folder), :func:`replay` (one case, sync,
async or through ``chat.completions.stream()``), :func:`run_all` and :func:`report`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.util
import inspect
import json
import os
import re
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import canonical, explain, sdk_types
from .interactions import apply_id_mapping

CORPUS_NAME = "llama-stack-2025-10"
OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
OLLAMA_HOST = "http://127.0.0.1:9"
API_KEY = "sk-conformance"

# Modes of one replay.
SYNC, ASYNC, HELPER, ASYNC_HELPER = "sync", "async", "helper", "async-helper"
MODES = (SYNC, ASYNC, HELPER, ASYNC_HELPER)
# How the report names them: the helper is ``client.chat.completions.stream()``.
LABELS = {SYNC: "sync", ASYNC: "async", HELPER: "stream()", ASYNC_HELPER: "async stream()"}

# SDK keyword arguments that are not request body fields.
_OPENAI_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})

_EXACT_HOSTS = {
    "api.openai.com": "openai",
    "api.together.xyz": "together",
    "api.fireworks.ai": "fireworks",
    "api.cerebras.ai": "cerebras",
    "integrate.api.nvidia.com": "nvidia",
    "generativelanguage.googleapis.com": "gemini",
}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1"})
_LOCAL_PORTS = {11434: "ollama", 8000: "vllm", 8080: "vllm"}


# -- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One recording and the client call that replays it.

    ``endpoint`` is the route the record names (as recorded, quirks included);
    ``kind`` what the record really is (``chat-stream``, ``ollama-embed``, ...);
    ``client_call`` the SDK method that replays it (``openai.chat.completions.create``);
    ``skip_reason`` why it is not replayed, ``None`` if it is.
    """

    path: Path
    provider: str
    endpoint: str
    kind: str
    client_call: str
    skip_reason: str | None = None
    name: str = ""
    has_tool_calls: bool = False

    @property
    def sdk(self) -> str:
        """``"openai"``, ``"ollama"``, or ``""`` for a case no client replays."""
        return self.client_call.split(".", 1)[0] if self.client_call else ""

    @property
    def modes(self) -> tuple[str, ...]:
        """The replay modes that apply: sync, async, and ``stream()`` for chat streams with tool calls."""
        if self.skip_reason is not None:
            return (SYNC,)
        modes = [SYNC, ASYNC] if self.sdk in ("openai", "ollama") else [SYNC]
        if self.kind == "chat-stream" and self.has_tool_calls and self.sdk == "openai":
            modes += [HELPER, ASYNC_HELPER]
        return tuple(modes)


@dataclass(frozen=True)
class Outcome:
    """The result of replaying one case in one mode; ``detail`` says why it failed (or was skipped)."""

    case: Case
    ok: bool
    detail: str = ""
    mode: str = SYNC
    skipped: bool = False


def load_record(path: Path) -> Any:
    """One recording as llama-stack's reader sees it (``id_normalization_mapping`` applied).

    A client replaying such a recording only ever saw the normalized ids (``file-1``), so
    the call it makes carries those, not the real ids the file holds.
    """
    with path.open("rb") as f:
        record = json.load(f)
    return apply_id_mapping(record) if isinstance(record, dict) else record


def provider_of(url: str) -> str:
    """The provider a recorded URL was sent to (``openai``, ``ollama``, ``vllm``, ...)."""
    if "databricks" in url:
        return "databricks"
    parts = urlsplit(url if "://" in url else "http://" + url)
    host = (parts.hostname or "").lower()
    if host in _EXACT_HOSTS:
        return _EXACT_HOSTS[host]
    if host.endswith(".azure.com"):
        return "azure"
    if host in _LOCAL_HOSTS:
        try:
            port = parts.port
        except ValueError:
            port = None
        if port in _LOCAL_PORTS:
            return _LOCAL_PORTS[port]
    return host or "unknown"


def _has_tool_calls(response: Any) -> bool:
    chunks = response.get("body") if isinstance(response, dict) else None
    if not isinstance(chunks, list):
        return False
    for chunk in chunks:
        data = chunk.get("__data__") if isinstance(chunk, dict) else None
        for choice in (data or {}).get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and delta.get("tool_calls"):
                return True
    return False


def _openai_kind(route: str, body: dict[str, Any], stream: bool) -> tuple[str, str]:
    suffix = "-stream" if stream else ""
    if route in ("/v1/chat/completions", "/v1/completions") and "messages" in body:
        return "chat" + suffix, "openai.chat.completions.create"
    if route == "/v1/completions":
        return "completion" + suffix, "openai.completions.create"
    if route == "/v1/embeddings":
        return "embeddings", "openai.embeddings.create"
    if route == "/v1/models":
        return "models", "openai.models.list"
    return "", ""


def _ollama_kind(route: str, body: dict[str, Any], stream: bool) -> tuple[str, str]:
    suffix = "-stream" if stream else ""
    if route == "/api/generate":
        return "ollama-generate" + suffix, "ollama.generate"
    if route == "/api/chat":
        return "ollama-chat" + suffix, "ollama.chat"
    if route == "/api/embed" or (route == "/api/embeddings" and "input" in body):
        # llama-stack's /api/embeddings records are embed() calls (body has input).
        return "ollama-embed", "ollama.embed"
    if route == "/api/embeddings":
        return "ollama-embeddings", "ollama.embeddings"
    if route == "/api/ps":
        return "ollama-ps", "ollama.ps"
    if route == "/api/tags":
        return "ollama-tags", "ollama.list"
    return "", ""


@functools.cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def classify(record: Any) -> tuple[str, str, str, str | None]:
    """``(endpoint, kind, client_call, skip_reason)`` of one parsed record."""
    request = record.get("request") if isinstance(record, dict) else None
    if not isinstance(request, dict):
        return "", "invalid", "", "not a recording: no request object"
    if not ("url" in request or "endpoint" in request or "method" in request):
        what = f"{request.get('provider', '?')}.{request.get('tool_name', '?')}"
        return "(tool)", "tool-invocation", "", f"tool-invocation record ({what}): not an HTTP interaction"
    url = str(request.get("url") or request.get("endpoint") or "")
    endpoint = str(request.get("endpoint") or urlsplit(url).path)
    route = canonical.route(endpoint)
    body = request.get("body")
    body = body if isinstance(body, dict) else {}
    response = record.get("response")
    streaming = bool(body.get("stream")) or bool(isinstance(response, dict) and response.get("is_streaming"))
    make = _ollama_kind if route.startswith("/api/") else _openai_kind
    kind, call = make(route, body, streaming)
    if not kind:
        return endpoint, "unknown", "", f"no client call known for route {route}"
    sdk = call.split(".", 1)[0]
    if not _installed(sdk):
        return endpoint, kind, call, f"the {sdk} client is not installed"
    return endpoint, kind, call, None


def discover(root: Path) -> list[Case]:
    """Every ``*.json`` recording under ``root``, classified, in path order."""
    root = Path(root)
    cases = []
    for path in sorted(p for p in root.rglob("*.json") if not p.name.startswith(".")):
        name = path.relative_to(root).as_posix()
        try:
            record = load_record(path)
        except (OSError, ValueError) as err:
            reason = f"unreadable: {type(err).__name__}: {_first_line(str(err))}"
            cases.append(Case(path, "unknown", "", "invalid", "", reason, name))
            continue
        endpoint, kind, call, skip = classify(record)
        request = record.get("request") if isinstance(record, dict) else None
        url = str(request.get("url") or "") if isinstance(request, dict) else ""
        provider = provider_of(url) if url else (str(request.get("provider")) if request else "unknown")
        tools = kind == "chat-stream" and _has_tool_calls(record.get("response"))
        cases.append(Case(path, provider, endpoint, kind, call, skip, name, tools))
    return cases


# -- the client call ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A client method (dotted, from the client) and its keyword arguments."""

    method: str
    kwargs: dict[str, Any]
    stream: bool


def _resolve(client: Any, dotted: str) -> Any:
    target = client
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


@functools.cache
def _parameters(sdk: str, dotted: str) -> frozenset[str]:
    """The keyword parameters of a client method, read off the SDK's own signature."""
    method = _resolve(_CLIENTS.sync(sdk), dotted)
    params = inspect.signature(method).parameters
    return frozenset(n for n, p in params.items() if p.kind is not p.VAR_KEYWORD)


def _openai_kwargs(method: str, body: dict[str, Any]) -> dict[str, Any]:
    known = _parameters("openai", method) - _OPENAI_OPTIONS
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key == "extra_body":
            if value:
                extra.update(value)
        elif key in known:
            kwargs[key] = value
        else:
            extra[key] = value
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _ollama_kwargs(method: str, body: dict[str, Any]) -> dict[str, Any]:
    known = _parameters("ollama", method)
    unknown = sorted(set(body) - known)
    if unknown:
        raise TypeError(f"not parameters of ollama Client.{method}: {', '.join(unknown)}")
    return dict(body)


def build_call(case: Case, record: dict[str, Any], *, helper: bool = False) -> Call:
    """The client method and keyword arguments that replay ``record``.

    openai: recorded keys that are parameters of the SDK method go as keyword arguments,
    the others into ``extra_body`` (an empty ``extra_body`` is dropped, a non-empty one
    merged). ollama: every key must be a parameter of the client method.
    """
    body = record["request"].get("body")
    body = dict(body) if isinstance(body, dict) else {}
    stream = bool(body.get("stream"))
    method = case.client_call.split(".", 1)[1]
    if case.sdk == "ollama":
        return Call(method, _ollama_kwargs(method, body), stream)
    if helper:
        method = "chat.completions.stream"
        body.pop("stream", None)
    return Call(method, _openai_kwargs(method, body), stream)


# -- expected values ------------------------------------------------------------------------


def rebuild(item: Any) -> Any:
    """A recorded ``{"__type__", "__data__"}`` value rebuilt as the SDK builds it from the wire, dumped.

    openai objects are built without validation (``construct_type``), as the SDK does
    with a response body; ollama objects with ``Cls(**data)``, as the ollama client does.
    """
    if not (isinstance(item, dict) and "__type__" in item and "__data__" in item):
        return item
    type_name, data = item["__type__"], item["__data__"]
    if not isinstance(type_name, str) or type_name.startswith("vcr_ext."):
        return data
    return dump(sdk_types.build(type_name, data))


def dump(obj: Any) -> Any:
    """A parsed SDK object as JSON-like values (``model_dump(mode="json")``), embeddings as float lists."""
    value = obj.model_dump(mode="json", warnings=False) if hasattr(obj, "model_dump") else obj
    return _float_embeddings(value)


def _float_embeddings(value: Any) -> Any:
    data = value.get("data") if isinstance(value, dict) and value.get("object") == "list" else None
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("embedding"), str):
                raw = base64.b64decode(item["embedding"])
                item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return value


def expected(record: dict[str, Any]) -> Any:
    """What the SDK should give for the record's response: a list for streams and model lists."""
    body = record["response"]["body"]
    if isinstance(body, list):
        return [rebuild(item) for item in body]
    return rebuild(body)


def expected_tool_calls(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a recorded chat stream, its deltas accumulated as the SDK accumulates the wire.

    Strings (``id``, ``function.name``, ``function.arguments``) are concatenated and
    absent or ``null`` values skipped, exactly as ``chat.completions.stream()`` does with
    the deltas the live API sent (the wire never carries llama-stack's explicit nulls).
    One ``{"choice", "id", "name", "arguments"}`` per call, by choice then call index.
    """
    calls: dict[tuple[int, int], dict[str, Any]] = {}
    for item in record["response"]["body"]:
        data = item.get("__data__") if isinstance(item, dict) else None
        for choice in (data or {}).get("choices") or []:
            delta = choice.get("delta") or {}
            for tc in delta.get("tool_calls") or []:
                key = (choice.get("index", 0), tc.get("index", 0))
                acc = calls.setdefault(key, {"choice": key[0], "id": None, "name": None, "arguments": None})
                function = tc.get("function") or {}
                _concat(acc, "id", tc.get("id"))
                _concat(acc, "name", function.get("name"))
                _concat(acc, "arguments", function.get("arguments"))
    return [calls[key] for key in sorted(calls)]


def _concat(acc: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        return
    acc[key] = acc[key] + value if isinstance(acc.get(key), str) and isinstance(value, str) else value


# -- comparing ------------------------------------------------------------------------------


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_difference(recorded: Any, replayed: Any, path: str = "response") -> str | None:
    """Where two JSON-like values first differ (``response[3].choices[0].delta.content: ...``), or ``None``.

    Exact: floats must be equal, and a number's type (int, float, bool) must be the same.
    """
    found = explain.differences(recorded, replayed, path)
    if not found:
        return None
    first = found[0]
    if first.kind == "removed":
        return f"{first.path}: recorded {_short(first.recorded)}, missing from the replay"
    if first.kind == "added":
        return f"{first.path}: not recorded, replayed {_short(first.request)}"
    return f"{first.path}: recorded {_short(first.recorded)}, replayed {_short(first.request)}"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe_exception(exc: BaseException) -> str:
    """``Type: first line``, following an SDK's wrapping (``APIConnectionError`` <- the real cause)."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    names = " <- ".join(type(e).__name__ for e in chain)
    root = chain[-1]
    message = str(root)
    if type(root).__name__ == "CannotOverwriteExistingCassetteException":
        return f"{names}: {_summarize_miss(message)}"
    return f"{names}: {_first_line(message)}"


_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+)")
_DIFF_LINE = re.compile(r"^([-+~] |.*first difference at|\w+ differs$|Matchers failed)")


def _summarize_miss(message: str, limit: int = 400) -> str:
    """vcrpy's long miss message cut to the request sent and how the closest recording differs."""
    lines = [line.strip().rstrip(":") for line in message.splitlines() if line.strip()]
    sent = next((m for m in map(_REQUEST_LINE.match, lines) if m), None)
    if sent is not None:
        head = f"no recording matches {sent[1]} {canonical.route(sent[2])}"
    else:
        head = next((ln for ln in lines if ln.startswith("No match for the request")), _first_line(message))
    closest = lines[next((i for i, ln in enumerate(lines) if ln.startswith("Closest")), len(lines)) :]
    why = [
        ln.split(": first difference at", 1)[-1].strip() if "first difference" in ln else ln
        for ln in closest
        if _DIFF_LINE.match(ln)
    ]
    why = [("first difference at " + w) if w and not _DIFF_LINE.match(w) else w for w in why]
    text = head + ("; closest recording: " + "; ".join(why) if why else "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- replay ---------------------------------------------------------------------------------


@functools.cache
def _vcr() -> Any:
    import vcr_ext

    return vcr_ext.VCR(record_mode="none")


class _Clients:
    """The sync clients, shared by every sync replay (async clients belong to one event loop each)."""

    def __init__(self) -> None:
        self._sync: dict[str, Any] = {}

    def sync(self, sdk: str) -> Any:
        if sdk not in self._sync:
            self._sync[sdk] = make_client(sdk, asynchronous=False)
        return self._sync[sdk]


def make_client(sdk: str, *, asynchronous: bool) -> Any:
    """An openai or ollama client (sync or async) whose base URL nothing listens on."""
    if sdk == "ollama":
        import ollama

        return (ollama.AsyncClient if asynchronous else ollama.Client)(host=OLLAMA_HOST)
    import openai

    cls: Any = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=OPENAI_BASE_URL, api_key=API_KEY, max_retries=0)


_CLIENTS = _Clients()


def _collect(result: Any, call: Call, case: Case) -> Any:
    if case.kind == "models":
        return [dump(m) for m in result.data]
    if call.stream:
        return [dump(chunk) for chunk in result]
    return dump(result)


async def _acollect(result: Any, call: Call, case: Case) -> Any:
    if case.kind == "models":
        page = await result
        return [dump(m) for m in page.data]
    value = await result
    if call.stream:
        return [dump(chunk) async for chunk in value]
    return dump(value)


def _compare(case: Case, mode: str, record: dict[str, Any], replayed: Any) -> Outcome:
    difference = first_difference(expected(record), replayed)
    return Outcome(case, difference is None, difference or "", mode)


def _tool_calls_of(completion: Any) -> list[dict[str, Any]]:
    found = []
    for choice in sorted(completion.choices, key=lambda c: c.index):
        for tc in choice.message.tool_calls or []:
            function = getattr(tc, "function", None)
            name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
            found.append({"choice": choice.index, "id": tc.id, "name": name, "arguments": arguments})
    return found


def _compare_tools(case: Case, mode: str, record: dict[str, Any], completion: Any) -> Outcome:
    difference = first_difference(expected_tool_calls(record), _tool_calls_of(completion), "tool_calls")
    return Outcome(case, difference is None, difference or "", mode)


def _skipped(case: Case, mode: str) -> Outcome:
    return Outcome(case, False, case.skip_reason or "", mode, skipped=True)


def replay(case: Case, *, asynchronous: bool = False, helper: bool = False) -> Outcome:
    """Replay one case through its SDK client inside the cassette and compare with the record."""
    mode = (ASYNC_HELPER if asynchronous else HELPER) if helper else ASYNC if asynchronous else SYNC
    if case.skip_reason is not None:
        return _skipped(case, mode)
    if asynchronous:
        return asyncio.run(_replay_async(case, helper=helper))
    record = load_record(case.path)
    try:
        call = build_call(case, record, helper=helper)
        client = _CLIENTS.sync(case.sdk)
        method = _resolve(client, call.method)
        with _vcr().use_cassette(str(case.path)):
            if helper:
                with method(**call.kwargs) as stream:
                    stream.until_done()
                    return _compare_tools(case, mode, record, stream.get_final_completion())
            replayed = _collect(method(**call.kwargs), call, case)
    except Exception as exc:
        return Outcome(case, False, describe_exception(exc), mode)
    return _compare(case, mode, record, replayed)


async def _replay_async(
    case: Case, *, helper: bool = False, clients: dict[str, Any] | None = None
) -> Outcome:
    mode = ASYNC_HELPER if helper else ASYNC
    if case.skip_reason is not None:
        return _skipped(case, mode)
    record = load_record(case.path)
    own = clients is None
    clients = {} if clients is None else clients
    try:
        call = build_call(case, record, helper=helper)
        if case.sdk not in clients:
            clients[case.sdk] = make_client(case.sdk, asynchronous=True)
        method = _resolve(clients[case.sdk], call.method)
        with _vcr().use_cassette(str(case.path)):
            if helper:
                async with method(**call.kwargs) as stream:
                    await stream.until_done()
                    return _compare_tools(case, mode, record, await stream.get_final_completion())
            replayed = await _acollect(method(**call.kwargs), call, case)
    except Exception as exc:
        return Outcome(case, False, describe_exception(exc), mode)
    finally:
        if own:
            await _close_async(clients)
    return _compare(case, mode, record, replayed)


async def _close_async(clients: dict[str, Any]) -> None:
    for client in clients.values():
        close = getattr(client, "close", None) or getattr(getattr(client, "_client", None), "aclose", None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result


# -- the whole corpus -----------------------------------------------------------------------


@dataclass
class Run:
    """The outcomes of a whole folder, and how long they took."""

    root: Path
    cases: list[Case]
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and not o.skipped]


def _timed(run: Run, mode: str, work: Callable[[], list[Outcome]]) -> None:
    start = time.perf_counter()
    run.outcomes += work()
    run.seconds[mode] = time.perf_counter() - start


async def _run_async(cases: Sequence[Case], helper: bool) -> list[Outcome]:
    clients: dict[str, Any] = {}
    try:
        return [await _replay_async(c, helper=helper, clients=clients) for c in cases]
    finally:
        await _close_async(clients)


def run_all(root: Path, *, modes: Iterable[str] = MODES) -> Run:
    """Replay every case of ``root`` in each of ``modes`` (sync, async, ``stream()``)."""
    root = Path(root)
    run = Run(root, discover(root))
    wanted = set(modes)
    run.outcomes += [_skipped(c, SYNC) for c in run.cases if c.skip_reason is not None]
    runnable = [c for c in run.cases if c.skip_reason is None]
    if SYNC in wanted:
        _timed(run, SYNC, lambda: [replay(c) for c in runnable])
    if ASYNC in wanted:
        chosen = [c for c in runnable if ASYNC in c.modes]
        _timed(run, ASYNC, lambda: asyncio.run(_run_async(chosen, helper=False)))
    helpers = [c for c in runnable if HELPER in c.modes]
    if HELPER in wanted:
        _timed(run, HELPER, lambda: [replay(c, helper=True) for c in helpers])
    if ASYNC_HELPER in wanted:
        _timed(run, ASYNC_HELPER, lambda: asyncio.run(_run_async(helpers, helper=True)))
    return run


def _tally(run: Run, key: Callable[[Case], str]) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for case in run.cases:
        table[key(case)]["recordings"] += 1
        table[key(case)]["skipped"] += case.skip_reason is not None
    for o in run.outcomes:
        if not o.skipped:
            table[key(o.case)][f"{o.mode} {'pass' if o.ok else 'FAIL'}"] += 1
    return table


def _cells(row: Counter[str]) -> list[str]:
    cells = [str(row["recordings"]), str(row["skipped"])]
    for mode in MODES:
        passed, failed = row[f"{mode} pass"], row[f"{mode} FAIL"]
        cells.append(f"{passed}/{failed}" if passed or failed else "-")
    return cells


def _table(title: str, table: dict[str, Counter[str]]) -> list[str]:
    """One table: a row per key, columns recordings, skipped and ``passed/failed`` per replay mode."""
    headers = ["recordings", "skipped", *(f"{LABELS[mode]} ok/fail" for mode in MODES)]
    width = max([len(title), *map(len, table), len("total")]) + 2
    total: Counter[str] = Counter()
    rows = []
    for name in sorted(table, key=lambda n: (-table[n]["recordings"], n)):
        total.update(table[name])
        rows.append((name, _cells(table[name])))

    def line(name: str, cells: list[str]) -> str:
        return name.ljust(width) + "".join(c.rjust(len(h) + 2) for c, h in zip(cells, headers, strict=True))

    rule = "-" * len(line(title, headers))
    return [line(title, headers), rule, *(line(n, c) for n, c in rows), rule, line("total", _cells(total))]


def _category(detail: str) -> str:
    """A failure detail with per-file specifics removed, to group failures of one cause."""
    head = re.split(r"; [-+~] |: recorded |, missing from|: not recorded", detail, maxsplit=1)[0]
    for noisy in ("http://127.0.0.1:9", "(POST) ", "(GET) "):
        head = head.replace(noisy, "")
    return head[:200]


def render(run: Run) -> str:
    """The report of a run: tables per provider, endpoint and kind, skips, failures with details."""
    total = len(run.cases)
    seconds = ", ".join(f"{LABELS[m]} {s:.1f}s" for m, s in run.seconds.items())
    lines = [f"vcr-ext conformance: {run.root} ({total} recordings; {seconds})", ""]
    for title, key in (
        ("provider", lambda c: c.provider),
        ("endpoint (as recorded)", lambda c: c.endpoint or "(none)"),
        ("kind -> client call", lambda c: f"{c.kind} -> {c.client_call or '-'}"),
    ):
        lines += [*_table(title, _tally(run, key)), ""]
    skipped = [o for o in run.outcomes if o.skipped]
    lines.append(f"skipped: {len(skipped)}")
    lines += [f"  {o.case.name}: {o.detail}" for o in skipped]
    failures = run.failures
    passed = sum(1 for o in run.outcomes if o.ok)
    lines += ["", f"replays passed: {passed}, failed: {len(failures)}, skipped: {len(skipped)}"]
    if failures:
        lines += ["", "failures by cause:"]
        groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
        for o in failures:
            groups[(o.case.kind, o.mode, _category(o.detail))].append(o)
        for (kind, mode, cause), outcomes in sorted(groups.items(), key=lambda g: -len(g[1])):
            lines.append(f"  [{len(outcomes)}] {kind} ({LABELS[mode]}): {cause}")
        lines += ["", "failures:"]
        lines += [f"  {o.case.name} [{LABELS[o.mode]}] {o.case.kind}: {o.detail}" for o in failures]
    return "\n".join(lines) + "\n"


def report(root: Path, *, modes: Iterable[str] = MODES) -> str:
    """Replay the whole folder and return the printed report."""
    return render(run_all(root, modes=modes))


def default_root() -> Path:
    """``$VCR_EXT_CORPUS/llama-stack-2025-10`` (``$VCR_EXT_CORPUS`` defaults to ``../shared/corpus``)."""
    base = os.environ.get("VCR_EXT_CORPUS") or str(Path.cwd().parent / "shared" / "corpus")
    return Path(base) / CORPUS_NAME
