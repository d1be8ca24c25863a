"""A whole folder replayed in every mode, and the report printed per provider, endpoint and client call."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cases import ASYNC, ASYNC_HELPER, HELPER, LABELS, MODES, SYNC, Case, discover
from .replay import Outcome, close_async, replay, replay_async, skipped


@dataclass
class Run:
    """The outcomes of a whole folder, and how long they took."""

    root: Path
    cases: list[Case]
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and not o.skipped]


def _timed(run: Run, mode: str, work: Callable[[], list[Outcome]]) -> None:
    start = time.perf_counter()
    run.outcomes += work()
    run.seconds[mode] = time.perf_counter() - start


async def _run_async(cases: Sequence[Case], helper: bool) -> list[Outcome]:
    clients: dict[str, Any] = {}
    try:
        return [await replay_async(c, helper=helper, clients=clients) for c in cases]
    finally:
        await close_async(clients)


def run_all(root: Path, *, modes: Iterable[str] = MODES) -> Run:
    """Replay every case of ``root`` in each of ``modes`` (sync, async, ``stream()``)."""
    root = Path(root)
    run = Run(root, discover(root))
    wanted = set(modes)
    run.outcomes += [skipped(c, SYNC) for c in run.cases if c.skip_reason is not None]
    runnable = [c for c in run.cases if c.skip_reason is None]
    if SYNC in wanted:
        _timed(run, SYNC, lambda: [replay(c) for c in runnable])
    if ASYNC in wanted:
        chosen = [c for c in runnable if ASYNC in c.modes]
        _timed(run, ASYNC, lambda: asyncio.run(_run_async(chosen, helper=False)))
    helpers = [c for c in runnable if HELPER in c.modes]
    if HELPER in wanted:
        _timed(run, HELPER, lambda: [replay(c, helper=True) for c in helpers])
    if ASYNC_HELPER in wanted:
        _timed(run, ASYNC_HELPER, lambda: asyncio.run(_run_async(helpers, helper=True)))
    return run


def _tally(run: Run, key: Callable[[Case], str]) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for case in run.cases:
        table[key(case)]["recordings"] += 1
        table[key(case)]["skipped"] += case.skip_reason is not None
    for o in run.outcomes:
        if not o.skipped:
            table[key(o.case)][f"{o.mode} {'pass' if o.ok else 'FAIL'}"] += 1
        elif o.case.skip_reason is None:
            # A recording replayed in some modes and not in this one (the SDK refused the call).
            table[key(o.case)][f"{o.mode} skip"] += 1
    return table


def _cells(row: Counter[str]) -> list[str]:
    cells = [str(row["recordings"]), str(row["skipped"])]
    for mode in MODES:
        passed, failed, skipped = row[f"{mode} pass"], row[f"{mode} FAIL"], row[f"{mode} skip"]
        cells.append(f"{passed}/{failed}/{skipped}" if passed or failed or skipped else "-")
    return cells


def _table(title: str, table: dict[str, Counter[str]]) -> list[str]:
    """One table: a row per key, columns recordings, skipped and ``passed/failed/skipped`` per replay mode."""
    headers = ["recordings", "skipped", *(f"{LABELS[mode]} ok/fail/skip" for mode in MODES)]
    width = max([len(title), *map(len, table), len("total")]) + 2
    total: Counter[str] = Counter()
    rows = []
    for name in sorted(table, key=lambda n: (-table[n]["recordings"], n)):
        total.update(table[name])
        rows.append((name, _cells(table[name])))

    def line(name: str, cells: list[str]) -> str:
        return name.ljust(width) + "".join(c.rjust(len(h) + 2) for c, h in zip(cells, headers, strict=True))

    rule = "-" * len(line(title, headers))
    return [line(title, headers), rule, *(line(n, c) for n, c in rows), rule, line("total", _cells(total))]


def _category(detail: str) -> str:
    """A failure detail with per-file specifics removed, to group failures of one cause."""
    head = re.split(r"; [-+~] |: recorded |, missing from|: not recorded", detail, maxsplit=1)[0]
    for noisy in ("http://127.0.0.1:9", "(POST) ", "(GET) "):
        head = head.replace(noisy, "")
    return head[:200]


def render(run: Run) -> str:
    """The report of a run: tables per provider, endpoint and kind, skips, failures with details."""
    total = len(run.cases)
    seconds = ", ".join(f"{LABELS[m]} {s:.1f}s" for m, s in run.seconds.items())
    lines = [f"vcr-ext conformance: {run.root} ({total} recordings; {seconds})", ""]
    for title, key in (
        ("provider", lambda c: c.provider),
        ("endpoint (as recorded)", lambda c: c.endpoint or "(none)"),
        ("kind -> client call", lambda c: f"{c.kind} -> {c.client_call or '-'}"),
    ):
        lines += [*_table(title, _tally(run, key)), ""]
    skipped = [o for o in run.outcomes if o.skipped]
    lines.append(f"skipped: {len(skipped)}")
    # A recording skipped as a whole is named once; one skipped in a single mode names the mode.
    lines += [
        f"  {o.case.name}: {o.detail}"
        if o.case.skip_reason
        else f"  {o.case.name} [{LABELS[o.mode]}]: {o.detail}"
        for o in skipped
    ]
    failures = run.failures
    passed = sum(1 for o in run.outcomes if o.ok)
    lines += ["", f"replays passed: {passed}, failed: {len(failures)}, skipped: {len(skipped)}"]
    if failures:
        lines += ["", "failures by cause:"]
        groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
        for o in failures:
            groups[(o.case.kind, o.mode, _category(o.detail))].append(o)
        for (kind, mode, cause), outcomes in sorted(groups.items(), key=lambda g: -len(g[1])):
            lines.append(f"  [{len(outcomes)}] {kind} ({LABELS[mode]}): {cause}")
        lines += ["", "failures:"]
        lines += [f"  {o.case.name} [{LABELS[o.mode]}] {o.case.kind}: {o.detail}" for o in failures]
    return "\n".join(lines) + "\n"


def report(root: Path, *, modes: Iterable[str] = MODES) -> str:
    """Replay the whole folder and return the printed report."""
    return render(run_all(root, modes=modes))
