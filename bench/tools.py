"""The recorders under comparison, each behind one interface: open a cassette in a record mode.

Every tool is configured the way its docs say and as a test suite would configure it
once (a ``vcr.VCR``, a ``Cassetter``, a ``vcr_ext.VCR``), and every tool matches a
request on the same things: method, URL path and JSON body, not host or port. That is
what lets replay run against a dead port, and the body is what tells the big
cassette's requests apart (they all go to ``/v1/chat/completions``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cassetter
import openai
import vcr

import vcr_ext

RECORD = "once"
REPLAY = "none"

# vcrpy's own matchers; "body" parses JSON bodies before comparing them.
_VCRPY_MATCH_ON = ("method", "path", "body")
_CASSETTER_MATCH_ON: list[Any] = ["method", "uri", "json_body"]
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]+")

Opener = Callable[[Path, str], AbstractContextManager[Any]]


def _path_only(uri: str) -> str:
    """cassetter's documented way to match across base URLs: normalise the URI before comparing."""
    return _ORIGIN.sub("", uri)


@dataclass(eq=False)  # identity: tools are dict keys
class Tool:
    """One recorder: its name in reports, its cassette naming, and how it opens a cassette."""

    name: str
    suffix: str  # "" for vcr_ext, whose cassette is a directory
    factory: Callable[[str], Callable[[str], AbstractContextManager[Any]]]
    # Clients of its own (base URL -> client), for the sdk-only row; recorders use the shared ones.
    record_client: Callable[[str], openai.OpenAI] | None = None
    replay_client: Callable[[str], openai.OpenAI] | None = None
    has_cassettes: bool = True  # False: nothing on disk to size, load or replay in another process
    _by_mode: dict[str, Callable[[str], AbstractContextManager[Any]]] = field(
        default_factory=dict, repr=False
    )

    def cassette_path(self, root: Path, name: str) -> Path:
        return root / self.name / f"{name}{self.suffix}"

    def open(self, path: Path, mode: str) -> AbstractContextManager[Any]:
        """Enter this to have ``path`` loaded and HTTP patched; leave it to save and unpatch."""
        # Built once per mode, as a conftest builds its recorder once for the whole suite.
        use = self._by_mode.get(mode)
        if use is None:
            use = self._by_mode[mode] = self.factory(mode)
        return use(str(path))


def vcrpy_recorder(mode: str, serializer: str) -> vcr.VCR:
    """The ``vcr.VCR`` of the vcrpy rows (bench.scale records vcrpy through it with its own persister)."""
    return vcr.VCR(record_mode=mode, match_on=_VCRPY_MATCH_ON, serializer=serializer)


def _vcrpy(serializer: str) -> Callable[[str], Callable[[str], AbstractContextManager[Any]]]:
    def factory(mode: str) -> Callable[[str], AbstractContextManager[Any]]:
        return vcrpy_recorder(mode, serializer).use_cassette  # type: ignore[no-any-return]

    return factory


def cassetter_recorder(mode: str) -> cassetter.Cassetter:
    """The ``Cassetter`` of the cassetter row (bench.scale also builds cassettes with it)."""
    return cassetter.Cassetter(record_mode=mode, match_on=_CASSETTER_MATCH_ON, uri_normalizer=_path_only)


def _cassetter(mode: str) -> Callable[[str], AbstractContextManager[Any]]:
    return cassetter_recorder(mode).use_cassette


def _vcr_ext(mode: str) -> Callable[[str], AbstractContextManager[Any]]:
    # Defaults already match on method, API route and canonical JSON body.
    return vcr_ext.VCR(record_mode=mode).use_cassette  # type: ignore[no-any-return]


BASELINE = "vcrpy-yaml"


def all_tools() -> list[Tool]:
    """The tools in report order; the first is the baseline every ratio is relative to."""
    return [
        Tool(BASELINE, ".yaml", _vcrpy("yaml")),
        Tool("vcrpy-json", ".json", _vcrpy("json")),
        Tool("cassetter", ".yaml", _cassetter),
        Tool("vcr_ext", "", _vcr_ext),
    ]
