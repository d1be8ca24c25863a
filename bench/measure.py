"""Measuring primitives: interleaved repeats, disk size, traced and resident peak memory, profiles."""

from __future__ import annotations

import cProfile
import gc
import json
import os
import pstats
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def interleaved(repeats: int, tasks: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run every task once per repeat, rotating who goes first.

    Interleaving spreads slow drift of the machine (thermal, other load) over all tools
    instead of charging it to whichever ran last; rotating the order does the same for
    position effects (a tool running right after another's garbage).
    """
    names = list(tasks)
    out: dict[str, list[T]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            # Collect between runs so one tool's garbage is not collected on another's clock.
            gc.collect()
            out[name].append(tasks[name]())
    return out


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``; file sizes, not blocks, so that the filesystem does not matter."""
    total = files = 0
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            total += os.stat(os.path.join(dirpath, filename)).st_size
            files += 1
    return total, files


def traced_peak(run: Callable[[], object]) -> int:
    """Peak bytes Python allocated (tracemalloc) while ``run`` ran, above what was live before.

    tracemalloc sees only allocations made through Python's allocator: memory a native
    extension (cassetter's Rust core) allocates itself is invisible to it. See :func:`rss_growth`.
    """
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rss_growth(tool: str, root: Path, units: int) -> dict[str, Any]:
    """Peak resident memory growth of a suite replay, measured in a fresh process.

    Counts native allocations too, which tracemalloc cannot; a fresh process keeps the
    other tools' cassettes and caches out of the number.
    """
    command = [sys.executable, "-m", "bench._rss_probe", tool, os.fspath(root), str(units)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "probe failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class ProfileRow:
    function: str
    ncalls: int
    tottime: float
    cumtime: float


@dataclass(frozen=True)
class Profile:
    total_s: float
    rows: list[ProfileRow]  # the recorders' own functions, by cumulative time
    by_package: dict[str, float]  # own (tottime) seconds per top-level package


_PACKAGE_MARKERS = {
    "vcr_ext": f"{os.sep}vcr_ext{os.sep}",
    "vcrpy": f"{os.sep}vcr{os.sep}",
    "cassetter": f"{os.sep}cassetter{os.sep}",
    "openai": f"{os.sep}openai{os.sep}",
    "httpx2": f"{os.sep}httpx2{os.sep}",
    "pydantic": f"{os.sep}pydantic",
    "yaml": f"{os.sep}yaml{os.sep}",
}


def _package(filename: str) -> str:
    for name, marker in _PACKAGE_MARKERS.items():
        if marker in filename:
            return name
    if filename == "~" or filename.startswith("<"):
        return "builtins"
    return "stdlib/other"


def _label(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    for marker in ("site-packages" + os.sep, "main" + os.sep):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def profile(run: Callable[[], object], packages: tuple[str, ...], top: int) -> Profile:
    """cProfile ``run``; keep the ``top`` functions of ``packages`` by cumulative time."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.runcall(run)
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = {}
    ours: list[ProfileRow] = []
    for func, (_, ncalls, tottime, cumtime, _) in raw.items():
        package = _package(func[0])
        by_package[package] = by_package.get(package, 0.0) + tottime
        if package in packages:
            ours.append(ProfileRow(_label(func), ncalls, tottime, cumtime))
    ours.sort(key=lambda row: row.cumtime, reverse=True)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    return Profile(total, ours[:top], dict(sorted(by_package.items(), key=lambda kv: -kv[1])))
