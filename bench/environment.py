"""What a benchmark result was measured on: machine, versions, and the vcr_ext code itself."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

_PACKAGES = ("vcrpy", "cassetter", "openai", "httpx2", "PyYAML", "vcr_ext")


def describe() -> dict[str, Any]:
    cpu_model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        models = (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        cpu_model = next(models, cpu_model)
    return {
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "versions": {name: importlib.metadata.version(name) for name in _PACKAGES},
        "vcr_ext_source": vcr_ext_source(),
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: above ~0.5 the machine was busy with something else."""
    return [round(x, 2) for x in os.getloadavg()]


def vcr_ext_source() -> str:
    """The commit vcr_ext was measured at, and whether its files had uncommitted edits then.

    vcr_ext is installed in development mode and edited by others while benchmarks run, so
    a number is only meaningful next to the code it measured.
    """
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "vcr_ext")
    return f"{commit} + uncommitted changes in vcr_ext/" if dirty else commit
