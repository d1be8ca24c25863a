"""Recording and replaying the scenarios with one tool; every replay checks what the SDK got back.

A replay function returns the seconds it measured (so that each scenario decides what
is timed) and raises :class:`ReplayMismatch` when a result differs from the recording.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import openai

from .tools import RECORD, REPLAY, Tool
from .traffic import ChatSummary, UnitResult, run_lookup, run_unit


class ReplayMismatch(AssertionError):
    """A replayed SDK result is not the one recorded."""


def suite_cassette(tool: Tool, root: Path, index: int) -> Path:
    # One cassette per test, named after it, as pytest-recording lays them out.
    return tool.cassette_path(root / "suite", f"test_unit_{index:03d}")


def lookup_cassette(tool: Tool, root: Path, size: int) -> Path:
    return tool.cassette_path(root / "lookup", f"lookup_{size}")


def _difference(got: object, expected: object, where: str = "") -> str:
    """Where two results first differ, e.g. ``.stream.tool_calls``, for the failure message."""
    if dataclasses.is_dataclass(got) and type(got) is type(expected):
        for f in dataclasses.fields(got):
            a, b = getattr(got, f.name), getattr(expected, f.name)
            if f.compare and a != b:
                return _difference(a, b, f"{where}.{f.name}")
    if isinstance(got, list | tuple) and isinstance(expected, list | tuple) and len(got) == len(expected):
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            if a != b:
                return _difference(a, b, f"{where}[{i}]")
    return f"{where or 'result'}: replayed {got!r:.300} != recorded {expected!r:.300}"


def check(tool: Tool, what: str, got: object, expected: object) -> None:
    if got != expected:
        raise ReplayMismatch(f"{tool.name}: {what}: {_difference(got, expected)}")


# ----------------------------------------------------------------------------- recording


def record_suite(tool: Tool, root: Path, client: openai.OpenAI, units: int) -> list[UnitResult]:
    results = []
    for i in range(units):
        with tool.open(suite_cassette(tool, root, i), RECORD):
            results.append(run_unit(client, i))
    return results


def record_lookup(tool: Tool, root: Path, client: openai.OpenAI, size: int) -> list[ChatSummary]:
    with tool.open(lookup_cassette(tool, root, size), RECORD):
        return [run_lookup(client, i) for i in range(size)]


# ----------------------------------------------------------------------------- replay


def replay_suite(tool: Tool, root: Path, client: openai.OpenAI, expected: Sequence[UnitResult]) -> float:
    """Seconds to run every test of the suite, each in its own cassette (opening included)."""
    start = time.perf_counter()
    for i, want in enumerate(expected):
        with tool.open(suite_cassette(tool, root, i), REPLAY):
            got = run_unit(client, i)
        # Checked as we go, not collected: a list of 200 results would dominate peak memory.
        check(tool, f"suite test {i}", got, want)
    return time.perf_counter() - start


def open_suite(tool: Tool, root: Path, units: int) -> float:
    """Seconds to open and close every suite cassette without making a call."""
    start = time.perf_counter()
    for i in range(units):
        with tool.open(suite_cassette(tool, root, i), REPLAY):
            pass
    return time.perf_counter() - start


@dataclass(frozen=True)
class LookupTiming:
    open_s: float  # entering the context: loading the cassette and patching
    calls_s: float  # the M requests, played in recorded order
    close_s: float  # leaving the context


def replay_lookup(
    tool: Tool, root: Path, client: openai.OpenAI, expected: Sequence[ChatSummary]
) -> LookupTiming:
    """Replay every request of the big cassette in order, inside one cassette context."""
    context = tool.open(lookup_cassette(tool, root, len(expected)), REPLAY)
    t0 = time.perf_counter()
    with context:
        t1 = time.perf_counter()
        got = [run_lookup(client, i) for i in range(len(expected))]
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    check(tool, f"lookup of {len(expected)}", got, list(expected))
    return LookupTiming(t1 - t0, t2 - t1, t3 - t2)
