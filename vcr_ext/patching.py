"""vcrpy's HTTP patches, applied the way vcrpy does, at a smaller cost per cassette.

vcrpy builds its patches again for every cassette it opens: about 37 ``mock.patch.object``
objects (httplib, requests, urllib3, boto3, aiohttp, httpx, httpx2 ...) and, for each HTTP
library that is not installed, a failed ``import`` that searches all of ``sys.path``. On a
cassette of a few interactions that was a third of the time ``use_cassette`` took to
enter. :class:`PatcherBuilder` is vcrpy's own ``CassettePatcherBuilder`` (same targets,
same replacements, same order) with two changes:

- each patch is a plain attribute swap that restores exactly what ``mock.patch.object``
  restores (the object's own attribute, or none when the value was inherited), without
  ``mock``'s generality (``autospec``, ``new_callable``, ...) that these patches never use;
- the subclasses of vcrpy's connection stubs that point at the cassette (eight per
  cassette, ~17 us each to create) are taken from a pool and returned to it once the
  cassette's patches are undone, instead of being made anew for every cassette; a
  returned one points at no cassette, so it keeps none alive;
- a library found missing is not searched for again while ``sys.path`` and
  ``sys.meta_path`` stay as they were: during the build its top-level name maps to
  ``None`` in ``sys.modules``, which makes vcrpy's ``import`` fail at once, exactly as
  the search would have (with ``ImportError``), and is removed right after.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from vcr.patch import CassettePatcherBuilder

# Top-level names of every optional library vcrpy's builder imports.
_OPTIONAL = (
    "httplib2",
    "tornado",
    "httpx_curl_cffi",
    "pyreqwest",
    "botocore",
    "aiohttp",
    "requests",
    "urllib3",
    "httpx",
    "httpx2",
)

_MISSING = object()
_absent_lock = threading.Lock()
_absent: dict[tuple[object, ...], tuple[str, ...]] = {}


def _absent_libraries() -> tuple[str, ...]:
    """The optional libraries that cannot be imported with today's import path."""
    key = (tuple(sys.path), tuple(id(finder) for finder in sys.meta_path))
    found = _absent.get(key)
    if found is None:
        missing = []
        for name in _OPTIONAL:
            if name in sys.modules:
                continue
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            if spec is None:
                missing.append(name)
        found = tuple(missing)
        with _absent_lock:
            _absent.clear()  # one import path at a time is all a process uses
            _absent[key] = found
    return found


@contextlib.contextmanager
def _known_missing(names: Iterable[str]) -> Iterator[None]:
    """``import name`` fails at once for each of ``names`` (all missing) inside the block."""
    blocked = []
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]
            blocked.append(name)
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, _MISSING) is None:
                del sys.modules[name]


class SetAttribute:
    """Set ``obj.name`` on entering; on leaving restore it as ``mock.patch.object`` does."""

    __slots__ = ("_name", "_obj", "_own", "_value")

    def __init__(self, obj: Any, name: str, value: Any) -> None:
        self._obj, self._name, self._value = obj, name, value
        self._own: Any = _MISSING

    def __enter__(self) -> Any:
        # mock restores the object's own attribute, or deletes the patch when the value
        # came from a class (a method of a base class, a module's class attribute).
        self._own = vars(self._obj).get(self._name, _MISSING)
        setattr(self._obj, self._name, self._value)
        return self._value

    def __exit__(self, *exc_info: object) -> None:
        if self._own is _MISSING:
            delattr(self._obj, self._name)
        else:
            setattr(self._obj, self._name, self._own)
        self._own = _MISSING


_pool_lock = threading.Lock()
_pool: dict[type, list[type]] = {}


class PatcherBuilder(CassettePatcherBuilder):  # type: ignore[misc]
    """vcrpy's ``CassettePatcherBuilder`` with cheaper patches (see the module's docstring).

    Call :meth:`release` once the patches it built are undone.
    """

    def __init__(self, cassette: Any) -> None:
        super().__init__(cassette)
        self._taken: list[tuple[type, type]] = []

    def _build_cassette_subclass(self, base_class: type) -> type:
        with _pool_lock:
            free = _pool.get(base_class)
            subclass = free.pop() if free else None
        if subclass is None:
            made: type = super()._build_cassette_subclass(base_class)
            subclass = made
        else:
            subclass.cassette = self._cassette  # type: ignore[attr-defined]
            subclass.__name__ = subclass.__qualname__ = f"{base_class.__name__}{self._cassette._path}"
        self._taken.append((base_class, subclass))
        return subclass

    def release(self) -> None:
        """Give the connection subclasses back to the pool: no patch refers to them any more."""
        for _, subclass in self._taken:
            subclass.cassette = None  # type: ignore[attr-defined]
        with _pool_lock:
            for base_class, subclass in self._taken:
                _pool.setdefault(base_class, []).append(subclass)
        self._taken.clear()

    def build(self) -> Iterator[Any]:
        # Built eagerly, inside the block, so that every failed import happens in it.
        with _known_missing(_absent_libraries()):
            patchers = list(super().build())
        return iter(patchers)

    def _build_patcher(self, obj: Any, patched_attribute: str, replacement_class: Any) -> SetAttribute | None:
        if not hasattr(obj, patched_attribute):
            return None
        return SetAttribute(
            obj, patched_attribute, self._recursively_apply_get_cassette_subclass(replacement_class)
        )
