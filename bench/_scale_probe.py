"""Child process of :mod:`bench.scale`: peak memory of one tool replaying one cassette size.

Usage: ``python -m bench._scale_probe TOOL ROOT SIZE COUNT BUDGET_S SKIP_S``; prints one JSON line.
Measured as :mod:`bench._memory_probe` measures the suite: a warm-up replay first (the
10-interaction cassette, or the suite cassette for size 3, so that lazy imports and
first-call caches are not counted), then one pass for resident memory (growth of
``VmHWM`` over ``VmRSS`` before) and one under tracemalloc. A pass opens the cassette,
replays up to COUNT sampled requests (stopping after BUDGET_S seconds: vcrpy takes ~1 s
per request at 10,000), and closes it. The peak is almost all the loaded cassette; the
requests are there so that anything a tool builds lazily on first lookup counts too.
If the plain pass took over SKIP_S seconds (and SKIP_S > 0), the tracemalloc pass is
skipped: it would take ~3x as long, and the RSS growth already bounds the peak.

Results are not checked here (bench.scale checks every timed replay); a replay that
reached for the network would fail on the dead port all the same.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

import openai

from ._memory_probe import reset_peak, status_kib
from .scale_traffic import SUITE_SIZE, cassette_for, replay_call, sample
from .tools import REPLAY, Tool, all_tools
from .traffic import make_client

WARM_UP_SIZE = 10


def _replay(
    tool: Tool, root: Path, client: openai.OpenAI, size: int, indices: list[int], budget_s: float
) -> int:
    """Open, replay ``indices`` until the budget is spent, close; how many requests were replayed."""
    done = 0
    with tool.open(cassette_for(tool, root, size), REPLAY):
        start = time.perf_counter()
        for i in indices:
            replay_call(client, size, i)
            done += 1
            if time.perf_counter() - start > budget_s:
                break
    return done


def main(argv: list[str]) -> int:
    name, root, size, count = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    budget_s, skip_s = float(argv[4]), float(argv[5])
    tool = next(t for t in all_tools() if t.name == name)
    client = make_client("http://127.0.0.1:9/v1")
    warm_up = SUITE_SIZE if size == SUITE_SIZE else WARM_UP_SIZE
    _replay(tool, root, client, warm_up, sample(warm_up, count), budget_s)
    indices = sample(size, count)
    gc.collect()

    # Resident memory first, while tracemalloc's own bookkeeping is not inflating it.
    reset = reset_peak()
    before = status_kib("VmRSS")
    start = time.perf_counter()
    replayed = _replay(tool, root, client, size, indices, budget_s)
    plain_s = time.perf_counter() - start
    peak = status_kib("VmHWM")

    traced_peak: int | None = None
    traced_replayed = 0
    if not skip_s or plain_s <= skip_s:
        gc.collect()
        tracemalloc.start()
        traced_replayed = _replay(tool, root, client, size, indices, budget_s)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    result = {
        "traced_peak_bytes": traced_peak,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "rss_growth_kib": peak - before if reset else None,
        "requests": [replayed, traced_replayed],
        "plain_pass_s": round(plain_s, 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
