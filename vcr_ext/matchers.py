"""vcrpy matchers built on :mod:`vcr_ext.canonical`, each with a key so a cassette can be indexed.

A matcher here is a vcrpy matcher (``matcher(r1, r2)`` raises ``AssertionError`` saying
how two requests differ) that also has ``key(request)``: two requests match exactly when
their keys are equal, which lets :class:`vcr_ext.cassette.IndexedCassette` find a
request's response with one dict lookup instead of trying every recorded request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import vcr.matchers
from vcr.request import Request

from . import canonical, client_ids, explain
from .interactions import body_memo

KeyFunction = Callable[[Request], Hashable]


class KeyedMatcher:
    """A vcrpy matcher defined by a key: two requests match when their keys are equal."""

    def __init__(self, name: str, key: KeyFunction, explain: Callable[[Request, Request], str]) -> None:
        self.__name__ = name
        self.key = key
        self._explain = explain

    def __call__(self, r1: Request, r2: Request) -> None:
        if self.key(r1) != self.key(r2):
            raise AssertionError(self._explain(r1, r2))

    def __repr__(self) -> str:
        return f"<vcr_ext matcher {self.__name__}>"


_ROUTE_MEMO = "_vcr_ext_route"


def route_key(request: Request) -> str:
    """The API route (``/v1/chat/completions``) and meaningful query of a request, whatever its base URL.

    Remembered on the request for its current URL: a replayed request is looked up
    twice, and vcrpy's copies of it keep the memo.
    """
    uri = request._uri
    memo = request.__dict__.get(_ROUTE_MEMO)
    if memo is not None and memo[0] is uri:
        return str(memo[1])
    key = canonical.route_key(uri)
    request.__dict__[_ROUTE_MEMO] = (uri, key)
    return key


def canonical_value(request: Request) -> Any:
    """The canonical body of a request, computed once per body object.

    A request a cassette tagged with its responses' ids (:func:`vcr_ext.client_ids.tag`)
    gets the ``client-ids`` rule too, computed once per body and version of those ids.
    """
    return _canonical(request)[0]


def _canonical(request: Request) -> list[Any]:
    """``[canonical body, key or None]`` of a request, from its memo."""
    memo = body_memo(request)
    route_ = canonical.route(request.uri)
    ids = client_ids.tag_of(request)
    if ids is None:
        slot = ("canonical", route_)
        if slot not in memo.keys:
            memo.keys[slot] = [canonical.canonical_body(memo.is_json, memo.value, route_), None]
        entry: list[Any] = memo.keys[slot]
        return entry
    slot = ("canonical+ids", route_)
    entry = memo.keys.get(slot) or [None, None, None, -1]
    if entry[2] is not ids or entry[3] != ids.version:
        version = ids.version  # read first: ids found missing while computing may turn up later
        entry = [canonical.canonical_body(memo.is_json, memo.value, route_, ids), None, ids, version]
        memo.keys[slot] = entry
    return entry


def body_key(request: Request) -> Hashable:
    """The canonical body of a request as one hashable key, computed once per body object."""
    entry = _canonical(request)
    if entry[1] is None:
        entry[1] = canonical.key_of(entry[0])
    key: Hashable = entry[1]
    return key


def _explain_route(new: Request, recorded: Request) -> str:
    return f"request {route_key(new)}, recorded {route_key(recorded)}"


def _explain_body(new: Request, recorded: Request) -> str:
    old_value, new_value = canonical_value(recorded), canonical_value(new)
    if isinstance(old_value, bytes) or isinstance(new_value, bytes):
        return f"bodies differ as bytes: request {_preview(new_value)}, recorded {_preview(old_value)}"
    model = new_value.get("model") if isinstance(new_value, dict) else None
    ids = client_ids.tag_of(recorded)

    def note(d: explain.Difference) -> str | None:
        if ids is None or d.kind != "changed":
            return None
        return client_ids.explain_change(d.path, d.recorded, d.request, old_value, ids)

    return explain.describe(
        old_value, new_value, route=f"{new.method} {canonical.route(new.uri)}", model=model, note=note
    )


def similarity(new: Request, recorded: Request) -> int:
    """How alike two request bodies are (shared canonical leaf values)."""
    return explain.similarity(canonical_value(recorded), canonical_value(new))


def _preview(key: Any, limit: int = 200) -> str:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def method_key(request: Request) -> str:
    """The HTTP method as the wire sends it: aiohttp hands vcrpy the caller's spelling (``post``)."""
    return str(request.method).upper()


def _explain_method(new: Request, recorded: Request) -> str:
    return f"request {method_key(new)}, recorded {method_key(recorded)}"


method = KeyedMatcher("method", method_key, _explain_method)
route = KeyedMatcher("route", route_key, _explain_route)
canonical_body = KeyedMatcher("canonical_body", body_key, _explain_body)

MATCHERS: dict[str, KeyedMatcher] = {m.__name__: m for m in (method, route, canonical_body)}
DEFAULT_MATCH_ON = ("method", "route", "canonical_body")

# vcrpy's own matchers whose verdict is an equality of one request attribute, so that a
# cassette matching on them can be indexed too.
_VCRPY_KEYS: dict[Callable[..., Any], KeyFunction] = {
    vcr.matchers.method: lambda r: r.method,
    vcr.matchers.scheme: lambda r: r.scheme,
    vcr.matchers.host: lambda r: r.host,
    vcr.matchers.port: lambda r: r.port,
    vcr.matchers.path: lambda r: r.path or "/",
    vcr.matchers.query: lambda r: tuple(r.query),
}


def key_function(matcher: Callable[..., Any]) -> KeyFunction | None:
    """The key function of a matcher, or ``None`` if it is not a plain equality of a key."""
    if isinstance(matcher, KeyedMatcher):
        return matcher.key
    return _VCRPY_KEYS.get(matcher)
