"""``vcr-ext convert SRC DST``: plain vcrpy cassettes to our format and back, and between our layouts.

Sources: a plain vcrpy cassette (YAML or JSON serializer, any vcrpy version's layout), a
cassette of our format in either layout (a directory of one-record files, or one
``.json`` file holding a list of records), or a llama-stack ``recordings/`` directory
(which is one of ours already). Targets: our format (``--to vcr-ext``, the default) in
either layout (``--layout dir|file``; by default a DST ending in ``.json`` is a file), or
a plain vcrpy cassette (``--to vcrpy``, YAML unless ``--serializer json`` or a DST
ending in ``.json``).

A vcrpy interaction becomes a record by the recorder's own path
(:func:`vcr_ext.interactions.to_record`: request headers dropped, compression undone,
streams typed per event); records of our format are carried over as they are, only the
layout changes. Before anything is written every record is scanned for credentials: if
one holds a secret nothing is written (exit 1). The DST is written in one atomic step
and never replaces an existing path without ``--force``.

Exit codes: 0 converted; 1 a secret was found (or the write failed); 2 a usage error or
bad input, with a message naming the file, the interaction or record, and the field.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import atomic, locking, order, record, scrub
from ..errors import CassetteFormatError
from ..formats import vcrpy
from ..interactions import file_stem
from ..persister import Persister
from ..progress import track
from ..secrets import SecretFoundError, SecretHit, SecretScanner, mask

PROG = "vcr-ext convert"
EXIT_OK, EXIT_CHECK, EXIT_USAGE = 0, 1, 2
Target = Literal["vcr-ext", "vcrpy"]
Source = Literal["auto", "vcrpy", "vcr-ext"]


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "convert",
        help="convert plain vcrpy cassettes to vcr_ext's format and back, or between layouts",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", type=Path, metavar="SRC", help="the cassette to read (file or directory)")
    parser.add_argument("dst", type=Path, metavar="DST", help="where to write the converted cassette")
    parser.add_argument(
        "--from",
        dest="source",
        choices=("auto", "vcrpy", "vcr-ext"),
        default="auto",
        help="what SRC is (default: a .yaml/.yml file or one shaped like a vcrpy cassette is vcrpy)",
    )
    parser.add_argument(
        "--to", choices=("vcr-ext", "vcrpy"), default="vcr-ext", help="the format to write (default: vcr-ext)"
    )
    parser.add_argument(
        "--layout",
        choices=("dir", "directory", "file"),
        help="our format's layout (default: file if DST ends in .json, else dir)",
    )
    parser.add_argument(
        "--serializer",
        choices=tuple(vcrpy.SERIALIZERS),
        help="with --to vcrpy: vcrpy's serializer (default: json if DST ends in .json, else yaml)",
    )
    parser.add_argument("--force", action="store_true", help="replace DST if it exists")
    parser.add_argument("--test-id", help="the test_id to give records converted from vcrpy (default: none)")
    parser.add_argument(
        "--keep-response-header",
        action="append",
        default=[],
        metavar="NAME",
        help="also keep this response header (repeatable; see keep_response_headers)",
    )
    parser.add_argument(
        "--allow-secret",
        action="append",
        default=[],
        metavar="VALUE",
        help="a known false positive the secret scanner lets through (repeatable)",
    )
    parser.set_defaults(run=run)


class UsageError(Exception):
    """A mistake in the command line or its paths: exit 2 with this message."""


@dataclass
class Item:
    """One record to write, where it came from (for messages) and the file name it keeps, if any."""

    record: dict[str, Any]
    label: str
    name: str | None = None


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    except (CassetteFormatError, vcrpy.UnwritableCassetteError) as err:
        _error(str(err))
        return EXIT_USAGE
    except SecretFoundError as err:  # a check of a write path, should a record slip past the scan
        _error(str(err))
        return EXIT_CHECK
    except OSError as err:
        _error(f"cannot write {args.dst}: {err}")
        return EXIT_CHECK


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    src: Path = args.src
    dst: Path = args.dst
    if not os.path.lexists(src):
        raise UsageError(f"{src}: no such file or directory")
    target: Target = args.to
    if target == "vcrpy" and args.layout:
        raise UsageError("--layout is for our format; a vcrpy cassette is one file (use --serializer)")
    if target == "vcr-ext" and args.serializer:
        raise UsageError("--serializer is for --to vcrpy")
    file_target = target == "vcrpy" or (args.layout or ("file" if dst.suffix == ".json" else "dir")) == "file"
    _check_destination(dst, file_target=file_target, force=args.force)

    keep = scrub.KEEP_RESPONSE_HEADERS | {h.lower() for h in args.keep_response_header}
    source = _source_kind(src, args.source)
    if source == "vcrpy":
        items, what = _read_vcrpy(src, test_id=args.test_id, keep=keep)
    else:
        items, what = _read_ours(src)

    hit = _find_secret(items, SecretScanner(allow=tuple(args.allow_secret)))
    if hit is not None:
        item, found = hit
        detail = f" ({found.detail})" if found.detail else ""
        _error(
            f"{item.label}: field '{found.json_path}' holds {found.kind} ({mask(found.value)}){detail}. "
            f"Nothing was written: {dst} is as it was. Remove the secret from the source, or pass "
            "--allow-secret VALUE if it is a known false positive."
        )
        return EXIT_CHECK

    records = [item.record for item in items]
    if target == "vcrpy":
        serializer: vcrpy.Serializer = args.serializer or ("json" if dst.suffix == ".json" else "yaml")
        # Scanned above, with the source named: the write need not scan again.
        vcrpy.write(dst, records, serializer, save_checks=())
        wrote = f"vcrpy cassette ({serializer})"
    elif file_target:
        _write_file(dst, records)
        wrote = "one file"
    else:
        files = _write_directory(dst, items)
        wrote = f"a directory of {files} files"
    print(f"converted {len(items)} interaction(s): {src} ({what}) -> {dst} ({wrote})")
    return EXIT_OK


# -- paths ------------------------------------------------------------------------


def _check_destination(dst: Path, *, file_target: bool, force: bool) -> None:
    """Refuse a DST that exists (unless ``force``) or that a write would have to destroy to replace."""
    if not os.path.lexists(dst):
        return
    if not force:
        raise UsageError(f"{dst} exists; pass --force to replace it")
    if file_target and dst.is_dir():
        raise UsageError(f"{dst} is a directory; a one-file cassette cannot replace it")
    if not file_target:
        if not dst.is_dir():
            raise UsageError(f"{dst} is a file; a directory cassette cannot replace it (use --layout file)")
        # --force replaces the whole directory in one step: only ever a cassette's, never a
        # folder that holds anything else (a typo'd DST of "tests/" must not be swapped out).
        foreign = sorted(
            entry.name
            for entry in os.scandir(dst)
            if not (entry.name == order.ORDER_FILE or (entry.name.endswith(".json") and entry.is_file()))
        )
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise UsageError(f"{dst} holds more than recordings ({shown}); not replacing it")


def _source_kind(src: Path, given: Source) -> Literal["vcrpy", "vcr-ext"]:
    if given != "auto":
        return given
    if src.is_dir():
        return "vcr-ext"
    if src.suffix.lower() in vcrpy.YAML_SUFFIXES or vcrpy.is_vcrpy_cassette(src):
        return "vcrpy"
    return "vcr-ext"


# -- reading ----------------------------------------------------------------------


def _read_vcrpy(src: Path, *, test_id: str | None, keep: frozenset[str]) -> tuple[list[Item], str]:
    interactions = vcrpy.read_interactions(src)
    records = vcrpy.interaction_records(src, interactions, test_id=test_id, keep_headers=keep)
    items = [
        Item(rec, f"{src}, interaction {i}")
        for i, rec in enumerate(track(records, total=len(interactions), what="interactions"))
    ]
    with open(src, encoding="utf-8", errors="replace") as f:
        serializer = vcrpy.serializer_for(src, f.read(64))
    return items, f"vcrpy cassette ({serializer})"


def _read_ours(src: Path) -> tuple[list[Item], str]:
    persister = Persister(layout="directory" if src.is_dir() else "file")
    items: list[Item] = []
    # The persister's own reader: the same checks, order and skips as loading for replay.
    for name, file, index, rec in track(persister.records(src), what="records"):
        label = os.fspath(file) if index is None else f"{file}, record {index}"
        items.append(Item(rec, label, name))
    for skipped in persister.skipped:
        where = skipped.path if skipped.index is None else f"{skipped.path}, record {skipped.index}"
        print(f"{PROG}: skipped {where}: {skipped.reason}", file=sys.stderr)
    if not items:
        hint = ""
        if src.is_dir() and any(p.suffix.lower() in vcrpy.YAML_SUFFIXES for p in src.iterdir()):
            hint = " (it holds vcrpy cassettes: convert each file on its own)"
        raise UsageError(f"{src}: holds no recordings to convert{hint}")
    what = "a directory of recordings" if src.is_dir() else "one file of recordings"
    return items, what


def _find_secret(items: Sequence[Item], scanner: SecretScanner) -> tuple[Item, SecretHit] | None:
    """The first record holding a secret, and where in it; ``None`` if none does.

    One scan over every record (the scanner is built for volume), then the record it
    names is scanned alone for the hit's details.
    """
    labels = [Path(str(i)) for i in range(len(items))]
    try:
        scanner(list(zip(labels, (item.record for item in items), strict=True)))
    except SecretFoundError as err:
        item = items[int(err.file)]
        hit = scanner.find_hit(item.record)
        if hit is None:  # not expected: the same scanner found it in this record
            hit = SecretHit(err.json_path, err.kind, "", err.detail)
        return item, hit
    return None


# -- writing ----------------------------------------------------------------------


def _write_file(dst: Path, records: list[dict[str, Any]]) -> None:
    with locking.cassette_lock(dst):
        atomic.recover(dst)
        atomic.write_atomic(dst, record.dumps(records).encode("utf-8"))


def _write_directory(dst: Path, items: Sequence[Item]) -> int:
    """Write one file per record (named as the persister names them) and the order file if needed."""
    used: set[str] = set()
    names: list[str] = []
    writes: dict[str, bytes] = {}
    for item in items:
        # A one-record file keeps its name (llama-stack's are looked up by it); a new
        # record is named by its request hash, repeats numbered: <hash>.json, <hash>.2.json.
        stem = item.name[: -len(".json")] if item.name else file_stem(item.record)
        name, n = f"{stem}.json", 1
        while name in used:
            n += 1
            name = f"{stem}.{n}.json"
        used.add(name)
        names.append(name)
        writes[name] = record.dumps(item.record).encode("utf-8")
    text = order.manifest_text(names)
    if text is not None:
        writes[order.ORDER_FILE] = text.encode("utf-8")
    with locking.cassette_lock(dst):
        atomic.recover(dst)
        atomic.replace_directory(dst, [], writes)
    return len(names)
