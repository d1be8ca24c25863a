"""Turning the results dict of :mod:`bench.scale` into the scale table, the targets and the profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import report
from .report import fmt, table
from .scale_traffic import SUITE_SIZE
from .sdk_only import SDK_ONLY

Results = dict[str, Any]
MIB = 1024 * 1024
OURS, PEER = "vcr_ext", "cassetter"
# The targets: vcr_ext's per-request time at the largest size within this factor of the
# smallest mixed size's; its open time at most this factor of cassetter's; its peak
# memory replaying the largest cassette at most this factor of the cassette's size.
FLAT_LIMIT = 1.5
OPEN_LIMIT = 1.0
MEMORY_LIMIT = 2.0


def _size_label(size: int) -> str:
    return f"{size:,} (suite)" if size == SUITE_SIZE else f"{size:,}"


def _sizes(results: Results) -> list[int]:
    return [SUITE_SIZE, *results["plan"]["sizes"]]


def _tools(results: Results) -> list[str]:
    """Every tool with a row at any size, in the order the run measured them."""
    names: dict[str, None] = {}
    for per_tool in results["replay"].values():
        names.update(dict.fromkeys(per_tool))
    for name in results.get("limits", {}):
        names.setdefault(name, None)
    return list(names)


def _limit(results: Results, size: int, tool: str) -> str | None:
    why: str | None = results.get("limits", {}).get(tool, {}).get(str(size))
    return why


def _get(results: Results, section: str, size: int, tool: str, key: str) -> float | None:
    value = results.get(section, {}).get(str(size), {}).get(tool, {}).get(key)
    return None if value is None else float(value)


def peak_bytes(results: Results, size: int, tool: str) -> float | None:
    """The larger of tracemalloc's peak and the RSS growth: what the replay cost in memory, all told.

    tracemalloc misses native allocations (cassetter's Rust core) and allocator overhead;
    RSS growth misses memory reused from before the pass. Neither alone is the peak.
    """
    traced = _get(results, "memory", size, tool, "traced_peak_bytes")
    rss_kib = _get(results, "memory", size, tool, "rss_growth_kib")
    values = [v for v in (traced, None if rss_kib is None else rss_kib * 1024) if v is not None]
    return max(values) if values else None


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None or base <= 0 else value / base


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _header(results: Results) -> list[str]:
    meta, plan, rec = results["meta"], results["plan"], results["recording"]
    sizes = ", ".join(f"{s:,}" for s in plan["sizes"])
    jobs = rec.get("jobs", [])
    built = ", ".join(
        f"{job['group']} {'yes' if all(job['built_equals_one_go'].values()) else 'NO'} "
        f"(at {', '.join(job['built_equals_one_go'])})"
        for job in jobs
        if job.get("built_equals_one_go")
    )
    # Each job's own time (its process's clock), sizes shortened: "vcr_ext 10,000 95 s".
    took = ", ".join(
        f"{job['group']} {'/'.join(f'{s:,}' for s in job['sizes'])} {sum(job['seconds'].values()):.0f} s"
        for job in jobs
    )
    cpu = results.get("phases_cpu_s", {})
    phases = ", ".join(
        f"{name} {seconds:.0f} s ({cpu.get(name, 0):.0f} CPU s)"
        for name, seconds in results["phases_s"].items()
    )
    return [
        f"vcr_ext scale benchmark ({plan['name']}) {meta['timestamp']}",
        *report.machine_lines(meta),
        f"traffic: one cassette per tool and size of {sizes} distinct chat completions, in blocks of "
        f"{'/'.join(rec['kinds'])} (1 in 5 streamed, ~40 chunks), plus the suite's "
        f"{SUITE_SIZE}-interaction cassette (streamed tool call, chat, embeddings)",
        f"recording: requests built by the openai SDK, sent with httpx2 (no SDK response parsing) to the "
        f"demo server; vcrpy and cassetter recorded in batches, each size written by their own code "
        f"(built == recorded in one go: {built or 'n/a'}); all tools recorded identical responses: "
        f"{'yes' if rec['identical_across_tools'] else 'NO'}",
        f"recording took {rec['record_s']:.0f} s ({plan['record_parallel']} processes at a time; per job: "
        f"{took}; building the requests {rec['build_requests_s']:.0f} s)",
        "replay: openai SDK to a dead port, matching on method + URL path + JSON body for every tool; "
        "every replayed result checked against its recording",
        f"run: {results.get('wall_s', 0):.0f} s wall, {results.get('cpu_s', 0):.0f} CPU s in all processes "
        f"(phases: {phases})",
    ]


def _scale_table(results: Results) -> list[str]:
    plan = results["plan"]
    headers = [
        "size",
        "tool",
        "disk MiB",
        "files",
        "open ms",
        "open / cassetter",
        "per req us",
        "chat us",
        "stream us",
        "req x rounds",
        "tracemalloc MiB",
        "RSS MiB",
        "peak / disk",
    ]
    rows: list[list[str]] = []
    groups: list[int] = []  # row index where each size starts, for a blank line between sizes
    for size in _sizes(results):
        groups.append(len(rows))
        replay = results["replay"].get(str(size), {})
        for tool in _tools(results):
            entry = replay.get(tool)
            disk = _get(results, "disk", size, tool, "bytes")
            if entry is None:
                if _limit(results, size, tool) is not None:
                    files = str(results["disk"].get(str(size), {}).get(tool, {}).get("files", "-"))
                    cells = [fmt(None if disk is None else disk / MIB, 2), files, "cannot open"]
                    rows.append([_size_label(size), tool, *cells, *["-"] * (len(headers) - 5)])
                continue
            rss = _get(results, "memory", size, tool, "rss_growth_kib")
            traced = _get(results, "memory", size, tool, "traced_peak_bytes")
            has_cassette = tool != SDK_ONLY
            rows.append(
                [
                    _size_label(size),
                    tool,
                    fmt(None if disk is None else disk / MIB, 2),
                    str(results["disk"].get(str(size), {}).get(tool, {}).get("files", "-")),
                    fmt(entry["open_ms"], 2) if has_cassette else "-",
                    _x(_ratio(entry["open_ms"], _get(results, "replay", size, PEER, "open_ms")))
                    if has_cassette
                    else "-",
                    fmt(entry["per_request_us"], 0),
                    fmt(entry["chat_us"], 0),
                    fmt(entry["stream_us"], 0),
                    f"{entry['requests']} x {entry['rounds']}",
                    fmt(None if traced is None else traced / MIB, 2),
                    fmt(None if rss is None else rss / 1024, 1),
                    _x(_ratio(peak_bytes(results, size, tool), disk)),
                ]
            )
    lines = table(headers, rows, names=2)
    out = lines[:2]
    for index, line in enumerate(lines[2:]):
        if index in groups[1:]:
            out.append("")
        out.append(line)
    notes = [
        f"{tool} cannot open the {int(size):,}-interaction cassette (a limit of the tool, not a benchmark "
        f"error): {why}"
        for tool, per_size in results.get("limits", {}).items()
        for size, why in per_size.items()
    ]
    return [
        "Scale: per tool and cassette size. open = entering use_cassette (best of the rounds); per req = "
        f"median over every replayed request of every round (sample: up to {plan['sample']} requests in "
        f"whole blocks spread over the cassette, a round stops after {plan['sample_budget_s']:g} s, a "
        f"tool stops repeating a size after {plan['size_budget_s']:g} s); memory: fresh process per tool "
        f"and size, replaying up to {plan['memory_sample']} requests; "
        "peak = max(tracemalloc peak, RSS growth; tracemalloc '-': its pass was skipped, the plain pass "
        f"having taken over {plan['traced_skip_s']:g} s)",
        *out,
        *notes,
    ]


def _growth_table(results: Results) -> list[str]:
    sizes = _sizes(results)
    mixed = sizes[1:]
    first, last = mixed[0], mixed[-1]
    rows = []
    for tool in _tools(results):
        per = [_get(results, "replay", s, tool, "per_request_us") for s in mixed]
        opens = [None if tool == SDK_ONLY else _get(results, "replay", s, tool, "open_ms") for s in sizes]

        def cell(value: float | None, size: int, digits: int, tool: str = tool) -> str:
            return "cannot open" if _limit(results, size, tool) else fmt(value, digits)

        rows.append(
            [
                tool,
                *(cell(v, s, 0) for v, s in zip(per, mixed, strict=True)),
                _x(_ratio(per[-1], per[0])),
                *(cell(v, s, 2) for v, s in zip(opens, sizes, strict=True)),
                _x(_ratio(opens[-1], opens[0])),
            ]
        )
    headers = [
        "tool",
        *(f"req us @{s:,}" for s in mixed),
        f"{last:,} / {first:,}",
        *(f"open ms @{s:,}" for s in sizes),
        f"{last:,} / {SUITE_SIZE}",
    ]
    return [
        "Growth with cassette size: per-request median (us) and open time (ms) at each size",
        *table(headers, rows),
    ]


def _own_us(results: Results, size: int) -> float | None:
    """vcr_ext's per-request time minus sdk-only's (same rounds): what the recorder itself adds."""
    ours = _get(results, "replay", size, OURS, "per_request_us")
    sdk = _get(results, "replay", size, SDK_ONLY, "per_request_us")
    return None if ours is None or sdk is None else ours - sdk


def _verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "FAIL")


def _targets(results: Results) -> list[str]:
    sizes = _sizes(results)
    first, last = sizes[1], sizes[-1]
    note = "" if last >= 10_000 else f" (quick run: {last:,} stands in for 10,000)"
    lines = [f"Targets (printed, not enforced){note}"]

    small, big = (_get(results, "replay", s, OURS, "per_request_us") for s in (first, last))
    flat = _ratio(big, small)
    lines.append(
        f"TARGET 1 {_verdict(None if flat is None else flat <= FLAT_LIMIT)}  vcr_ext per-request replay "
        f"flat: {fmt(big, 0)} us at {last:,} / {fmt(small, 0)} us at {first:,} = {_x(flat)} "
        f"(limit {FLAT_LIMIT:.2f}x)"
    )
    own = [_own_us(results, size) for size in (first, last)]
    lines.append(
        f"         (minus sdk-only's time, the recorder's own: {fmt(own[0], 0)} us at {first:,}, "
        f"{fmt(own[1], 0)} us at {last:,}; not a target)"
    )

    verdicts = []
    unopened = []
    for size in sizes:
        ours, peer = (_get(results, "replay", size, tool, "open_ms") for tool in (OURS, PEER))
        ratio = _ratio(ours, peer)
        ok = None if ratio is None else ratio <= OPEN_LIMIT
        head = f"TARGET 2 {_verdict(ok)}  open no slower than cassetter at {_size_label(size)}: vcr_ext"
        if _limit(results, size, PEER) is not None and ours is not None:
            unopened.append(f"{size:,}")
            lines.append(
                f"{head} {fmt(ours, 2)} ms / cassetter cannot open it = nothing to compare "
                "(see the note under the scale table)"
            )
            continue
        verdicts.append(ok)
        lines.append(
            f"{head} {fmt(ours, 2)} ms / cassetter {fmt(peer, 2)} ms = {_x(ratio)} (limit {OPEN_LIMIT:.2f}x)"
        )
    every = None if None in verdicts or not verdicts else all(verdicts)
    where = "every size" + (f" cassetter can open (it cannot open {', '.join(unopened)})" if unopened else "")
    lines.append(f"TARGET 2 {_verdict(every)}  open no slower than cassetter at {where}")

    disk = _get(results, "disk", last, OURS, "bytes")
    peak = peak_bytes(results, last, OURS)
    memory_ratio = _ratio(peak, disk)
    lines.append(
        f"TARGET 3 {_verdict(None if memory_ratio is None else memory_ratio <= MEMORY_LIMIT)}  vcr_ext peak "
        f"memory replaying {last:,}: {fmt(None if peak is None else peak / MIB, 1)} MiB / "
        f"{fmt(None if disk is None else disk / MIB, 1)} MiB on disk = {_x(memory_ratio)} (limit "
        f"{MEMORY_LIMIT:.2f}x)"
    )
    others = []
    for tool in _tools(results):
        if tool in (OURS, SDK_ONLY):
            continue
        if _limit(results, last, tool) is not None:
            others.append(f"{tool} cannot open it")
        elif tool in results["memory"].get(str(last), {}):
            ratio = _ratio(peak_bytes(results, last, tool), _get(results, "disk", last, tool, "bytes"))
            others.append(f"{tool} {_x(ratio)}")
    lines.append(f"         others, peak / disk at {last:,} (not targets): {', '.join(others) or 'n/a'}")
    return lines


def _profile_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[r["function"], str(r["ncalls"]), f"{r['tottime']:.3f}", f"{r['cumtime']:.3f}"] for r in rows]


def _profile(results: Results) -> list[str]:
    prof = results.get("profile")
    if not prof:
        return []
    cumulative, own, alloc = prof["cumulative"], prof["own"], prof["allocations"]
    split = ", ".join(
        f"{k} {v / own['total_s']:.0%}" for k, v in own["by_package"].items() if v / own["total_s"] >= 0.005
    )
    headers = ["function", "ncalls", "tottime", "cumtime"]

    def alloc_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
        return [[r["site"], f"{r['bytes'] / MIB:,.1f}", f"{r['blocks']:,}"] for r in rows]

    by_package = ", ".join(
        f"{k} {v / MIB:,.1f}" for k, v in alloc["by_package"].items() if v / alloc["retained_bytes"] >= 0.005
    )
    return [
        f"cProfile of entering {prof['tool']}'s {prof['size']:,}-interaction cassette "
        f"({cumulative['total_s']:.2f} s under the profiler): top {len(cumulative['rows'])} functions "
        "by cumulative time",
        *table(headers, _profile_rows(cumulative["rows"])),
        "",
        f"the same, top {len(own['rows'])} by own time ({own['total_s']:.2f} s under the profiler)",
        *table(headers, _profile_rows(own["rows"])),
        f"own time by package: {split}",
        "",
        f"tracemalloc of the same open: peak {alloc['peak_bytes'] / MIB:,.1f} MiB, still held with the "
        f"cassette open {alloc['retained_bytes'] / MIB:,.1f} MiB; held, by allocating line:",
        *table(["line", "MiB", "blocks"], alloc_rows(alloc["by_line"])),
        "held, by the innermost vcr_ext (else vcrpy) line on the stack:",
        *table(["line", "MiB", "blocks"], alloc_rows(alloc["by_caller"])),
        f"held MiB by package of the allocating line: {by_package}",
    ]


def render(results: Results) -> str:
    sections = [_header(results), _scale_table(results), _growth_table(results), _targets(results)]
    sections += [s for s in (report.failure_lines(results), _profile(results)) if s]
    return "\n\n".join("\n".join(section) for section in sections)
