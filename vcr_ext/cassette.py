"""A vcrpy Cassette that finds a request's responses with one dict lookup.

This is the one place vcr_ext steps past vcrpy's public extension points, and why:
vcrpy's ``Cassette`` tries every matcher against every recorded request for each
request it plays (twice: once to ask whether it can play, once to play), which makes a
test's replay cost grow with the size of its cassette. When every matcher in
``match_on`` is an equality of a key (ours, and vcrpy's ``method``/``host``/``path``/...),
the cassette keeps ``key -> [interaction indices]`` and looks the request up instead.
Any other matcher (a user's own function) falls back to vcrpy's scan unchanged.
Everything else, record modes, play counts, saving, is vcrpy's own code.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

from vcr.cassette import Cassette
from vcr.request import Request

from .matchers import KeyFunction, key_function, similarity


class IndexedCassette(Cassette):  # type: ignore[misc]
    """``vcr.cassette.Cassette`` with an index from match key to recorded interactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = [key_function(m) for m in self._match_on]
        self._key_functions: list[KeyFunction] | None = (
            None if any(k is None for k in keys) else [k for k in keys if k is not None]
        )
        self._index: dict[tuple[Hashable, ...], list[int]] = {}

    def _key(self, request: Request) -> tuple[Hashable, ...]:
        assert self._key_functions is not None
        return tuple(k(request) for k in self._key_functions)

    def append(self, request: Request, response: dict[str, Any]) -> None:
        position = len(self.data)
        super().append(request, response)
        if self._key_functions is not None and len(self.data) > position:
            self._index.setdefault(self._key(self.data[position][0]), []).append(position)

    def _responses(self, request: Request) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._key_functions is None:
            yield from super()._responses(request)
            return
        filtered = self._before_record_request(request)
        if not filtered:
            return
        for position in self._index.get(self._key(filtered), ()):
            yield position, self.data[position][1]

    def find_requests_with_most_matches(self, request: Request) -> list[tuple[Request, list[str], list[Any]]]:
        """vcrpy's closest recorded requests, the most alike body first (for the miss message)."""
        best: list[tuple[Request, list[str], list[Any]]] = super().find_requests_with_most_matches(request)
        if len(best) > 1:
            filtered = self._before_record_request(request)
            if filtered:
                best.sort(key=lambda match: similarity(filtered, match[0]), reverse=True)
        return best

    def _new_interactions(self) -> list[tuple[Request, dict[str, Any]]]:
        if self._key_functions is None:
            result: list[tuple[Request, dict[str, Any]]] = super()._new_interactions()
            return result
        old = {self._key(request) for request, _ in self._old_interactions}
        return [(rq, rs) for rq, rs in self.data if self._key(rq) not in old]

    def _rerecorded_interactions(self) -> list[tuple[Request, dict[str, Any]]]:
        if self._key_functions is None:
            result: list[tuple[Request, dict[str, Any]]] = super()._rerecorded_interactions()
            return result
        loaded = self.data[: self._loaded_count]
        recorded = self.data[self._loaded_count :]
        if self.drop_unused_requests:
            return list(recorded)
        fresh = {self._key(request) for request, _ in recorded}
        return [(rq, rs) for rq, rs in loaded if self._key(rq) not in fresh] + list(recorded)
