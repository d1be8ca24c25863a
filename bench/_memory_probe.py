"""Child process of :func:`bench.measure.memory_in_child`: peak memory of one tool's suite replay.

Usage: ``python -m bench._memory_probe TOOL ROOT UNITS``; prints one JSON line. The suite
must already be recorded under ROOT by ``bench.replay`` (which also checks the replayed
results; here a replay that reaches for the network fails on the dead port all the same).

A fresh process per tool keeps the other tools' caches and garbage out of the numbers.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from pathlib import Path

import openai

from .scenarios import suite_cassette
from .tools import REPLAY, Tool, all_tools
from .traffic import make_client, run_unit


def status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    # Linux resets VmHWM to the current RSS on "5"; without it, import-time peaks would count.
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _replay(tool: Tool, root: Path, client: openai.OpenAI, units: int) -> None:
    for i in range(units):
        with tool.open(suite_cassette(tool, root, i), REPLAY):
            run_unit(client, i)


def main(argv: list[str]) -> int:
    name, root, units = argv[0], Path(argv[1]), int(argv[2])
    tool = next(t for t in all_tools() if t.name == name)
    client = make_client("http://127.0.0.1:9/v1")
    # Warm up on one test so that lazy imports and first-call caches are not counted.
    _replay(tool, root, client, 1)
    gc.collect()

    # Resident memory first, while tracemalloc's own bookkeeping is not inflating it.
    reset = reset_peak()
    before = status_kib("VmRSS")
    _replay(tool, root, client, units)
    peak = status_kib("VmHWM")

    gc.collect()
    tracemalloc.start()
    _replay(tool, root, client, units)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    result = {
        "traced_peak_bytes": traced_peak,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "rss_growth_kib": peak - before if reset else None,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
