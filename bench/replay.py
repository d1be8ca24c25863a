"""Replay benchmark: vcrpy (YAML, JSON), cassetter and vcr_ext replaying the same OpenAI traffic.

Run ``python -m bench.replay`` (full, under 8 minutes on 2 cores) or ``--quick`` (~1 minute).
Every tool records each scenario once against the demo server; the server is then stopped
and every replay goes through the real openai SDK to a dead port, checking that the SDK
gets back what it got while recording. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import openai

from vcr_ext.demo.server import FakeOpenAIServer

from . import environment, measure, report, scenarios
from .sdk_only import SdkOnly
from .tools import Tool, all_tools
from .traffic import ChatSummary, UnitResult, make_client

T = TypeVar("T")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The discard port: nothing listens there, so any request a tool lets through fails loudly.
DEAD_BASE_URL = "http://127.0.0.1:9/v1"
PROFILED_PACKAGES = ("vcr_ext", "vcrpy")


@dataclass(frozen=True)
class Plan:
    name: str
    units: int  # tests in the suite
    repeats: int  # timed runs of the suite and load scenarios (best is reported)
    lookup_sizes: tuple[int, ...]
    lookup_repeats: int
    # A tool that has spent this long on one lookup size is not repeated further: vcrpy
    # takes about a minute per replay of the 1000-request cassette.
    lookup_budget_s: float
    # Tests replayed for peak memory: tracemalloc slows replay ~5x, the quick run does a quarter.
    memory_units: int
    profile: bool  # cProfile the vcr_ext suite replay by default


FULL = Plan(
    "full",
    units=200,
    repeats=5,
    lookup_sizes=(10, 100, 1000),
    lookup_repeats=5,
    lookup_budget_s=20.0,
    memory_units=200,
    profile=True,
)
QUICK = Plan(
    "quick",
    units=200,
    repeats=2,
    lookup_sizes=(10, 100),
    lookup_repeats=2,
    lookup_budget_s=5.0,
    memory_units=50,
    profile=False,
)

_STARTED = time.perf_counter()


def log(message: str) -> None:
    # Progress goes to stderr so that stdout is just the report.
    print(f"[bench {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


class Attempts:
    """The failures of a run, per tool and scenario; shared with bench.scale."""

    def __init__(self) -> None:
        self.failures: dict[str, dict[str, str]] = {}

    def attempt(self, tool: Tool, scenario: str, fn: Callable[[], T]) -> T | None:
        """Run ``fn``; on any error keep the traceback and return None, so the other tools go on."""
        try:
            return fn()
        except Exception:
            self.fail(tool.name, scenario, traceback.format_exc())
            return None

    def fail(self, name: str, scenario: str, error: str) -> None:
        self.failures.setdefault(name, {})[scenario] = error
        log(f"{name}: {scenario} FAILED (traceback in the report)")


class Run(Attempts):
    """State of one benchmark run: the tools, their recordings and clients, their failures."""

    def __init__(self, plan: Plan, root: Path, tools: list[Tool]) -> None:
        super().__init__()
        self.plan = plan
        self.root = root
        self.tools = tools
        self.suite: dict[str, list[UnitResult]] = {}
        self.lookups: dict[int, dict[str, list[ChatSummary]]] = {m: {} for m in plan.lookup_sizes}
        self.clients: dict[str, openai.OpenAI] = {}

    def recorders(self) -> list[Tool]:
        """Tools with cassettes on disk whose suite replayed correctly (sdk-only has none)."""
        return [t for t in self.tools if t.has_cassettes and t.name in self.suite]


# --------------------------------------------------------------------------- recording


def record(run: Run) -> dict[str, Any]:
    """Record every scenario once per tool against the demo server, then stop the server."""
    with FakeOpenAIServer() as server:
        shared = make_client(server.base_url, close_connections=True)
        for tool in run.tools:
            log(f"recording {tool.name}")
            client = tool.record_client(server.base_url) if tool.record_client else shared
            suite = run.attempt(
                tool, "record suite", partial(scenarios.record_suite, tool, run.root, client, run.plan.units)
            )
            if suite is not None:
                run.suite[tool.name] = suite
            for size in run.plan.lookup_sizes:
                record_lookup = partial(scenarios.record_lookup, tool, run.root, client, size)
                got = run.attempt(tool, f"record lookup {size}", record_lookup)
                if got is not None:
                    run.lookups[size][tool.name] = got
        served = len(server.requests)
    check_dead_port()
    shared = make_client(DEAD_BASE_URL)
    run.clients = {t.name: t.replay_client(DEAD_BASE_URL) if t.replay_client else shared for t in run.tools}
    return {"requests_served_while_recording": served, **_traffic_facts(run)}


def check_dead_port() -> None:
    """Refuse to measure if something answers on the replay port: a leak would then look like a replay."""
    with contextlib.suppress(ConnectionRefusedError), socket.create_connection(("127.0.0.1", 9), timeout=1):
        raise SystemExit("something listens on 127.0.0.1:9; replay could reach it, refusing to benchmark")


def _traffic_facts(run: Run) -> dict[str, Any]:
    """What the recorded traffic looks like, and whether all tools recorded the same thing."""
    recorded = list(run.suite.values())
    first = recorded[0][0] if recorded and recorded[0] else None
    chunks = [unit.stream.chunks for unit in recorded[0]] if recorded else []
    return {
        "stream_chunks": round(statistics.mean(chunks)) if chunks else None,
        "stream_chunks_range": [min(chunks), max(chunks)] if chunks else None,
        "embedding_dimensions": len(first.embedding) if first else None,
        "all_tools_recorded_identical_results": all(r == recorded[0] for r in recorded),
        "matching": "method + URL path + JSON body (host and port ignored) for every tool",
    }


# --------------------------------------------------------------------------- replay


def warm_up(run: Run) -> None:
    """Replay the suite and the smallest lookup once per tool, checking results, untimed.

    That runs every code path the timed runs use. The bigger lookups need no pass of their
    own: every timed run checks its results too, and a warm-up of vcrpy's 1000-request
    cassette would cost a minute per vcrpy row for nothing.
    """
    smallest = min(run.lookups)
    for tool in run.tools:
        log(f"warm-up and check: {tool.name}")
        client = run.clients[tool.name]
        if tool.name in run.suite:
            replay = partial(scenarios.replay_suite, tool, run.root, client, run.suite[tool.name])
            if run.attempt(tool, "replay suite", replay) is None:
                del run.suite[tool.name]
        per_tool = run.lookups[smallest]
        if tool.name in per_tool:
            replay_lookup = partial(scenarios.replay_lookup, tool, run.root, client, per_tool[tool.name])
            if run.attempt(tool, f"replay lookup {smallest}", replay_lookup) is None:
                for sized in run.lookups.values():
                    sized.pop(tool.name, None)


def timed(
    run: Attempts,
    scenario: str,
    repeats: int,
    tasks: Mapping[Tool, Callable[[], T]],
    budget_s: float | None = None,
) -> dict[str, list[T]]:
    """Interleaved repeats; a tool that fails in any repeat is dropped from the scenario."""
    wrapped = {tool.name: partial(run.attempt, tool, scenario, fn) for tool, fn in tasks.items()}
    raw = measure.interleaved(repeats, wrapped, budget_s)
    return {
        name: [v for v in values if v is not None]
        for name, values in raw.items()
        if all(v is not None for v in values)
    }


def time_suite(run: Run) -> dict[str, Any]:
    tasks = {
        t: partial(scenarios.replay_suite, t, run.root, run.clients[t.name], run.suite[t.name])
        for t in run.tools
        if t.name in run.suite
    }
    out = {}
    for name, times in timed(run, "timed suite", run.plan.repeats, tasks).items():
        best = min(times)
        out[name] = {
            "times_s": times,
            "best_s": best,
            "median_s": statistics.median(times),
            "per_test_ms": 1000 * best / run.plan.units,
        }
    return out


def time_load(run: Run) -> dict[str, Any]:
    tasks = {t: partial(scenarios.open_suite, t, run.root, run.plan.units) for t in run.recorders()}
    out = {}
    for name, times in timed(run, "timed load", run.plan.repeats, tasks).items():
        out[name] = {"times_s": times, "per_cassette_ms": 1000 * min(times) / run.plan.units}
    return out


def time_lookup(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size, per_tool in run.lookups.items():
        log(f"timing lookup M={size}")
        tasks = {
            t: partial(scenarios.replay_lookup, t, run.root, run.clients[t.name], per_tool[t.name])
            for t in run.tools
            if t.name in per_tool
        }
        runs = timed(run, f"timed lookup {size}", run.plan.lookup_repeats, tasks, run.plan.lookup_budget_s)
        out[str(size)] = {name: _lookup_entry(size, timings) for name, timings in runs.items()}
    return out


def _lookup_entry(size: int, timings: list[scenarios.LookupTiming]) -> dict[str, Any]:
    calls = [t.calls_s for t in timings]
    return {
        "calls_s": calls,
        "open_s": [t.open_s for t in timings],
        "close_s": [t.close_s for t in timings],
        "runs": len(calls),
        "per_request_us": 1e6 * min(calls) / size,
        "open_ms": 1000 * min(t.open_s for t in timings),
    }


def sizes(run: Run) -> dict[str, Any]:
    out = {}
    for tool in run.recorders():
        total, files = measure.disk_usage(run.root / "suite" / tool.name)
        out[tool.name] = {"bytes": total, "files": files, "bytes_per_test": total / run.plan.units}
    return out


def memory(run: Run) -> dict[str, Any]:
    names = [tool.name for tool in run.recorders()]
    log(f"memory: {', '.join(names)} (one fresh process each, two at a time)")
    out = measure.memory_of_tools(names, run.root, run.plan.memory_units)
    for name, entry in out.items():
        if "error" in entry:
            run.fail(name, "memory", entry["error"])
    return out


def profile(run: Run, name: str) -> dict[str, Any] | None:
    tool = next((t for t in run.tools if t.name == name and t.name in run.suite), None)
    if tool is None:
        return None
    replay = partial(scenarios.replay_suite, tool, run.root, run.clients[name], run.suite[name])
    result = measure.profile(replay, PROFILED_PACKAGES, 15)
    return {"tool": name, "packages": list(PROFILED_PACKAGES), **asdict(result)}


# --------------------------------------------------------------------------- run


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        if any(keep.iterdir()):
            raise SystemExit(f"{keep} is not empty; recording needs an empty directory")
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="vcr-ext-bench-") as tmp:
        yield Path(tmp)


def benchmark(plan: Plan, root: Path, profile_tool: str | None) -> dict[str, Any]:
    run = Run(plan, root, [SdkOnly().tool(), *all_tools()])
    results: dict[str, Any] = {"meta": environment.describe(), "plan": asdict(plan)}
    phases: dict[str, float] = {}

    def phase(name: str, fn: Callable[[], T]) -> T:
        log(name)
        start = time.perf_counter()
        value = fn()
        phases[name] = round(time.perf_counter() - start, 2)
        return value

    results["traffic"] = phase("record (server up)", partial(record, run))
    phase("warm-up and check (server down from here on)", partial(warm_up, run))
    results["suite"] = phase("time suite", partial(time_suite, run))
    results["load"] = phase("time load", partial(time_load, run))
    results["lookup"] = phase("time lookup", partial(time_lookup, run))
    results["size"] = sizes(run)
    results["memory"] = phase("memory", partial(memory, run))
    results["profile"] = (
        phase(f"profile {profile_tool}", partial(profile, run, profile_tool)) if profile_tool else None
    )
    results["failures"] = run.failures
    results["phases_s"] = phases
    results["meta"]["load_average_at_end"] = environment.load_average()
    return results


def write_json(results: dict[str, Any], prefix: str = "replay") -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="~1 minute: 2 repeats, lookups of 10 and 100 only, memory over 50 tests",
    )
    parser.add_argument(
        "--profile",
        metavar="TOOL",
        help="tool whose suite replay to cProfile ('none' to skip; default: vcr_ext in a full run only)",
    )
    parser.add_argument("--workdir", type=Path, help="record into this empty directory and keep it")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    profile_tool = args.profile or ("vcr_ext" if plan.profile else "none")
    with workdir(args.workdir) as root:
        results = benchmark(plan, root, None if profile_tool == "none" else profile_tool)
    print(report.render(results))
    print(f"\nresults: {write_json(results)}")
    # A failed tool is reported, not hidden; the exit status says so too.
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
