"""The cases of a conformance run: each recording of a folder, what it is, which client call replays it."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import canonical
from .. import record as record_format
from ..formats import llamastack

CORPUS_NAME = "llama-stack-2025-10"

# Modes of one replay.
SYNC, ASYNC, HELPER, ASYNC_HELPER = "sync", "async", "helper", "async-helper"
MODES = (SYNC, ASYNC, HELPER, ASYNC_HELPER)
# How the report names them: the helper is ``client.chat.completions.stream()``.
LABELS = {SYNC: "sync", ASYNC: "async", HELPER: "stream()", ASYNC_HELPER: "async stream()"}

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
    failed_call: bool = False  # the recorded call failed (the later recorder's ``is_exception``)

    @property
    def sdk(self) -> str:
        """``"openai"``, ``"ollama"``, ``"httpx"`` (raw HTTP records), or ``""`` if no client replays it."""
        return self.client_call.split(".", 1)[0] if self.client_call else ""

    @property
    def modes(self) -> tuple[str, ...]:
        """The replay modes that apply: sync, async, and ``stream()`` for chat streams with tool calls."""
        if self.skip_reason is not None:
            return (SYNC,)
        modes = [SYNC, ASYNC] if self.sdk else [SYNC]
        # stream() accumulates tool calls; a call that failed has none to compare.
        if self.kind == "chat-stream" and self.has_tool_calls and not self.failed_call:
            modes += [HELPER, ASYNC_HELPER]
        return tuple(modes)


def load_record(path: Path) -> Any:
    """One recording as llama-stack's reader sees it (``id_normalization_mapping`` applied).

    A client replaying such a recording only ever saw the normalized ids (``file-1``), so
    the call it makes carries those, not the real ids the file holds.
    """
    with path.open("rb") as f:
        record = json.load(f)
    return llamastack.apply_id_mapping(record) if isinstance(record, dict) else record


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


# route -> (kind, client call); a kind in _STREAMING becomes "<kind>-stream" when the call streamed.
_CALLS = {
    "/v1/chat/completions": ("chat", "openai.chat.completions.create"),
    "/v1/completions": ("completion", "openai.completions.create"),
    "/v1/embeddings": ("embeddings", "openai.embeddings.create"),
    "/v1/models": ("models", "openai.models.list"),
    "/v1/responses": ("responses", "openai.responses.create"),
    "/api/generate": ("ollama-generate", "ollama.generate"),
    "/api/chat": ("ollama-chat", "ollama.chat"),
    "/api/embed": ("ollama-embed", "ollama.embed"),
    "/api/embeddings": ("ollama-embeddings", "ollama.embeddings"),
    "/api/ps": ("ollama-ps", "ollama.ps"),
    "/api/tags": ("ollama-tags", "ollama.list"),
    "/api/pull": ("ollama-pull", "ollama.pull"),
}
_STREAMING = frozenset({"chat", "completion", "responses", "ollama-generate", "ollama-chat", "ollama-pull"})


def _kind(route: str, body: dict[str, Any], stream: bool) -> tuple[str, str]:
    # The route the call really used: llama-stack filed chat calls under /v1/completions
    # and ollama's embed() under /api/embeddings (see llamastack.wire_request).
    _, route, _ = llamastack.wire_request("POST", route, body)
    kind, call = _CALLS.get(route, ("", ""))
    return (f"{kind}-stream" if stream and kind in _STREAMING else kind), call


@functools.cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def classify(record: Any) -> tuple[str, str, str, str | None]:
    """``(endpoint, kind, client_call, skip_reason)`` of one parsed record."""
    request = record.get("request") if isinstance(record, dict) else None
    if not isinstance(request, dict):
        return "", "invalid", "", "not a recording: no request object"
    url = str(request.get("url") or request.get("endpoint") or "")
    endpoint = str(request.get("endpoint") or urlsplit(url).path)
    if not record_format.is_http(record):
        endpoint = "(tool)"
    reason = llamastack.not_replayable(record)
    if reason is not None:
        return endpoint, "tool-invocation" if endpoint == "(tool)" else "failed-call", "", reason
    route = canonical.route(endpoint)
    if llamastack.is_raw_http(request):
        return endpoint, "http", "httpx.request", None
    body = request.get("body")
    body = body if isinstance(body, dict) else {}
    response = record.get("response")
    streaming = bool(body.get("stream")) or bool(isinstance(response, dict) and response.get("is_streaming"))
    kind, call = _kind(route, body, streaming)
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
            reason = f"unreadable: {type(err).__name__}: {first_line(str(err))}"
            cases.append(Case(path, "unknown", "", "invalid", "", reason, name))
            continue
        endpoint, kind, call, skip = classify(record)
        request = record.get("request") if isinstance(record, dict) else None
        url = str(request.get("url") or "") if isinstance(request, dict) else ""
        provider = provider_of(url) if url else (str(request.get("provider")) if request else "unknown")
        response = record.get("response") if isinstance(record, dict) else None
        tools = kind == "chat-stream" and _has_tool_calls(response)
        failed = isinstance(response, dict) and bool(response.get("is_exception"))
        cases.append(Case(path, provider, endpoint, kind, call, skip, name, tools, failed))
    return cases


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def default_root() -> Path:
    """``$VCR_EXT_CORPUS/llama-stack-2025-10`` (``$VCR_EXT_CORPUS`` defaults to ``../shared/corpus``)."""
    base = os.environ.get("VCR_EXT_CORPUS") or str(Path.cwd().parent / "shared" / "corpus")
    return Path(base) / CORPUS_NAME
