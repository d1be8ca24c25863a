"""Which recordings the tests of a run played: for ``--vcr-ext-unused`` and ``vcr-ext prune``.

Off unless the pytest option turns it on: then each cassette, as it closes, adds what it
loaded and what it played to this process's tally (a cassette several tests open is one
entry, a recording used by any of them is used). pytest-xdist workers send their tally
to the controller, which merges them, reports the recordings no test played, and keeps
the result in pytest's cache for ``vcr-ext prune``.

A recording is named by its file and its index in the file (``None`` for a file of one
record), with the file's size and modification time when it was loaded, so that prune
never removes a recording from a file that changed since the run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .interactions import ORIGIN_KEY, Origin

CACHE_KEY = "vcr_ext/usage"

_enabled = False
_lock = threading.Lock()
# cassette path -> recording key -> its description; cassette path -> keys played
_loaded: dict[str, dict[str, dict[str, Any]]] = {}
_played: dict[str, set[str]] = {}


@dataclass(frozen=True)
class Recording:
    """One recording of a cassette: its file, its index in the file, and the file as it was loaded."""

    cassette: str
    file: str
    index: int | None
    size: int
    mtime_ns: int


def enable() -> None:
    """Start noting what every cassette closed from now on loaded and played."""
    global _enabled
    _enabled = True


def enabled() -> bool:
    return _enabled


def note(cassette: Any) -> None:
    """Add what a closing cassette (a vcrpy ``Cassette`` loaded by vcr_ext) loaded and played."""
    if not _enabled:
        return
    path = os.path.realpath(os.fspath(cassette._path))
    stamps: dict[str, os.stat_result | None] = {}
    loaded: dict[str, dict[str, Any]] = {}
    played: set[str] = set()
    for position in range(cassette._loaded_count):
        origin = cassette.data[position][1].get(ORIGIN_KEY)
        if not isinstance(origin, Origin) or origin.source is None:
            continue
        file = os.path.realpath(origin.source)
        if file not in stamps:
            try:
                stamps[file] = os.stat(file)
            except OSError:
                stamps[file] = None
        stat = stamps[file]
        if stat is None:
            continue
        key = f"{file}#{'' if origin.index is None else origin.index}"
        loaded[key] = {
            "file": file,
            "index": origin.index,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        if cassette.play_counts[position]:
            played.add(key)
    with _lock:
        _loaded.setdefault(path, {}).update(loaded)
        _played.setdefault(path, set()).update(played)


def snapshot() -> dict[str, Any]:
    """This process's tally as JSON values."""
    with _lock:
        return {
            path: {"recordings": dict(recordings), "played": sorted(_played.get(path, ()))}
            for path, recordings in _loaded.items()
        }


def merge(tallies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One tally of several processes' (a recording played in any of them is played)."""
    merged: dict[str, Any] = {}
    for tally in tallies:
        for path, entry in tally.items():
            into = merged.setdefault(path, {"recordings": {}, "played": []})
            into["recordings"].update(entry["recordings"])
            into["played"] = sorted(set(into["played"]) | set(entry["played"]))
    return merged


def unused(tally: dict[str, Any]) -> list[Recording]:
    """The recordings of a tally that no test played, by cassette, file and index."""
    found = []
    for path, entry in sorted(tally.items()):
        played = set(entry["played"])
        for key, rec in entry["recordings"].items():
            if key not in played:
                found.append(Recording(path, rec["file"], rec["index"], rec["size"], rec["mtime_ns"]))
    return sorted(found, key=lambda r: (r.cassette, r.file, -1 if r.index is None else r.index))


def describe(recording: Recording) -> str:
    """``file`` or ``file[index]``, relative to the current directory when inside it."""
    file = (
        os.path.relpath(recording.file) if recording.file.startswith(os.getcwd() + os.sep) else recording.file
    )
    return file if recording.index is None else f"{file}[{recording.index}]"
