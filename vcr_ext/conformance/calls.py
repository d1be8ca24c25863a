"""The client call that replays a recording: the SDK method, its keyword arguments, and the clients."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

from .. import canonical
from .cases import Case

OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
OLLAMA_HOST = "http://127.0.0.1:9"
API_KEY = "sk-conformance"

# SDK keyword arguments that are not request body fields.
_OPENAI_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


@dataclass(frozen=True)
class Call:
    """A client method (dotted, from the client) and its keyword arguments."""

    method: str
    kwargs: dict[str, Any]
    stream: bool


def resolve(client: Any, dotted: str) -> Any:
    """The client attribute at ``dotted`` (``chat.completions.create``)."""
    target = client
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


@functools.cache
def _parameters(sdk: str, dotted: str) -> frozenset[str]:
    """The keyword parameters of a client method, read off the SDK's own signature."""
    method = resolve(CLIENTS.sync(sdk), dotted)
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
        elif key == "extra_query" and isinstance(value, dict):
            kwargs[key] = value  # llama-stack records it as an argument: it is sent as the query
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
    request = record["request"]
    method = case.client_call.split(".", 1)[1]
    if case.sdk == "httpx":
        path = canonical.route(str(request.get("url") or request.get("endpoint") or ""))
        url = OPENAI_BASE_URL.removesuffix("/v1") + path
        return Call(method, {"method": request["method"], "url": url, "json": request.get("payload")}, False)
    body = request.get("body")
    body = dict(body) if isinstance(body, dict) else {}
    stream = bool(body.get("stream"))
    if case.sdk == "ollama":
        return Call(method, _ollama_kwargs(method, body), stream)
    if helper:
        method = "chat.completions.stream"
        body.pop("stream", None)
    return Call(method, _openai_kwargs(method, body), stream)


class _Clients:
    """The sync clients, shared by every sync replay (async clients belong to one event loop each)."""

    def __init__(self) -> None:
        self._sync: dict[str, Any] = {}

    def sync(self, sdk: str) -> Any:
        if sdk not in self._sync:
            self._sync[sdk] = make_client(sdk, asynchronous=False)
        return self._sync[sdk]


def make_client(sdk: str, *, asynchronous: bool) -> Any:
    """An openai, ollama or httpx client (sync or async) whose base URL nothing listens on."""
    if sdk == "httpx":
        import httpx

        return httpx.AsyncClient() if asynchronous else httpx.Client()
    if sdk == "ollama":
        import ollama

        return (ollama.AsyncClient if asynchronous else ollama.Client)(host=OLLAMA_HOST)
    import openai

    cls: Any = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=OPENAI_BASE_URL, api_key=API_KEY, max_retries=0)


CLIENTS = _Clients()
