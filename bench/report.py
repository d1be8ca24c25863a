"""Turning the results dict of :mod:`bench.replay` into the printed tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .tools import BASELINE

Results = dict[str, Any]
Getter = Callable[[dict[str, Any]], float | None]


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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, ratios left-aligned at the end."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            numeric = i > 0 and not headers[i].startswith("vs ")
            parts.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _comparisons(per_tool: dict[str, Any], get: Getter, noun: str, better: str) -> tuple[dict[str, str], str]:
    """Each tool's ratio to the baseline, and the vcr_ext-vs-cassetter line."""
    base = get(per_tool[BASELINE]) if BASELINE in per_tool else None
    ratios = {name: ratio_phrase(get(entry), base, noun, better) for name, entry in per_tool.items()}
    ours = get(per_tool["vcr_ext"]) if "vcr_ext" in per_tool else None
    theirs = get(per_tool["cassetter"]) if "cassetter" in per_tool else None
    return ratios, f"vcr_ext vs cassetter: {ratio_phrase(ours, theirs, noun, better)}"


def _value(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return None if value is None else float(value)


def _suite(results: Results) -> list[str]:
    plan = results["plan"]
    per_tool = results["suite"]
    ratios, versus = _comparisons(per_tool, lambda e: _value(e, "best_s"), "time", "faster")
    rows = [
        [
            name,
            _fmt(e.get("best_s"), 3),
            _fmt(e.get("per_test_ms"), 3),
            _fmt(e.get("median_s"), 3),
            ratios[name],
        ]
        for name, e in per_tool.items()
    ]
    title = (
        f"Suite replay: {plan['units']} tests, one cassette each, 3 calls each "
        f"(~{results['traffic']['stream_chunks']}-chunk streamed tool call + chat + embeddings), "
        f"best of {plan['repeats']}"
    )
    headers = ["tool", "total s", "per test ms", "median s", f"vs {BASELINE}"]
    return [title, *table(headers, rows), versus]


def _lookup(results: Results) -> list[str]:
    sizes = [str(m) for m in results["plan"]["lookup_sizes"]]
    by_tool: dict[str, dict[str, Any]] = {}
    for size in sizes:
        for name, entry in results["lookup"].get(size, {}).items():
            by_tool.setdefault(name, {})[size] = entry
    largest = sizes[-1]

    def per_request(size: str) -> Getter:
        return lambda e: _value(e.get(size, {}), "per_request_us")

    ratios, versus = _comparisons(by_tool, per_request(largest), "time", "faster")
    rows = []
    for name, entries in by_tool.items():
        cells = [_fmt(per_request(size)(entries), 1) for size in sizes]
        first, last = per_request(sizes[0])(entries), per_request(largest)(entries)
        growth = f"{last / first:.2f}x" if first and last else "n/a"
        load = _fmt(_value(entries.get(largest, {}), "open_ms"), 2)
        rows.append([name, *cells, growth, load, ratios[name]])
    headers = [
        "tool",
        *(f"M={m} us/req" for m in sizes),
        f"M={largest} / M={sizes[0]}",
        f"open M={largest} ms",
        f"vs {BASELINE} (M={largest})",
    ]
    title = (
        f"Big cassette lookup: M distinct non-stream chat requests replayed in order from one cassette, "
        f"time per request, best of {results['plan']['lookup_repeats']}"
    )
    return [title, *table(headers, rows), f"{versus} (M={largest})"]


def _load(results: Results) -> list[str]:
    per_tool = results["load"]
    ratios, versus = _comparisons(per_tool, lambda e: _value(e, "per_cassette_ms"), "time", "faster")
    rows = [[name, _fmt(e.get("per_cassette_ms"), 3), ratios[name]] for name, e in per_tool.items()]
    title = (
        f"Cassette load: open and close a suite cassette (3 interactions) without calls, "
        f"best of {results['plan']['repeats']}"
    )
    return [title, *table(["tool", "ms per cassette", f"vs {BASELINE}"], rows), versus]


def _size(results: Results) -> list[str]:
    per_tool = results["size"]
    ratios, versus = _comparisons(per_tool, lambda e: _value(e, "bytes"), "size", "smaller")
    rows = [
        [name, f"{e['bytes']:,}", str(e["files"]), f"{e['bytes_per_test']:,.0f}", ratios[name]]
        for name, e in per_tool.items()
    ]
    title = f"Cassette size on disk: the suite's {results['plan']['units']} cassettes"
    return [title, *table(["tool", "bytes", "files", "bytes per test", f"vs {BASELINE}"], rows), versus]


def _memory(results: Results) -> list[str]:
    per_tool = results["memory"]
    traced, versus = _comparisons(per_tool, lambda e: _value(e, "traced_peak_bytes"), "memory", "less")
    rss, rss_versus = _comparisons(per_tool, lambda e: _value(e, "rss_growth_kib"), "memory", "less")
    rows = [
        [
            name,
            _fmt(_mib(e.get("traced_peak_bytes")), 2),
            traced[name],
            _fmt(_mib(1024 * e["rss_growth_kib"]) if e.get("rss_growth_kib") is not None else None, 1),
            rss[name],
        ]
        for name, e in per_tool.items()
    ]
    headers = ["tool", "tracemalloc peak MiB", f"vs {BASELINE}", "RSS growth MiB", f"vs {BASELINE} "]
    return [
        "Peak memory replaying the suite (tracemalloc: Python allocations only, blind to Rust;"
        " RSS growth: fresh process, native included)",
        *table(headers, rows),
        f"{versus} (tracemalloc); {rss_versus.split(': ', 1)[1]} (RSS)",
    ]


def _mib(value: float | None) -> float | None:
    return None if value is None else value / (1024 * 1024)


def _failures(results: Results) -> list[str]:
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


def render(results: Results) -> str:
    meta = results["meta"]
    header = [
        f"vcr_ext replay benchmark ({results['plan']['name']}) {meta['timestamp']}",
        f"machine: {meta['cpus']} cores, {meta['cpu_model']}, Python {meta['python']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"matching: {results['traffic']['matching']}",
    ]
    sections = [header, _suite(results), _lookup(results), _load(results), _size(results), _memory(results)]
    sections += [s for s in (_failures(results), _profile(results)) if s]
    return "\n\n".join("\n".join(section) for section in sections)
