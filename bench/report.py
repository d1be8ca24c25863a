"""Turning the results dict of :mod:`bench.replay` into the printed tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .sdk_only import SDK_ONLY
from .tools import BASELINE

Results = dict[str, Any]
Entry = dict[str, Any]
Getter = Callable[[Entry], float | None]
VS_BASELINE = f"vs {BASELINE}"


def ratio_phrase(value: float | None, base: float | None, noun: str = "time", better: str = "faster") -> str:
    """``0.21x time = 4.8x faster``: the ratio, and how many times better or worse that is."""
    if value is None or base is None or base <= 0 or value <= 0:
        return "n/a"
    ratio = value / base
    worse = {"faster": "slower", "smaller": "larger", "less": "more"}[better]
    if abs(ratio - 1) < 0.005:
        return f"1.00x {noun} = same"
    if ratio < 1:
        return f"{ratio:.2f}x {noun} = {1 / ratio:.1f}x {better}"
    return f"{ratio:.2f}x {noun} = {ratio:.1f}x {worse}"


@dataclass(frozen=True)
class Metric:
    """One number per tool, and its comparisons: to the baseline, and vcr_ext to cassetter."""

    values: dict[str, float | None]
    noun: str
    better: str

    @classmethod
    def of(cls, per_tool: dict[str, Entry], get: Getter, noun: str, better: str) -> Metric:
        return cls({name: get(entry) for name, entry in per_tool.items()}, noun, better)

    def vs_baseline(self, name: str) -> str:
        return ratio_phrase(self.values.get(name), self.values.get(BASELINE), self.noun, self.better)

    def ours_vs_cassetter(self) -> str:
        return ratio_phrase(self.values.get("vcr_ext"), self.values.get("cassetter"), self.noun, self.better)

    def minus_sdk_only(self) -> Metric:
        """The same metric minus the sdk-only row's: roughly what each recorder itself costs."""
        sdk = self.values.get(SDK_ONLY)
        values = {
            name: None if name == SDK_ONLY or value is None or sdk is None else value - sdk
            for name, value in self.values.items()
        }
        return Metric(values, self.noun, self.better)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], names: int = 1) -> list[str]:
    """Left-aligned names (the first ``names`` columns) and ratios, right-aligned numbers."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    numeric = [i >= names and not h.startswith("vs ") for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _get(key: str, scale: float = 1.0) -> Getter:
    def get(entry: Entry) -> float | None:
        value = entry.get(key)
        return None if value is None else float(value) * scale

    return get


def _suite(results: Results) -> list[str]:
    plan, traffic, per_tool = results["plan"], results["traffic"], results["suite"]
    total = Metric.of(per_tool, _get("best_s"), "time", "faster")
    own = Metric.of(per_tool, _get("per_test_ms"), "time", "faster").minus_sdk_only()
    rows = [
        [
            name,
            fmt(entry["best_s"], 3),
            fmt(entry["per_test_ms"], 3),
            fmt(entry["median_s"], 3),
            total.vs_baseline(name),
            fmt(own.values[name], 3),
            own.vs_baseline(name) if own.values[name] is not None else "-",
        ]
        for name, entry in per_tool.items()
    ]
    headers = [
        "tool",
        "total s",
        "per test ms",
        "median s",
        VS_BASELINE,
        "minus sdk-only ms/test",
        VS_BASELINE,
    ]
    return [
        f"Suite replay: {plan['units']} tests, one cassette each, 3 calls each "
        f"(~{traffic['stream_chunks']}-chunk streamed tool call + chat + embeddings), "
        f"best of {plan['repeats']}",
        *table(headers, rows),
        f"vcr_ext vs cassetter: {total.ours_vs_cassetter()} (whole replay); "
        f"{own.ours_vs_cassetter()} (minus sdk-only: the recorder's own time)",
    ]


def _lookup(results: Results) -> list[str]:
    plan = results["plan"]
    sizes = [str(m) for m in plan["lookup_sizes"]]
    by_tool: dict[str, dict[str, Entry]] = {}
    for size in sizes:
        for name, entry in results["lookup"].get(size, {}).items():
            by_tool.setdefault(name, {})[size] = entry
    first, largest = sizes[0], sizes[-1]
    per_size = {
        size: Metric.of(
            {n: e.get(size, {}) for n, e in by_tool.items()}, _get("per_request_us"), "time", "faster"
        )
        for size in sizes
    }
    own = per_size[largest].minus_sdk_only()
    rows = []
    for name, entries in by_tool.items():
        small, big = per_size[first].values[name], per_size[largest].values[name]
        rows.append(
            [
                name,
                *(fmt(per_size[size].values[name], 1) for size in sizes),
                f"{big / small:.2f}x" if small and big else "-",
                "-" if name == SDK_ONLY else fmt(_get("open_ms")(entries.get(largest, {})), 2),
                "/".join(str(entries[size]["runs"]) if size in entries else "-" for size in sizes),
                per_size[largest].vs_baseline(name),
                fmt(own.values[name], 1),
            ]
        )
    headers = [
        "tool",
        *(f"M={m} us/req" for m in sizes),
        f"M={largest} / M={first}",
        f"open M={largest} ms",
        "runs",
        f"{VS_BASELINE} (M={largest})",
        f"minus sdk-only us/req (M={largest})",
    ]
    return [
        f"Big cassette lookup: M distinct non-stream chat requests replayed in order from one cassette, "
        f"time per request, best of up to {plan['lookup_repeats']} runs (a tool stops repeating a size "
        f"after {plan['lookup_budget_s']:g} s)",
        *table(headers, rows),
        f"vcr_ext vs cassetter (M={largest}): {per_size[largest].ours_vs_cassetter()} (per request); "
        f"{own.ours_vs_cassetter()} (minus sdk-only)",
    ]


def _load(results: Results) -> list[str]:
    per_tool = results["load"]
    load = Metric.of(per_tool, _get("per_cassette_ms"), "time", "faster")
    rows = [[name, fmt(load.values[name], 3), load.vs_baseline(name)] for name in per_tool]
    return [
        f"Cassette load: open and close one suite cassette (3 interactions) without calls, "
        f"best of {results['plan']['repeats']} passes over the {results['plan']['units']} cassettes",
        *table(["tool", "ms per cassette", VS_BASELINE], rows),
        f"vcr_ext vs cassetter: {load.ours_vs_cassetter()}",
    ]


def _size(results: Results) -> list[str]:
    per_tool = results["size"]
    size = Metric.of(per_tool, _get("bytes"), "size", "smaller")
    rows = [
        [name, f"{e['bytes']:,}", str(e["files"]), f"{e['bytes_per_test']:,.0f}", size.vs_baseline(name)]
        for name, e in per_tool.items()
    ]
    return [
        f"Cassette size on disk: the suite's {results['plan']['units']} cassettes",
        *table(["tool", "bytes", "files", "bytes per test", VS_BASELINE], rows),
        f"vcr_ext vs cassetter: {size.ours_vs_cassetter()}",
    ]


def _memory(results: Results) -> list[str]:
    per_tool = results["memory"]
    mib = 1 / (1024 * 1024)
    traced = Metric.of(per_tool, _get("traced_peak_bytes", mib), "memory", "less")
    rss = Metric.of(per_tool, _get("rss_growth_kib", 1 / 1024), "memory", "less")
    rows = [
        [
            name,
            fmt(traced.values[name]),
            traced.vs_baseline(name),
            fmt(rss.values[name], 1),
            rss.vs_baseline(name),
        ]
        for name in per_tool
    ]
    headers = ["tool", "tracemalloc peak MiB", VS_BASELINE, "RSS growth MiB", VS_BASELINE]
    return [
        f"Peak memory replaying {results['plan']['memory_units']} tests of the suite, fresh process per tool "
        "(tracemalloc: Python allocations only, "
        "blind to Rust; RSS growth: peak resident minus resident before, native included)",
        *table(headers, rows),
        f"vcr_ext vs cassetter: {traced.ours_vs_cassetter()} (tracemalloc); {rss.ours_vs_cassetter()} (RSS)",
    ]


def failure_lines(results: Results) -> list[str]:
    lines = []
    for tool, scenarios in results["failures"].items():
        for scenario, trace in scenarios.items():
            lines += [f"FAILED {tool} / {scenario}:", *("    " + t for t in trace.rstrip().splitlines())]
    return lines


def _profile(results: Results) -> list[str]:
    prof = results.get("profile")
    if not prof:
        return []
    rows = [
        [row["function"], str(row["ncalls"]), f"{row['tottime']:.3f}", f"{row['cumtime']:.3f}"]
        for row in prof["rows"]
    ]
    split = ", ".join(f"{k} {v / prof['total_s']:.0%}" for k, v in prof["by_package"].items() if v > 0)
    return [
        f"cProfile of one {prof['tool']} suite replay ({prof['total_s']:.2f} s under the profiler): "
        f"top {len(rows)} {'/'.join(prof['packages'])} functions by cumulative time",
        *table(["function", "ncalls", "tottime", "cumtime"], rows),
        f"own time by package: {split}",
    ]


def machine_lines(meta: dict[str, Any]) -> list[str]:
    """Machine, load, versions and vcr_ext commit: what any of bench's reports was measured on."""
    return [
        f"machine: {meta['cpus']} cores, {meta['cpu_model']}, Python {meta['python']}; load average "
        f"{meta['load_average_at_start'][0]:.2f} at start, {meta['load_average_at_end'][0]:.2f} at end",
        "versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"vcr_ext source: {meta['vcr_ext_source']}",
    ]


def render(results: Results) -> str:
    meta, traffic = results["meta"], results["traffic"]
    header = [
        f"vcr_ext replay benchmark ({results['plan']['name']}) {meta['timestamp']}",
        *machine_lines(meta),
        f"matching: {traffic['matching']}; every replayed result checked against its recording",
        f"{SDK_ONLY}: the same calls answered with the live wire bytes by httpx2.MockTransport, no recorder",
    ]
    sections = [header, _suite(results), _lookup(results), _load(results), _size(results), _memory(results)]
    sections += [s for s in (failure_lines(results), _profile(results)) if s]
    return "\n\n".join("\n".join(section) for section in sections)
