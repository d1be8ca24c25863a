"""``vcr-ext prune``: list, and with ``--write`` remove, the recordings no test played in the last run.

The last run is the last pytest session run with ``--vcr-ext-unused=warn`` (or ``fail``):
the plugin keeps which recordings of each cassette opened were played in pytest's cache
(``.pytest_cache/v/vcr_ext/usage``). Only cassettes that run opened are looked at.

Removing is all-or-nothing per cassette and under its lock, like a save: a directory
cassette is swapped for one without the unused files, a one-file cassette rewritten
without the unused records. A file that changed since the run is left alone, and
``--write`` refuses a run that failed tests or deselected some (its tally may miss
recordings those tests use) unless ``--force``.

Exit status: 0 done (or nothing unused), 1 unused recordings listed without ``--write``
when ``--check`` asks for a failure, 2 no usage data or a cassette that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from .. import atomic, locking, order, record, usage
from ..errors import CassetteFormatError


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "prune",
        help="list (--write: remove) recordings no test played in the last --vcr-ext-unused run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".pytest_cache"),
        help="pytest's cache folder of the project (default: .pytest_cache)",
    )
    parser.add_argument("--write", action="store_true", help="remove the unused recordings")
    parser.add_argument(
        "--force", action="store_true", help="with --write: even after a run that failed or deselected tests"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if any recording is unused (for CI)")
    parser.add_argument("--json", action="store_true", help="print the unused recordings as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cache_file = args.cache_dir / "v" / usage.CACHE_KEY
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        facts, tally = data["run"], data["cassettes"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(
            f"vcr-ext prune: no usage of a run in {cache_file} ({err}): run pytest with "
            "--vcr-ext-unused=warn first",
            file=sys.stderr,
        )
        return 2
    unused = usage.unused(tally)
    if args.json:
        listed = [{"cassette": r.cassette, "file": r.file, "index": r.index} for r in unused]
        print(json.dumps(listed, indent=2))
    else:
        for recording in unused:
            print(usage.describe(recording))
        print(f"{len(unused)} recording(s) no test played in the last run", file=sys.stderr)
    if not args.write:
        return 1 if args.check and unused else 0
    if (facts.get("failed") or facts.get("deselected")) and not args.force:
        print(
            f"vcr-ext prune: the last run failed {facts.get('failed', 0)} test(s) and deselected "
            f"{facts.get('deselected', 0)}: its tally may miss recordings those tests play. "
            "Run the whole suite again, or pass --force.",
            file=sys.stderr,
        )
        return 2
    status = 0
    by_cassette: dict[str, list[usage.Recording]] = defaultdict(list)
    for recording in unused:
        by_cassette[recording.cassette].append(recording)
    for cassette, recordings in by_cassette.items():
        try:
            removed = remove(Path(cassette), recordings)
        except CassetteFormatError as err:
            print(f"vcr-ext prune: {err}", file=sys.stderr)
            status = 2
            continue
        print(f"{cassette}: removed {removed} of {len(recordings)} unused recording(s)", file=sys.stderr)
    return status


def _unchanged(recording: usage.Recording) -> bool:
    try:
        stat = os.stat(recording.file)
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == (recording.size, recording.mtime_ns)


def remove(cassette: Path, recordings: list[usage.Recording]) -> int:
    """Remove ``recordings`` from ``cassette`` in one atomic step; returns how many were removed."""
    with locking.cassette_lock(cassette):
        current = [r for r in recordings if _unchanged(r)]
        for r in recordings:
            if r not in current:
                print(f"{usage.describe(r)}: changed since the run, left as it is", file=sys.stderr)
        by_file: dict[str, set[int | None]] = defaultdict(set)
        for r in current:
            by_file[r.file].add(r.index)
        if not by_file:
            return 0
        if not cassette.is_dir():
            # A one-file cassette: the list of records, less the unused ones.
            (file, indexes), *_ = by_file.items()
            remaining = _without(Path(file), indexes)
            if remaining is None:
                os.unlink(file)
            else:
                atomic.write_atomic(Path(file), remaining)
            return len(current)
        names = os.listdir(cassette)
        drop: set[str] = set()
        rewrite: dict[str, bytes] = {}
        for file, indexes in by_file.items():
            name = os.path.relpath(file, os.path.realpath(cassette))
            if os.sep in name or name not in names:
                continue  # a file of extra_paths, not of this directory
            remaining = None if indexes == {None} else _without(Path(file), indexes)
            if remaining is None:
                drop.add(name)
            else:
                rewrite[name] = remaining
        manifest = order.read_manifest(cassette)
        keep = [n for n in names if n not in drop and n not in rewrite and n != order.ORDER_FILE]
        if manifest:
            listed = [n for n in manifest if n not in drop]
            text = order.manifest_text([n for n in listed if n in names])
            if text is not None:
                rewrite[order.ORDER_FILE] = text.encode("utf-8")
        elif order.ORDER_FILE in names:
            keep.append(order.ORDER_FILE)
        atomic.replace_directory(cassette, keep, rewrite)
        return len(current)


def _without(file: Path, indexes: set[int | None]) -> bytes | None:
    """The bytes of a list-of-records file less the records at ``indexes``; ``None`` if none is left."""
    raw = file.read_bytes()
    doc = record.parse(raw, file)
    if not isinstance(doc, list):
        return None if None in indexes else raw
    kept = [rec for i, rec in enumerate(doc) if i not in indexes]
    if not kept:
        return None
    # Written as the file was (escaped or not), so the records kept stay byte-identical.
    return record.dumps(kept, ascii_only=raw.isascii()).encode("utf-8")
