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

from . import canonical
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


def route_key(request: Request) -> str:
    """The API route of a request (``/v1/chat/completions``), whatever its base URL."""
    return canonical.route(request.uri)


def body_key(request: Request) -> Hashable:
    """The canonical form of a request body, computed once per body object."""
    memo = body_memo(request)
    key = memo.keys.get("body")
    if key is None:
        key = memo.keys["body"] = canonical.body_key(memo.is_json, memo.value)
    return key


def _explain_route(r1: Request, r2: Request) -> str:
    return f"{route_key(r1)} != {route_key(r2)}"


def _explain_body(r1: Request, r2: Request) -> str:
    return f"{_preview(body_key(r1))} != {_preview(body_key(r2))}"


def _preview(key: Any, limit: int = 200) -> str:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


route = KeyedMatcher("route", route_key, _explain_route)
canonical_body = KeyedMatcher("canonical_body", body_key, _explain_body)

MATCHERS: dict[str, KeyedMatcher] = {m.__name__: m for m in (route, canonical_body)}
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
