"""Cassette layouts on disk: a directory of one-record files (the default) or one file; atomic writes.

A directory cassette holds one ``<request-hash>.json`` per interaction, so a llama-stack
recordings directory is itself a cassette. Files are indexed by content, never by name
(names written by other tools are not always the hash). Repeats of one request are
written ``<hash>.json``, ``<hash>.2.json``, ... and load back in that order.

Writing never leaves a half-written file: each file is written to a temporary name
beside it and renamed over the old one, and stale files are removed only after every
new one is in place.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.request import Request

from . import context, llamastack, record, scrub
from .interactions import Origin, origin_of, to_interaction, to_record

log = logging.getLogger(__name__)

Layout = Literal["auto", "directory", "file"]
# Called with every (file path, record) about to be written, before anything is written;
# raising stops the save (the secret scanner plugs in here).
SaveCheck = Callable[[Sequence[tuple[Path, dict[str, Any]]]], None]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
_REPEAT = re.compile(r"^(?P<stem>.+)\.(?P<n>\d+)\.json$")


def _order_key(path: Path) -> tuple[str, int]:
    m = _REPEAT.match(path.name)
    return (m["stem"], int(m["n"])) if m else (path.name[: -len(".json")], 1)


@dataclass(frozen=True)
class Skipped:
    """A record that a cassette holds but cannot replay over HTTP, and why."""

    path: str
    index: int | None
    reason: str


@dataclass
class Persister:
    """vcrpy persister for the recording format.

    ``layout``: ``"directory"``, ``"file"`` (one JSON list of records) or ``"auto"``
    (a path ending in ``.json`` is a file, anything else a directory).
    ``extra_paths``: cassettes loaded as well but never written (pytest-recording's
    ``@pytest.mark.vcr("shared")`` arguments). ``rewrite``: ignore what is on disk and
    replace it on save. ``compat``: write new records as llama-stack's recorder does
    (see :mod:`vcr_ext.llamastack`) instead of vcr_ext's own.
    """

    layout: Layout = "auto"
    extra_paths: Sequence[str] = ()
    rewrite: bool = False
    keep_response_headers: frozenset[str] = scrub.KEEP_RESPONSE_HEADERS
    ascii_only: bool = False
    save_checks: Sequence[SaveCheck] = ()
    redactions: scrub.Redactions = field(default_factory=scrub.Redactions)
    compat: llamastack.Variant | None = None
    skipped: list[Skipped] = field(default_factory=list, compare=False)

    @property
    def _ascii(self) -> bool:
        # llama-stack writes with json.dump's default \uXXXX escapes.
        return self.ascii_only or self.compat is not None

    def with_options(self, **changes: Any) -> Persister:
        """A copy with some options changed."""
        return replace(self, skipped=[], **changes)

    # -- layout -------------------------------------------------------------------

    def is_file_layout(self, path: Path) -> bool:
        if self.layout == "auto":
            return path.suffix == ".json" and not path.is_dir()
        return self.layout == "file"

    # -- loading ------------------------------------------------------------------

    def load_cassette(
        self, cassette_path: str | os.PathLike[str], serializer: Any = None
    ) -> tuple[list[Request], list[dict[str, Any]]]:
        """Every replayable interaction of the cassette (and of ``extra_paths``), in recorded order."""
        requests: list[Request] = []
        responses: list[dict[str, Any]] = []
        paths = [] if self.rewrite else [Path(cassette_path)]
        paths += [Path(p) for p in self.extra_paths if Path(p) != Path(cassette_path)]
        for path in paths:
            for name, source, index, rec in self._records(path):
                req, resp = to_interaction(rec, name, source=source, index=index)
                requests.append(req)
                responses.append(resp)
        if not requests:
            raise CassetteNotFoundError(os.fspath(cassette_path))
        return requests, responses

    def _records(self, path: Path) -> Iterable[tuple[str | None, Path, int | None, dict[str, Any]]]:
        """``(file name in a directory cassette, file, index in the file, record)`` of each record."""
        if self.is_file_layout(path):
            if not path.is_file():
                return
            doc = record.read(path)
            items = doc if isinstance(doc, list) else [doc]
            for i, rec in enumerate(items):
                index = i if isinstance(doc, list) else None
                if self._keep(rec, path, index):
                    yield None, path, index, record.check(rec, os.fspath(path), index)
            return
        try:
            # os.scandir: one system call for the listing, no Path object per entry.
            with os.scandir(path) as entries:
                names = [e.name for e in entries if e.name.endswith(".json") and not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        for file in sorted((path / name for name in names), key=_order_key):
            doc = record.read(file)
            if isinstance(doc, list):
                for i, rec in enumerate(doc):
                    if self._keep(rec, file, i):
                        yield None, file, i, record.check(rec, os.fspath(file), i)
            elif self._keep(doc, file, None):
                yield file.name, file, None, record.check(doc, os.fspath(file), None)

    def _keep(self, rec: Any, path: Path, index: int | None) -> bool:
        reason = llamastack.not_replayable(rec) if isinstance(rec, dict) else None
        if reason is not None:
            self.skipped.append(Skipped(os.fspath(path), index, reason))
            log.info("%s: skipped: %s", path, reason)
            return False
        return True

    # -- saving -------------------------------------------------------------------

    def save_cassette(
        self, cassette_path: str | os.PathLike[str], cassette_dict: dict[str, Any], serializer: Any = None
    ) -> None:
        """Write every interaction of ``cassette_dict``; nothing is written if a save check fails."""
        path = Path(cassette_path)
        test_id = context.current_test_id()
        ids: record.IdMap = {}
        entries: list[tuple[str | None, dict[str, Any] | Origin, bool]] = []
        for req, resp in zip(cassette_dict["requests"], cassette_dict["responses"], strict=True):
            origin = origin_of(resp)
            if origin is not None:
                entries.append((origin.name, origin, True))
            elif self.compat is not None:
                name, rec = llamastack.LlamaStackWriter(self.compat).record(req, resp, test_id=test_id)
                entries.append((name, self.redactions.record(rec) if self.redactions else rec, False))
            else:
                rec = to_record(req, resp, test_id=test_id, keep_headers=self.keep_response_headers, ids=ids)
                entries.append((None, self.redactions.record(rec) if self.redactions else rec, False))
        if self.is_file_layout(path):
            records = [_record(rec) for _, rec, _ in entries]
            for check in self.save_checks:
                check([(path, rec) for rec in records])
            _write_if_changed(path, record.dumps(records, ascii_only=self._ascii))
            return
        planned = self._plan_directory(path, entries)
        # A loaded file still in place is left alone: not read, not rewritten.
        to_write = [
            (file, _record(rec)) for file, rec, unchanged in planned if not (unchanged and file.exists())
        ]
        for check in self.save_checks:
            check(to_write)
        path.mkdir(parents=True, exist_ok=True)
        for file, rec in to_write:
            _write_if_changed(file, record.dumps(rec, ascii_only=self._ascii))
        keep = {file.name for file, _, _ in planned}
        for stale in path.glob("*.json"):
            if stale.name not in keep and not stale.name.startswith("."):
                stale.unlink()

    def _plan_directory(
        self,
        path: Path,
        entries: list[tuple[str | None, dict[str, Any] | Origin, bool]],
    ) -> list[tuple[Path, dict[str, Any] | Origin, bool]]:
        from .interactions import file_stem

        used: set[str] = set()
        planned: list[tuple[Path, dict[str, Any] | Origin, bool]] = []
        for name, rec, unchanged in entries:
            if name is None or name in used:
                stem = file_stem(_record(rec)) if name is None else name[: -len(".json")]
                name, n = f"{stem}.json", 1
                while name in used:
                    n += 1
                    name = f"{stem}.{n}.json"
                unchanged = False
            used.add(name)
            planned.append((path / name, rec, unchanged))
        return planned


def _record(entry: dict[str, Any] | Origin) -> dict[str, Any]:
    return entry.record() if isinstance(entry, Origin) else entry


def _write_if_changed(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_atomic(path, data)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a cassette is an ordinary file of the project.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
