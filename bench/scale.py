"""Scale benchmark: opening and replaying cassettes of 3 to 10,000 interactions, per tool.

Run ``python -m bench.scale`` (full: sizes 10, 100, 1,000, 10,000 plus the suite's
3-interaction cassette; a cProfile of vcr_ext's open at 10,000) or ``--quick`` (up to
1,000, no profile). Every tool records the same mixed chat traffic against the demo
server (see bench/scale_traffic.py and bench/_scale_record.py), the server is stopped,
and every replay goes through the real openai SDK to a dead port and is checked against
the recording. Prints a scale table and the targets as PASS/FAIL lines; the exit status
is about errors only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import openai

from vcr_ext.demo.server import FakeOpenAIServer

from . import environment, measure, scale_report, scale_traffic, scenarios
from .replay import DEAD_BASE_URL, Attempts, check_dead_port, log, workdir, write_json
from .scale_traffic import SUITE_SIZE, cassette_for, replay_call, sample
from .sdk_only import SdkOnly
from .tools import REPLAY, Tool, all_tools
from .traffic import make_client

T = TypeVar("T")
PROFILED = "vcr_ext"
# Failures that are a tool's documented limit, not a benchmark error: (tool, exception
# type, text in its message). cassetter 0.16.1 parses YAML with serde-saphyr's default
# budget of 250,000 nodes and cannot raise it; with the SDK's headers that is reached at
# ~1,080 interactions, so it cannot open its own 10,000-interaction cassette.
KNOWN_LIMITS = (("cassetter", "CassetteLoadError", "budget breached"),)


def known_limit(tool: str, error: str) -> bool:
    return any(tool == t and kind in error and text in error for t, kind, text in KNOWN_LIMITS)


class ToolLimit(Exception):
    """A tool cannot open a cassette of this size (see KNOWN_LIMITS)."""

    def __init__(self, size: int, why: str) -> None:
        super().__init__(f"cannot open the {size:,}-interaction cassette: {why}")
        self.size, self.why = str(size), why


@dataclass(frozen=True)
class Plan:
    name: str
    sizes: tuple[int, ...]  # mixed cassettes; the suite's 3-interaction cassette is measured too
    # Rounds per tool for 3 and then each size; one round = open, replay the sample, close.
    # Opening 3 interactions takes ~2 ms, so small sizes get more rounds to steady the best.
    rounds: tuple[int, ...]
    # A tool that has spent this long on one size is not repeated further (vcrpy-yaml
    # took 36 s to open 10,000 interactions on the busy test machine, and ~3 s per request).
    size_budget_s: float
    sample: int  # requests replayed per round: whole blocks of the five kinds, spread
    sample_budget_s: float  # a round stops replaying its sample after this long
    memory_sample: int  # requests replayed by each memory probe pass
    memory_budget_s: float
    profile: bool  # cProfile and tracemalloc vcr_ext's open of the largest cassette
    # A memory probe skips its tracemalloc pass if the plain pass took longer than this:
    # tracemalloc makes it ~3x slower (vcrpy-yaml at 10,000: ~2 minutes), and RSS growth
    # is then the only peak shown. 0: never skip.
    traced_skip_s: float = 15.0
    # Recording jobs at a time. Each uses about half a core (its client and its server
    # threads take turns on one GIL), so four keep two cores busy.
    record_parallel: int = 4
    memory_parallel: int = 2  # memory probes are CPU-bound: one per core
    # Sizes whose memory is probed (each probe is a fresh process, ~2 s of imports alone);
    # empty: every size.
    memory_sizes: tuple[int, ...] = ()


FULL = Plan(
    "full",
    sizes=(10, 100, 1_000, 10_000),
    rounds=(30, 10, 5, 3, 3),
    size_budget_s=6.0,
    sample=200,
    sample_budget_s=2.0,
    memory_sample=20,
    memory_budget_s=2.0,
    profile=True,
)
QUICK = Plan(
    "quick",
    sizes=(10, 100, 1_000),
    rounds=(10, 5, 3, 2),
    size_budget_s=3.0,
    sample=100,
    sample_budget_s=1.5,
    memory_sample=10,
    memory_budget_s=1.0,
    profile=False,
    memory_sizes=(SUITE_SIZE, 1_000),
)


class ScaleRun(Attempts):
    """State of one scale run: tools, what each recorded (per size, per request index), clients."""

    def __init__(self, plan: Plan, root: Path) -> None:
        super().__init__()
        self.plan = plan
        self.root = root
        self.sdk_only = SdkOnly()
        self.tools = [self.sdk_only.tool(), *all_tools()]
        self.expected: dict[int, dict[str, dict[int, object]]] = {s: {} for s in self.all_sizes}
        self.clients: dict[str, openai.OpenAI] = {}
        self.limits: dict[str, dict[str, str]] = {}  # tool -> size -> why it cannot open it

    def attempt(self, tool: Tool, scenario: str, fn: Callable[[], T]) -> T | None:
        """As Attempts.attempt, but a known limit is kept apart from the failures."""

        def limits_apart() -> T | None:
            try:
                return fn()
            except ToolLimit as limit:
                self.limit(tool.name, limit.size, limit.why)
                return None

        return super().attempt(tool, scenario, limits_apart)

    def limit(self, name: str, size: str, why: str) -> None:
        # The first report is kept: the memory probe sees the same error again.
        if size not in self.limits.setdefault(name, {}):
            log(f"{name}: cannot open the {int(size):,}-interaction cassette (a known limit): {why}")
            self.limits[name][size] = why

    @property
    def all_sizes(self) -> tuple[int, ...]:
        return (SUITE_SIZE, *self.plan.sizes)

    def recorders(self) -> list[Tool]:
        return [t for t in self.tools if t.has_cassettes]

    def sample(self, size: int) -> list[int]:
        return sample(size, self.plan.sample)


# --------------------------------------------------------------------------- recording


def _record_jobs(plan: Plan) -> list[tuple[str, list[int]]]:
    """(group, sizes) per recording process, in the order they start.

    "vcrpy" records both vcrpy rows. The largest size is a job of its own per group (vcr_ext's
    is the longest: it records and saves 10,000 in one go), and the smaller sizes another, so
    that their cassettes exist early and their memory probes run while the big ones record.
    """
    *smaller, largest = plan.sizes
    big = [("vcr_ext", [largest]), ("vcrpy", [largest]), ("cassetter", [largest])]
    small = [(group, smaller) for group in ("vcrpy", "cassetter", "vcr_ext")] if smaller else []
    # The longest first, then the short ones (they finish early), then the other big ones.
    return big[:1] + small + big[1:]


def _group_tools(run: ScaleRun, group: str) -> list[Tool]:
    return [t for t in run.recorders() if t.name == group or t.name.startswith(group + "-")]


def record(run: ScaleRun, probes: MemoryProbes) -> dict[str, Any]:
    """Record every size with every tool; the mixed cassettes in child processes, in parallel.

    Memory probes of the smaller sizes start as soon as their cassettes are written: they
    measure bytes, not time, so the recording next to them does not change their numbers,
    and the recording processes leave most of a core idle (see Plan.record_parallel).
    They are all finished when this returns, before anything is timed.
    """
    start = time.perf_counter()
    requests = scale_traffic.build_requests(max(run.plan.sizes))
    requests_file = run.root / "requests.pickle"
    with requests_file.open("wb") as f:
        pickle.dump(requests, f)
    facts: dict[str, Any] = {"build_requests_s": round(time.perf_counter() - start, 2), "jobs": []}
    jobs = _record_jobs(run.plan)
    parallel = run.plan.record_parallel
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        log(f"recording: {len(jobs)} child processes, {parallel} at a time")
        futures: dict[Future[dict[str, Any]], tuple[str, list[int]]] = {
            pool.submit(
                measure.in_child,
                "bench._scale_record",
                group,
                str(run.root),
                str(requests_file),
                *map(str, sizes),
            ): (group, sizes)
            for group, sizes in jobs
        }
        # Meanwhile, here: the suite cassette and the sdk-only row's captures, through the SDK.
        facts["suite_and_sdk_only_s"] = _record_here(run)
        probes.submit(run.recorders(), SUITE_SIZE)
        for future in as_completed(futures):
            group, sizes = futures[future]
            out = future.result()
            if "error" in out:
                for tool in _group_tools(run, group):
                    run.fail(tool.name, f"record {', '.join(map(str, sizes))}", out["error"])
                continue
            for name, per_size in out.pop("summaries").items():
                for size, summaries in per_size.items():
                    run.expected[int(size)][name] = dict(enumerate(summaries))
            facts["jobs"].append({"group": group, "sizes": sizes, **out})
            if max(sizes) < max(run.plan.sizes):
                for size in sizes:
                    probes.submit(_group_tools(run, group), size)
    facts["record_s"] = round(time.perf_counter() - start, 2)
    log("waiting for the memory probes of the smaller sizes")
    probes.wait()
    facts["requests_per_tool"] = sum(run.plan.sizes)
    facts["kinds"] = list(scale_traffic.KINDS)
    facts["identical_across_tools"] = _identical(run)
    return facts


def _record_here(run: ScaleRun) -> float:
    start = time.perf_counter()
    with FakeOpenAIServer() as server:
        shared = make_client(server.base_url, close_connections=True)
        for tool in run.tools:
            client = tool.record_client(server.base_url) if tool.record_client else shared
            units = run.attempt(
                tool, "record suite", partial(scenarios.record_suite, tool, run.root, client, 1)
            )
            if units is not None:
                run.expected[SUITE_SIZE][tool.name] = dict(enumerate(scale_traffic.suite_expected(units[0])))
        # sdk-only replays only the sampled requests: capture just those, through the SDK.
        capture = run.sdk_only.record_client(server.base_url)
        wanted = sorted({i for size in run.plan.sizes for i in run.sample(size)})
        captured = {i: scale_traffic.call(capture, i) for i in wanted}
        for size in run.plan.sizes:
            run.expected[size][run.sdk_only.tool().name] = {i: captured[i] for i in run.sample(size)}
    return round(time.perf_counter() - start, 2)


def _identical(run: ScaleRun) -> bool:
    """Whether every tool (and the SDK, for what it captured) recorded the same responses."""
    for per_tool in run.expected.values():
        recorded = list(per_tool.values())
        for other in recorded[1:]:
            if any(recorded[0].get(i, value) != value for i, value in other.items()):
                return False
    return True


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Round:
    open_s: float  # entering use_cassette: loading the cassette, indexing, patching
    close_s: float
    requests: list[tuple[int, float]]  # (request index, seconds) for each request replayed


def replay_round(
    tool: Tool, run: ScaleRun, client: openai.OpenAI, size: int, expected: dict[int, object]
) -> Round:
    """Open the cassette, replay the sample (until the round's budget is spent), close."""
    indices = [i for i in run.sample(size) if i in expected]
    context = tool.open(cassette_for(tool, run.root, size), REPLAY)
    timings: list[tuple[int, float]] = []
    t0 = t1 = time.perf_counter()
    try:
        with context:
            t1 = time.perf_counter()
            for i in indices:
                start = time.perf_counter()
                got = replay_call(client, size, i)
                timings.append((i, time.perf_counter() - start))
                scenarios.check(tool, f"request {i} of the {size:,}-interaction cassette", got, expected[i])
                if time.perf_counter() - t1 > run.plan.sample_budget_s:
                    break
            t2 = time.perf_counter()
    except Exception as error:
        why = f"{type(error).__name__}: {error}"
        if t1 == t0 and known_limit(tool.name, why):  # raised while opening
            raise ToolLimit(size, why.splitlines()[0]) from error
        raise
    return Round(t1 - t0, time.perf_counter() - t2, timings)


def _median_us(values: list[float]) -> float | None:
    return 1e6 * statistics.median(values) if values else None


def _entry(size: int, rounds: list[Round]) -> dict[str, Any]:
    timings = [(i, t) for r in rounds for i, t in r.requests]
    mixed = size != SUITE_SIZE
    opens = [r.open_s for r in rounds]
    return {
        "rounds": len(rounds),
        "open_s": opens,
        "open_ms": 1000 * min(opens),
        "open_median_ms": 1000 * statistics.median(opens),
        "close_ms": 1000 * min(r.close_s for r in rounds),
        "requests": len({i for i, _ in timings}),
        "timings": len(timings),
        # One median over every timing of every round: the same statistic whatever the
        # number of rounds, so that sizes with more rounds are not favoured.
        "per_request_us": _median_us([t for _, t in timings]),
        "chat_us": _median_us([t for i, t in timings if mixed and not scale_traffic.is_stream(i)]),
        "stream_us": _median_us([t for i, t in timings if mixed and scale_traffic.is_stream(i)]),
    }


def time_replay(run: ScaleRun) -> dict[str, Any]:
    """Every (tool, size) pair in the same interleaved rounds, each for its own number of rounds.

    One loop for all sizes, not one per size: on a shared machine the load drifts over
    minutes, and the targets compare sizes (10,000 against 10), so the sizes are measured
    in the same minutes rather than one after the other.
    """
    tasks: dict[str, Callable[[], Round | None]] = {}
    repeats_of: dict[str, int] = {}
    pairs: dict[str, tuple[str, int]] = {}
    for size, repeats in zip(run.all_sizes, run.plan.rounds, strict=True):
        for tool in run.tools:
            expected = run.expected[size].get(tool.name)
            if expected is not None:
                key = f"{tool.name} @{size}"
                replay = partial(replay_round, tool, run, run.clients[tool.name], size, expected)
                tasks[key] = partial(run.attempt, tool, f"replay {size}", replay)
                repeats_of[key], pairs[key] = repeats, (tool.name, size)
    log(f"timing open and replay: {len(tasks)} tool and size pairs, up to {max(run.plan.rounds)} rounds")
    rounds = measure.interleaved(max(run.plan.rounds), tasks, run.plan.size_budget_s, repeats_of)
    out: dict[str, Any] = {str(size): {} for size in run.all_sizes}
    for key, results in rounds.items():
        # A pair that failed (or hit a known limit) in any round is left out, as bench.replay does.
        done = [r for r in results if r is not None]
        if done and len(done) == len(results):
            name, size = pairs[key]
            out[str(size)][name] = _entry(size, done)
    return out


# --------------------------------------------------------------------------- disk, memory, profile


def _on_disk(path: Path) -> tuple[int, int]:
    if path.is_dir():
        return measure.disk_usage(path)
    return (path.stat().st_size, 1) if path.exists() else (0, 0)


def sizes_on_disk(run: ScaleRun) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in run.all_sizes:
        out[str(size)] = {}
        for tool in run.recorders():
            if tool.name in run.expected[size]:
                total, files = _on_disk(cassette_for(tool, run.root, size))
                out[str(size)][tool.name] = {"bytes": total, "files": files}
    return out


class MemoryProbes:
    """Peak-memory probes, one fresh process per tool and size, ``memory_parallel`` at a time.

    Submitted as cassettes become ready; the biggest are submitted last (after the timing),
    vcrpy-yaml first among them, since it takes the longest.
    """

    def __init__(self, run: ScaleRun) -> None:
        self.run = run
        self.pool = ThreadPoolExecutor(max_workers=run.plan.memory_parallel)
        self.futures: dict[tuple[str, int], Future[dict[str, Any]]] = {}
        self.results: dict[str, dict[str, Any]] = {str(size): {} for size in run.all_sizes}

    def submit(self, tools: list[Tool], size: int) -> None:
        plan = self.run.plan
        if size not in (plan.memory_sizes or self.run.all_sizes):
            return
        for tool in tools:
            key = (tool.name, size)
            if tool.name in self.run.expected[size] and key not in self.futures:
                self.futures[key] = self.pool.submit(
                    measure.in_child,
                    "bench._scale_probe",
                    tool.name,
                    str(self.run.root),
                    str(size),
                    str(plan.memory_sample),
                    str(plan.memory_budget_s),
                    str(plan.traced_skip_s),
                )

    def wait(self) -> None:
        """Collect every probe submitted so far."""
        for (name, size), future in self.futures.items():
            if name in self.results[str(size)]:
                continue
            entry = future.result()
            if "error" in entry and known_limit(name, entry["error"]):
                self.run.limit(name, str(size), _limit_line(entry["error"]))
            elif "error" in entry:
                self.run.fail(name, f"memory {size}", entry["error"])
            else:
                self.results[str(size)][name] = entry


def memory(run: ScaleRun, probes: MemoryProbes) -> dict[str, Any]:
    """The probes of the largest size (the smaller ones ran while recording), then every result."""
    largest = max(run.plan.sizes)
    log(f"memory at {largest:,}: fresh processes, {run.plan.memory_parallel} at a time")
    probes.submit(run.recorders(), largest)
    probes.wait()
    probes.pool.shutdown()
    return probes.results


def _limit_line(error: str) -> str:
    """The line of a child's traceback that names the known limit (see KNOWN_LIMITS)."""
    lines = [line for line in error.splitlines() if any(kind in line for _, kind, _ in KNOWN_LIMITS)]
    return lines[-1].strip() if lines else error.strip().splitlines()[-1]


def _entered(tool: Tool, path: Path, measure_enter: Callable[[Callable[[], object]], T]) -> T:
    """``measure_enter(enter)`` for a freshly built cassette context, then leave it."""
    context = tool.open(path, REPLAY)
    try:
        return measure_enter(context.__enter__)
    finally:
        context.__exit__(None, None, None)


def profile_open(run: ScaleRun, name: str) -> dict[str, Any] | None:
    """cProfile (cumulative and own time) and tracemalloc of entering the largest cassette."""
    tool = next((t for t in run.recorders() if t.name == name), None)
    size = max(run.plan.sizes)
    if tool is None or name not in run.expected[size]:
        return None
    path = cassette_for(tool, run.root, size)
    views = {"cumulative": ("cumtime", 25), "own": ("tottime", 15)}
    profiled = _entered(tool, path, lambda enter: measure.profiles(enter, measure.ALL_PACKAGES, views))
    # Allocations named by the recorder line that asked for them (vcr_ext, then vcrpy).
    memory_ = _entered(tool, path, lambda enter: measure.allocations(enter, ("vcr_ext", "vcrpy"), 12))
    return {
        "tool": name,
        "size": size,
        **{view: asdict(result) for view, result in profiled.items()},
        "allocations": asdict(memory_),
    }


# --------------------------------------------------------------------------- run


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children.

    On a shared machine the wall time mostly says how busy the others were; CPU time
    over two cores is the least wall time the same work takes on an idle 2-core machine.
    """
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def benchmark(plan: Plan, root: Path, profile_tool: str | None) -> dict[str, Any]:
    run = ScaleRun(plan, root)
    results: dict[str, Any] = {"meta": environment.describe(), "plan": asdict(plan)}
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def phase(name: str, fn: Callable[[], T]) -> T:
        log(name)
        start, cpu_start = time.perf_counter(), _cpu_s()
        value = fn()
        phases[name] = round(time.perf_counter() - start, 2)
        cpu[name] = round(_cpu_s() - cpu_start, 2)
        return value

    probes = MemoryProbes(run)
    results["recording"] = phase("record (server up), memory of smaller sizes", partial(record, run, probes))
    check_dead_port()
    shared = make_client(DEAD_BASE_URL)
    run.clients = {t.name: t.replay_client(DEAD_BASE_URL) if t.replay_client else shared for t in run.tools}
    results["replay"] = phase("time open and replay (server down from here on)", partial(time_replay, run))
    results["disk"] = sizes_on_disk(run)
    results["memory"] = phase(f"memory at {max(plan.sizes):,}", partial(memory, run, probes))
    results["profile"] = (
        phase(f"profile {profile_tool} open", partial(profile_open, run, profile_tool))
        if profile_tool
        else None
    )
    results["failures"] = run.failures
    results["limits"] = run.limits
    results["phases_s"] = phases
    results["phases_cpu_s"] = cpu
    results["meta"]["load_average_at_end"] = environment.load_average()
    return results


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~2 minutes: sizes up to 1,000, fewer rounds")
    parser.add_argument(
        "--profile",
        metavar="TOOL",
        help=f"tool whose open of the largest cassette to profile ('none' to skip; default: {PROFILED})",
    )
    parser.add_argument("--workdir", type=Path, help="record into this empty directory and keep it")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    profile_tool = args.profile or (PROFILED if plan.profile else "none")
    with workdir(args.workdir) as root:
        results = benchmark(plan, root, None if profile_tool == "none" else profile_tool)
    # After the temporary cassettes are deleted: that is part of the run's wall time too.
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["cpu_s"] = round(_cpu_s(), 1)
    print(scale_report.render(results))
    print(f"\nresults: {write_json(results, 'scale')}")
    # Targets are printed, not enforced: only a tool failing to record or replay is an error.
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
