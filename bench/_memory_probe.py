"""Child process of :func:`bench.measure.rss_growth`: replay the recorded suite once, print RSS as JSON.

Usage: ``python -m bench._rss_probe TOOL ROOT UNITS``. The suite must already be
recorded under ROOT by ``bench.replay``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .scenarios import suite_cassette
from .tools import REPLAY, all_tools
from .traffic import make_client, run_unit


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    # Linux resets VmHWM to the current RSS on "5"; without it, import-time peaks would count.
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    name, root, units = argv[0], Path(argv[1]), int(argv[2])
    tool = next(t for t in all_tools() if t.name == name)
    client = make_client("http://127.0.0.1:9/v1")
    # Warm up on one test so that lazy imports and first-call caches are not counted.
    with tool.open(suite_cassette(tool, root, 0), REPLAY):
        run_unit(client, 0)
    reset = _reset_peak()
    before = _status_kib("VmRSS")
    for i in range(units):
        with tool.open(suite_cassette(tool, root, i), REPLAY):
            run_unit(client, i)
    peak = _status_kib("VmHWM")
    print(
        json.dumps(
            {"rss_before_kib": before, "rss_peak_kib": peak, "growth_kib": peak - before, "reset": reset}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
