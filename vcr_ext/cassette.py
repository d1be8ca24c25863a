"""A vcrpy Cassette that finds a request's responses with dict lookups instead of a scan.

This is the one place vcr_ext steps past vcrpy's public extension points, and why:
vcrpy's ``Cassette`` tries every matcher against every recorded request for each
request it plays (twice: once to ask whether it can play, once to play), which makes a
test's replay cost grow with the size of its cassette. When every matcher in
``match_on`` is an equality of a key (ours, and vcrpy's ``method``/``host``/``path``/...),
the cassette keeps ``key -> [interaction positions]`` and looks the request up instead.
Any other matcher (a user's own function) falls back to vcrpy's scan unchanged.
Everything else, record modes, play counts, saving, is vcrpy's own code.

With the ``canonical_body`` matcher, a request is first looked up by its exact body
bytes, which is what a client replaying a recording sends in nearly every case, so the
canonical form of a body (the costly key) is computed only when no recording has the
very same bytes. A request thus plays the first unplayed recording with its exact
bytes, and failing that the first with its canonical form.

Every request the cassette filters (recorded or asked for) is tagged with the
cassette's :class:`~vcr_ext.client_ids.ResponseIds`, so that the canonical form knows
which ids the recorded responses hold (the ``client-ids`` rule).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from vcr.cassette import Cassette, CassetteContextDecorator
from vcr.record_mode import RecordMode
from vcr.request import Request

from . import client_ids, run, usage
from .interactions import ORIGIN_KEY, origin_of
from .matchers import KeyFunction, canonical_body, key_function, similarity
from .patching import PatcherBuilder
from .persister import DROPPED_KEY

Key = tuple[Hashable, ...]


def _exact_body(request: Request) -> Hashable:
    body = request._body
    if body is None or isinstance(body, bytes):
        return body
    # A stub handed over chunks or an object (aiohttp's json=): only its canonical form
    # compares, so the exact key is one nothing else equals.
    return object()


class SafeContextDecorator(CassetteContextDecorator):  # type: ignore[misc]
    """vcrpy's ``use_cassette`` context, which restores every patched library even when the save raises.

    vcrpy's ``__exit__`` saves the cassette and only then closes the generator holding
    the patches: a save that raises (a secret found, a full disk, a bad file) would
    leave httpx, requests, ... patched by a dead cassette for the rest of the process.
    """

    def _patch_generator(self, cassette: Cassette) -> Iterator[Cassette]:
        # vcrpy's own generator, with the cheaper builder of vcr_ext.patching.
        with contextlib.ExitStack() as exit_stack:
            builder = PatcherBuilder(cassette)
            exit_stack.callback(builder.release)  # runs last, once every patch is undone
            for patcher in builder.build():
                exit_stack.enter_context(patcher)
            yield cassette

    def __exit__(self, *exc_info: Any) -> None:
        cassette: Any = getattr(self, "_CassetteContextDecorator__cassette", None)
        try:
            super().__exit__(*exc_info)
        except BaseException:
            # vcrpy's private (name-mangled) generator of the patches.
            finish: Any = getattr(self, "_CassetteContextDecorator__finish", None)
            self._CassetteContextDecorator__finish = None
            self._CassetteContextDecorator__cassette = None
            if finish is not None:
                finish.close()  # runs the ExitStack that unpatches
            raise
        finally:
            # After the patches are undone, so that nothing here can leave them in place.
            if cassette is not None and usage.enabled():
                usage.note(cassette)


class IndexedCassette(Cassette):  # type: ignore[misc]
    """``vcr.cassette.Cassette`` with an index from match key to recorded interactions.

    Safe to share between threads: a request that can play claims its recording under
    a lock, so two threads asking for the same request at once each get one of its
    recordings (or, when none is left, record), never the same one twice.
    """

    @classmethod
    def use(cls, **kwargs: Any) -> SafeContextDecorator:
        decorator: SafeContextDecorator = SafeContextDecorator.from_args(cls, **kwargs)
        return decorator

    @classmethod
    def use_arg_getter(cls, arg_getter: Callable[[], dict[str, Any]]) -> SafeContextDecorator:
        return SafeContextDecorator(cls, arg_getter)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock = threading.RLock()
        # Recordings claimed by can_play_response_for, by thread, until play_response plays them.
        self._claims = threading.local()
        self._claimed: set[int] = set()
        self._loading = False
        super().__init__(*args, **kwargs)
        self._ids = client_ids.ResponseIds(lambda: [response for _, response in self.data])
        user_filter: Callable[[Request], Any] = self.__dict__["_before_record_request"]  # set by vcrpy
        self._before_record_request = self._tagging(user_filter)
        keys = [key_function(m) for m in self._match_on]
        self._key_functions: list[KeyFunction] | None = (
            None if any(k is None for k in keys) else [k for k in keys if k is not None]
        )
        # The cheap keys (method, route, ...); the body's exact bytes or canonical form come last.
        self._cheap = [key_function(m) for m in self._match_on if m is not canonical_body]
        self._canonical = canonical_body in self._match_on
        self._exact: dict[Key, list[int]] = {}
        self._by_canonical: dict[Key, list[int]] | None = None

    def _tagging(self, before_record_request: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """The user's request filter, then the tag of this cassette's response ids on what it returns.

        vcrpy runs the filter on every request it stores, plays or explains, so every
        request the matchers see here is tagged.
        """

        def filtered(request: Request) -> Any:
            result = before_record_request(request)
            if isinstance(result, Request):
                client_ids.tag(result, self._ids)
            return result

        return filtered

    def _key(self, request: Request) -> Key:
        assert self._key_functions is not None
        return tuple(k(request) for k in self._key_functions)

    def _cheap_key(self, request: Request) -> Key:
        return tuple(k(request) for k in self._cheap if k is not None)

    def _exact_key(self, request: Request) -> Key:
        if not self._canonical:
            return self._key(request)
        return (*self._cheap_key(request), _exact_body(request))

    def _canonical_index(self) -> dict[Key, list[int]]:
        if self._by_canonical is None:
            self._by_canonical = {}
            for position, (request, _) in enumerate(self.data):
                self._by_canonical.setdefault(self._key(request), []).append(position)
        return self._by_canonical

    @property
    def write_protected(self) -> bool:
        """vcrpy's rule, except that ``once`` keeps recording into a cassette this run created.

        So tests of several pytest-xdist workers sharing one new cassette all record
        their requests, instead of every worker but the first being refused.
        """
        if self.record_mode == RecordMode.ONCE and self.rewound and run.has_mark(self._path, run.CREATED):
            return False
        protected: bool = super().write_protected
        return protected

    def can_play_response_for(self, request: Request) -> bool:
        with self._lock:
            if self.record_mode == RecordMode.ALL or not (self.rewound or self.allow_playback_repeats):
                return False
            # _responses applies the before_record_request filters itself.
            for position, _ in self._responses(request):
                if self.allow_playback_repeats or (
                    self.play_counts[position] == 0 and position not in self._claimed
                ):
                    if not self.allow_playback_repeats:
                        self._claimed.add(position)
                        self._claims.__dict__.setdefault("by_request", {})[id(request)] = position
                    return True
            return False

    def play_response(self, request: Request) -> dict[str, Any]:
        with self._lock:
            claims: dict[int, int] = self._claims.__dict__.get("by_request", {})
            position = claims.pop(id(request), None)
            if position is None:
                response: dict[str, Any] = super().play_response(request)
                return response
            self._claimed.discard(position)
            loaded_request, response = self.data[position]
            if position < self._loaded_count and self.play_counts[position] == 0:
                self._played_interactions.append((loaded_request, response))
            self.play_counts[position] += 1
            return response

    def __contains__(self, request: Request) -> bool:
        with self._lock:
            for position, _ in self._responses(request):
                if self.allow_playback_repeats or (
                    self.play_counts[position] == 0 and position not in self._claimed
                ):
                    return True
            return False

    def _persist(self, cassette_dict: dict[str, Any]) -> None:
        # Tell the persister which loaded recordings vcrpy no longer holds (replaced in
        # ``all`` mode, unused with drop_unused_requests): only those may leave the disk.
        # A response changed since it was loaded is saved as a new recording: its old one goes.
        kept = {id(origin_of(r)) for r in cassette_dict["responses"]}
        dropped = [
            r[ORIGIN_KEY]
            for _, r in self._old_interactions
            if ORIGIN_KEY in r and id(r[ORIGIN_KEY]) not in kept
        ]
        super()._persist({**cassette_dict, DROPPED_KEY: dropped} if dropped else cassette_dict)

    def _load(self) -> None:
        self._loading = True
        try:
            super()._load()
        finally:
            self._loading = False
        # vcrpy keeps the loaded requests as they were before the filter: compared with the
        # stored ones when saving, they need the same tag.
        for request, _ in self._old_interactions:
            client_ids.tag(request, self._ids)

    def append(self, request: Request, response: dict[str, Any]) -> None:
        with self._lock:
            self._append(request, response)

    def _append(self, request: Request, response: dict[str, Any]) -> None:
        position = len(self.data)
        if self._loading:
            # vcrpy's append without its deep copy, which guards a live response the
            # client goes on to use: a loaded one was built by the persister for this
            # cassette alone, and copying every chunk of every stream made loads slower.
            filtered = self._before_record_request(request)
            loaded = self._before_record_response(response) if filtered else None
            if loaded is not None:
                self.data.append((filtered, loaded))
        else:
            super().append(request, response)
        if self._key_functions is None or len(self.data) == position:
            return
        if self._ids.add(self.data[position][1]):
            # An id a request's key took for the client's own turned up in a response.
            self._by_canonical = None
        stored = self.data[position][0]
        self._exact.setdefault(self._exact_key(stored), []).append(position)
        if self._by_canonical is not None:
            self._by_canonical.setdefault(self._key(stored), []).append(position)

    def _responses(self, request: Request) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._key_functions is None:
            yield from super()._responses(request)
            return
        filtered = self._before_record_request(request)
        if not filtered:
            return
        exact = self._exact.get(self._exact_key(filtered), [])
        for position in exact:
            yield position, self.data[position][1]
        if not self._canonical:
            return
        # Only reached when no exact recording was left to play.
        for position in self._canonical_index().get(self._key(filtered), ()):
            if position not in exact:
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
