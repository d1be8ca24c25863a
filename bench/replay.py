"""Replay benchmark: vcrpy (YAML, JSON), cassetter and vcr_ext replaying the same OpenAI traffic.

Run ``python -m bench.replay`` (full, under 8 minutes on 2 cores) or ``--quick`` (~1 minute).
Every tool records each scenario once against the demo server; the server is then stopped
and every replay goes through the real openai SDK to a dead port, checking that the SDK
gets back exactly what it got while recording. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import openai

from vcr_ext.demo.server import FakeOpenAIServer

from . import measure, report, scenarios
from .tools import Tool, all_tools
from .traffic import ChatSummary, UnitResult, make_client

T = TypeVar("T")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The discard port: nothing listens there, so any request a tool lets through fails loudly.
DEAD_BASE_URL = "http://127.0.0.1:9/v1"


@dataclass(frozen=True)
class Plan:
    name: str
    units: int  # tests in the suite
    repeats: int  # timed runs of the suite and load scenarios (best is reported)
    lookup_sizes: tuple[int, ...]
    lookup_repeats: int


FULL = Plan("full", units=200, repeats=5, lookup_sizes=(10, 100, 1000), lookup_repeats=5)
QUICK = Plan("quick", units=200, repeats=2, lookup_sizes=(10, 100), lookup_repeats=2)


_STARTED = time.perf_counter()


def log(message: str) -> None:
    # Progress goes to stderr so that stdout is just the report.
    print(f"[bench {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


class Run:
    """State of one benchmark run: the tools still standing, their recordings, their failures."""

    def __init__(self, plan: Plan, root: Path, tools: list[Tool]) -> None:
        self.plan = plan
        self.root = root
        self.tools = tools
        self.failures: dict[str, dict[str, str]] = {}
        self.suite: dict[str, list[UnitResult]] = {}
        self.lookups: dict[int, dict[str, list[ChatSummary]]] = {m: {} for m in plan.lookup_sizes}

    def attempt(self, tool: Tool, scenario: str, fn: Callable[[], T]) -> T | None:
        """Run ``fn``; on any error keep the traceback and return None, so the other tools go on."""
        try:
            return fn()
        except Exception:
            self.failures.setdefault(tool.name, {})[scenario] = traceback.format_exc()
            log(f"{tool.name}: {scenario} FAILED (traceback in the report)")
            return None

    def failed(self, tool: Tool, scenario: str) -> bool:
        return scenario in self.failures.get(tool.name, {})


# --------------------------------------------------------------------------- recording


def record(run: Run) -> dict[str, Any]:
    """Record every scenario once per tool against the demo server, then stop the server."""
    with FakeOpenAIServer() as server:
        client = make_client(server.base_url, close_connections=True)
        for tool in run.tools:
            log(f"recording {tool.name}")
            suite = run.attempt(
                tool, "record suite", partial(scenarios.record_suite, tool, run.root, client, run.plan.units)
            )
            if suite is not None:
                run.suite[tool.name] = suite
            for size in run.plan.lookup_sizes:
                got = run.attempt(
                    tool,
                    f"record lookup {size}",
                    partial(scenarios.record_lookup, tool, run.root, client, size),
                )
                if got is not None:
                    run.lookups[size][tool.name] = got
        served = len(server.requests)
    _check_dead_port()
    return {"requests_served_while_recording": served, **_traffic_facts(run)}


def _check_dead_port() -> None:
    """Refuse to measure if something answers on the replay port: a leak would then look like a replay."""
    with contextlib.suppress(ConnectionRefusedError), socket.create_connection(("127.0.0.1", 9), timeout=1):
        raise SystemExit("something listens on 127.0.0.1:9; replay could reach it, refusing to benchmark")


def _traffic_facts(run: Run) -> dict[str, Any]:
    """What the recorded traffic looks like, and whether all tools recorded the same thing."""
    recorded = list(run.suite.values())
    same = all(r == recorded[0] for r in recorded) if recorded else False
    first = recorded[0][0] if recorded and recorded[0] else None
    return {
        "stream_chunks": first.stream.chunks if first else None,
        "embedding_dimensions": len(first.embedding) if first else None,
        "all_tools_recorded_identical_results": same,
        "matching": "method + URL path + JSON body (host and port ignored) for every tool",
    }


# --------------------------------------------------------------------------- replay


def verify(run: Run, client: openai.OpenAI) -> None:
    """Replay everything once per tool, checking results; doubles as the warm-up."""
    for tool in run.tools:
        log(f"warm-up and check: {tool.name}")
        if tool.name in run.suite:
            expected = run.suite[tool.name]
            replay = partial(scenarios.replay_suite, tool, run.root, client, expected)
            if run.attempt(tool, "replay suite", replay) is None:
                del run.suite[tool.name]
        for size, per_tool in run.lookups.items():
            if tool.name in per_tool:
                want = per_tool[tool.name]
                replay_lookup = partial(scenarios.replay_lookup, tool, run.root, client, want)
                if run.attempt(tool, f"replay lookup {size}", replay_lookup) is None:
                    del per_tool[tool.name]


def _timed(run: Run, scenario: str, repeats: int, tasks: dict[Tool, Callable[[], T]]) -> dict[str, list[T]]:
    """Interleaved repeats; a tool that fails in any repeat is dropped from the scenario."""
    wrapped = {tool.name: partial(run.attempt, tool, scenario, fn) for tool, fn in tasks.items()}
    raw = measure.interleaved(repeats, wrapped)
    return {
        name: [v for v in values if v is not None]
        for name, values in raw.items()
        if all(v is not None for v in values)
    }


def time_suite(run: Run, client: openai.OpenAI) -> dict[str, Any]:
    tasks = {
        t: partial(scenarios.replay_suite, t, run.root, client, run.suite[t.name])
        for t in run.tools
        if t.name in run.suite
    }
    out = {}
    for name, times in _timed(run, "timed suite", run.plan.repeats, tasks).items():
        best = min(times)
        out[name] = {
            "times_s": times,
            "best_s": best,
            "median_s": statistics.median(times),
            "per_test_ms": 1000 * best / run.plan.units,
        }
    return out


def time_load(run: Run) -> dict[str, Any]:
    tasks = {
        t: partial(scenarios.open_suite, t, run.root, run.plan.units)
        for t in run.tools
        if t.name in run.suite
    }
    out = {}
    for name, times in _timed(run, "timed load", run.plan.repeats, tasks).items():
        out[name] = {"times_s": times, "per_cassette_ms": 1000 * min(times) / run.plan.units}
    return out


def time_lookup(run: Run, client: openai.OpenAI) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size, per_tool in run.lookups.items():
        log(f"timing lookup M={size}")
        tasks = {
            t: partial(scenarios.replay_lookup, t, run.root, client, per_tool[t.name])
            for t in run.tools
            if t.name in per_tool
        }
        timed = _timed(run, f"timed lookup {size}", run.plan.lookup_repeats, tasks)
        out[str(size)] = {name: _lookup_entry(size, timings) for name, timings in timed.items()}
    return out


def _lookup_entry(size: int, timings: list[scenarios.LookupTiming]) -> dict[str, Any]:
    calls = [t.calls_s for t in timings]
    return {
        "calls_s": calls,
        "open_s": [t.open_s for t in timings],
        "close_s": [t.close_s for t in timings],
        "per_request_us": 1e6 * min(calls) / size,
        "open_ms": 1000 * min(t.open_s for t in timings),
    }


def sizes(run: Run) -> dict[str, Any]:
    out = {}
    for tool in run.tools:
        if tool.name in run.suite or not run.failed(tool, "record suite"):
            total, files = measure.disk_usage(run.root / "suite" / tool.name)
            out[tool.name] = {"bytes": total, "files": files, "bytes_per_test": total / run.plan.units}
    return out


def memory(run: Run, client: openai.OpenAI) -> dict[str, Any]:
    out = {}
    for tool in run.tools:
        if tool.name not in run.suite:
            continue
        log(f"memory: {tool.name}")
        expected = run.suite[tool.name]
        replay = partial(scenarios.replay_suite, tool, run.root, client, expected)
        peak = run.attempt(tool, "memory", partial(measure.traced_peak, replay))
        rss = measure.rss_growth(tool.name, run.root, run.plan.units)
        out[tool.name] = {
            "traced_peak_bytes": peak,
            "rss_growth_kib": rss.get("growth_kib"),
            "rss_probe": rss,
        }
    return out


def profile(run: Run, client: openai.OpenAI, name: str) -> dict[str, Any] | None:
    tool = next((t for t in run.tools if t.name == name and t.name in run.suite), None)
    if tool is None:
        return None
    log(f"profiling {name}")
    packages = ("vcr_ext", "vcrpy") if name.startswith(("vcr", "vcrpy")) else (name,)
    replay = partial(scenarios.replay_suite, tool, run.root, client, run.suite[name])
    result = measure.profile(replay, packages, 15)
    return {"tool": name, "packages": list(packages), **asdict(result)}


# --------------------------------------------------------------------------- run


def _meta() -> dict[str, Any]:
    cpu_model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        cpu_model = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), cpu_model
        )
    packages = ("vcrpy", "cassetter", "openai", "httpx2", "PyYAML", "vcr_ext")
    return {
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "versions": {p: importlib.metadata.version(p) for p in packages},
    }


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        if any(keep.iterdir()):
            raise SystemExit(f"{keep} is not empty; recording needs an empty directory")
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="vcr-ext-bench-") as tmp:
        yield Path(tmp)


def benchmark(plan: Plan, root: Path, profile_tool: str | None) -> dict[str, Any]:
    run = Run(plan, root, all_tools())
    results: dict[str, Any] = {"meta": _meta(), "plan": asdict(plan)}
    results["traffic"] = record(run)
    client = make_client(DEAD_BASE_URL)
    verify(run, client)
    log("timing suite")
    results["suite"] = time_suite(run, client)
    log("timing load")
    results["load"] = time_load(run)
    results["lookup"] = time_lookup(run, client)
    results["size"] = sizes(run)
    results["memory"] = memory(run, client)
    results["profile"] = profile(run, client, profile_tool) if profile_tool else None
    results["failures"] = run.failures
    return results


def write_json(results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"replay-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1 minute: 2 repeats, lookups of 10 and 100")
    parser.add_argument(
        "--profile",
        metavar="TOOL",
        default="vcr_ext",
        help="tool whose suite replay is cProfiled (default vcr_ext; 'none' to skip)",
    )
    parser.add_argument("--workdir", type=Path, help="record into this empty directory and keep it")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    profile_tool = None if args.profile == "none" else args.profile
    with _workdir(args.workdir) as root:
        results = benchmark(plan, root, profile_tool)
    print(report.render(results))
    path = write_json(results)
    print(f"\nresults: {path}")
    failed = bool(results["failures"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
