"""Measuring primitives: interleaved repeats, disk size, traced and resident peak memory, profiles."""

from __future__ import annotations

import cProfile
import gc
import json
import os
import pstats
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def interleaved(
    repeats: int,
    tasks: Mapping[str, Callable[[], T]],
    budget_s: float | None = None,
    repeats_of: Mapping[str, int] | None = None,
) -> dict[str, list[T]]:
    """Run every task once per repeat, rotating who goes first.

    Interleaving spreads slow drift of the machine (thermal, other load) over all tools
    instead of charging it to whichever ran last; rotating the order does the same for
    position effects (a tool running right after another's garbage). A task that has
    already used ``budget_s`` of wall time is not repeated again (it always runs once):
    that keeps a tool taking a minute per run from eating the whole run's time limit.
    ``repeats_of`` caps some tasks at fewer repeats than ``repeats``.
    """
    names = list(tasks)
    out: dict[str, list[T]] = {name: [] for name in names}
    spent = dict.fromkeys(names, 0.0)
    for r in range(repeats):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            if budget_s is not None and r > 0 and spent[name] >= budget_s:
                continue
            if repeats_of is not None and r >= repeats_of.get(name, repeats):
                continue
            # Collect between runs so one tool's garbage is not collected on another's clock.
            gc.collect()
            start = time.perf_counter()
            out[name].append(tasks[name]())
            spent[name] += time.perf_counter() - start
    return out


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``; file sizes, not blocks, so that the filesystem does not matter."""
    total = files = 0
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            total += os.stat(os.path.join(dirpath, filename)).st_size
            files += 1
    return total, files


def memory_in_child(tool: str, root: Path, units: int) -> dict[str, Any]:
    """Peak memory of a suite replay measured by ``bench._memory_probe`` in a fresh process.

    Two numbers: tracemalloc's peak (what the brief asks for, but it sees only
    allocations made through Python's allocator, not what cassetter's Rust core
    allocates itself) and the growth of peak resident memory (VmHWM), which sees both.
    """
    return in_child("bench._memory_probe", tool, os.fspath(root), str(units))


def in_child(module: str, *args: str) -> dict[str, Any]:
    """Run ``python -m module args...`` in a fresh process; the JSON object its last stdout line holds.

    A failure comes back as ``{"error": <its stderr>}`` instead of raising, so that one
    tool's crash is reported next to the other tools' numbers.
    """
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip() or f"{module} exited {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def memory_of_tools(tools: list[str], root: Path, units: int, parallel: int = 2) -> dict[str, dict[str, Any]]:
    """:func:`memory_in_child` per tool, ``parallel`` at a time (sharing CPUs does not change memory)."""
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {name: pool.submit(memory_in_child, name, root, units) for name in tools}
        return {name: future.result() for name, future in futures.items()}


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


# Every bucket _package() sorts a file into: profile everything, not only the recorders.
ALL_PACKAGES = (*_PACKAGE_MARKERS, "builtins", "stdlib/other")


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


def profile(run: Callable[[], object], packages: tuple[str, ...], top: int, by: str = "cumtime") -> Profile:
    """cProfile ``run``; keep the ``top`` functions of ``packages`` by ``by`` ("cumtime" or "tottime")."""
    return profiles(run, packages, {by: (by, top)})[by]


def profiles(
    run: Callable[[], object], packages: tuple[str, ...], views: Mapping[str, tuple[str, int]]
) -> dict[str, Profile]:
    """One cProfile of ``run``, seen several ways: ``{name: (sort key, top)}`` -> that view.

    One run for all views, so that they describe the same execution (and a slow call is
    not profiled twice).
    """
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
    total: float = stats.total_tt  # type: ignore[attr-defined]
    split = dict(sorted(by_package.items(), key=lambda kv: -kv[1]))
    return {
        name: Profile(total, sorted(ours, key=lambda row: float(getattr(row, by)), reverse=True)[:top], split)
        for name, (by, top) in views.items()
    }


@dataclass(frozen=True)
class AllocationRow:
    site: str  # file:line
    bytes: int
    blocks: int


@dataclass(frozen=True)
class Allocations:
    peak_bytes: int  # tracemalloc's peak during the call
    retained_bytes: int  # still allocated when it returned
    by_line: list[AllocationRow]  # retained, by the line that allocated (innermost Python frame)
    by_caller: list[AllocationRow]  # retained, by the innermost frame in ``packages`` on the stack
    by_package: dict[str, int]  # retained bytes per package of the allocating line


def _site(frame: tracemalloc.Frame) -> str:
    return _label((frame.filename, frame.lineno, "")).removesuffix("()")


def _top(sizes: dict[str, list[int]], top: int) -> list[AllocationRow]:
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1][0])[:top]
    return [AllocationRow(site, size, blocks) for site, (size, blocks) in ranked]


def allocations(
    call: Callable[[], object], packages: tuple[str, ...], top: int, frames: int = 12
) -> Allocations:
    """What ``call`` allocates and keeps (e.g. entering a cassette: what the loaded cassette holds).

    Two views of the same retained blocks: by the allocating line, which is often inside
    the stdlib (``json.loads`` building dicts), and by the innermost caller in ``packages``,
    which names the recorder's line that asked for it (``(none)`` if none is within
    ``frames``: deeper stacks find more callers but slow the call down several times
    more). Only the bytes are meant to be read, not the time.
    """
    gc.collect()
    tracemalloc.start(frames)
    try:
        call()
        peak = tracemalloc.get_traced_memory()[1]
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    by_line: dict[str, list[int]] = {}
    by_caller: dict[str, list[int]] = {}
    by_package: dict[str, int] = {}
    retained = 0
    for stat in snapshot.statistics("traceback"):
        frames_ = list(stat.traceback)  # oldest first
        innermost = frames_[-1]
        retained += stat.size
        package = _package(innermost.filename)
        by_package[package] = by_package.get(package, 0) + stat.size
        caller = next((_site(f) for f in reversed(frames_) if _package(f.filename) in packages), "(none)")
        for key, store in ((_site(innermost), by_line), (caller, by_caller)):
            entry = store.setdefault(key, [0, 0])
            entry[0] += stat.size
            entry[1] += stat.count
    return Allocations(
        peak,
        retained,
        _top(by_line, top),
        _top(by_caller, top),
        dict(sorted(by_package.items(), key=lambda kv: -kv[1])),
    )
