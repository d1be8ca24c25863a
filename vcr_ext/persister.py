"""Cassette layouts on disk: a directory of one-record files (the default) or one file; atomic writes.

A directory cassette holds one ``<request-hash>.json`` per interaction, so a llama-stack
recordings directory is itself a cassette. Files are indexed by content, never by name
(names written by other tools are not always the hash). Repeats of one request are
written ``<hash>.json``, ``<hash>.2.json``, ...; the recorded order across requests is
kept in ``.vcr-ext-order`` (:mod:`vcr_ext.order`).

A save replaces the whole cassette in one atomic step (:mod:`vcr_ext.atomic`), under the
cassette's lock (:mod:`vcr_ext.locking`), starting from what is on disk at that moment,
so workers recording one cassette add to each other's work (:mod:`vcr_ext.run` says
what ``once`` and ``rewrite`` mean for them).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.request import Request

from . import atomic, context, formats, locking, order, record, run, scrub
from .errors import CassetteFormatError
from .interactions import ORIGIN_KEY, Origin, file_stem, origin_of, to_interaction, to_record

log = logging.getLogger(__name__)

Layout = Literal["auto", "directory", "file"]
# Called with every (file path, record) about to be written, before anything is written;
# raising stops the save (the secret scanner plugs in here).
SaveCheck = Callable[[Sequence[tuple[Path, dict[str, Any]]]], None]


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
    (see :mod:`vcr_ext.formats.llamastack`) instead of vcr_ext's own.
    """

    layout: Layout = "auto"
    extra_paths: Sequence[str] = ()
    rewrite: bool = False
    keep_response_headers: frozenset[str] = scrub.KEEP_RESPONSE_HEADERS
    ascii_only: bool = False
    save_checks: Sequence[SaveCheck] = ()
    redactions: scrub.Redactions = field(default_factory=scrub.Redactions)
    compat: formats.Variant | None = None
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
            loaded = self._read_unlocked(path)
            if loaded is None:
                # A save by another worker may have been under way (or a crash left one
                # half done): read again under the cassette's lock, where none can be.
                with locking.cassette_lock(path):
                    with contextlib.suppress(OSError):  # a read-only checkout can still replay
                        atomic.recover(_real(path))
                    loaded = list(self._interactions(path))
            for req, resp in loaded:
                requests.append(req)
                responses.append(resp)
        if not requests:
            raise CassetteNotFoundError(os.fspath(cassette_path))
        return requests, responses

    def _interactions(self, path: Path) -> Iterator[tuple[Request, dict[str, Any]]]:
        # One parsed record at a time: holding them all would double the peak memory.
        for name, source, index, rec in self.records(path):
            yield to_interaction(formats.read_record(rec), name, source=source, index=index)

    def _read_unlocked(self, path: Path) -> list[tuple[Request, dict[str, Any]]] | None:
        """The cassette's interactions read without its lock, or ``None`` if that read may be mixed.

        A save never changes a cassette in place: it swaps in a whole new directory (or
        file), which gives the path a new inode. So a read between two equal ``stat``s of
        the path, in which no file went missing, read one version of the cassette. Taking
        the lock only when that fails spares every load a lock file's open and ``flock``.
        A missing path goes to the locked read too: it may be a crash to recover from.
        """
        before = _version(path)
        if before is None:
            return None
        skipped = len(self.skipped)
        try:
            loaded = list(self._interactions(path))
        except (OSError, CassetteFormatError):
            loaded = None  # a file gone mid-read; a real error is raised again under the lock
        if loaded is None or _version(path) != before:
            del self.skipped[skipped:]
            return None
        return loaded

    def records(self, path: Path) -> Iterable[tuple[str | None, Path, int | None, dict[str, Any]]]:
        """``(file name in a directory cassette, file, index in the file, record)`` of each record.

        Only a path that does not exist at all is no cassette yet. Anything else that
        cannot be read as one (a file where a directory should be, a symlink loop, a link
        to nothing, no permission) is a :class:`CassetteFormatError`: taken for a missing
        cassette, it would be recorded again and written over.
        """
        if self.is_file_layout(path):
            if not os.path.lexists(path):
                return
            for index, rec in record.records_of(record.read(path), path):
                if self._keep(rec, path, index):
                    yield None, path, index, record.check(rec, path, index)
            return
        try:
            # os.scandir: one system call for the listing, no Path object per entry.
            with os.scandir(path) as entries:
                listing = [e.name for e in entries]
            names = [n for n in listing if n.endswith(".json") and not n.startswith(".")]
        except FileNotFoundError:
            if os.path.lexists(path):
                problem = "is a symbolic link to nothing"
                raise CassetteFormatError(path, None, "(directory)", problem) from None
            return
        except NotADirectoryError as err:
            raise CassetteFormatError(
                path, None, "(directory)", "is a file, not a directory (a one-file cassette ends in .json)"
            ) from err
        except OSError as err:
            problem = f"cannot be read: {err.strerror or err}"
            raise CassetteFormatError(path, None, "(directory)", problem) from err
        # Recorded order: the .vcr-ext-order manifest, else by name (see vcr_ext.order).
        manifest = order.read_manifest(path) if order.ORDER_FILE in listing else []
        for file in (path / name for name in order.ordered(names, manifest)):
            doc = record.read(file)
            # Only a one-record file (llama-stack's layout) has a name to keep on saving.
            name = None if isinstance(doc, list) else file.name
            for index, rec in record.records_of(doc, file):
                if self._keep(rec, file, index):
                    yield name, file, index, record.check(rec, file, index)

    def _keep(self, rec: Any, path: Path, index: int | None) -> bool:
        """Whether a record replays; one that does not is noted in :attr:`skipped` with the reason."""
        reason = record.skip_reason(rec, path, index)
        if reason is not None:
            self.skipped.append(Skipped(os.fspath(path), index, reason))
            log.info("%s: skipped: %s", path, reason)
            return False
        return True

    # -- saving -------------------------------------------------------------------

    def save_cassette(
        self, cassette_path: str | os.PathLike[str], cassette_dict: dict[str, Any], serializer: Any = None
    ) -> None:
        """Add what was recorded to the cassette on disk in one atomic step; nothing if a check fails.

        Under the cassette's lock, the save starts from what is on disk *now* (another
        worker may have saved since this one loaded) and keeps all of it, except the
        recordings this cassette loaded and vcrpy no longer holds (``all`` replaced
        them, ``drop_unused_requests``) and, on the run's first ``rewrite`` save, the
        recordings that were there before. Files it cannot read or does not know, and
        records it skipped, stay byte-identical.
        """
        path = _cassette_path(cassette_path)
        new = self._entries(path, cassette_dict)
        dropped: Sequence[Origin] = cassette_dict.get(DROPPED_KEY, ())
        with locking.cassette_lock(path):
            atomic.recover(path)
            existed = os.path.lexists(path)
            first_rewrite = self.rewrite and not run.has_mark(path, run.REWRITTEN)
            if self.is_file_layout(path):
                self._save_file(path, new, dropped, first_rewrite)
            else:
                self._save_directory(path, new, dropped, first_rewrite)
            if not existed and os.path.lexists(path):
                run.mark(path, run.CREATED)
            if self.rewrite:
                run.mark(path, run.REWRITTEN)

    def _entries(self, path: Path, cassette_dict: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
        """The records to write: every interaction not loaded from this cassette's own files."""
        test_id = context.current_test_id()
        ids: record.IdMap = {}
        new: list[tuple[str | None, dict[str, Any]]] = []
        file_layout = self.is_file_layout(path)
        for req, resp in zip(cassette_dict["requests"], cassette_dict["responses"], strict=True):
            origin = origin_of(resp)
            if origin is not None:
                source = None if origin.source is None else _real(origin.source)
                if source is None or not (source == path if file_layout else source.parent == path):
                    # Loaded from elsewhere (an extra cassette) or from no file: written here.
                    new.append((origin.name, origin.record()))
            elif self.compat is not None:
                name, rec = formats.writer(self.compat).record(req, resp, test_id=test_id)
                new.append((name, self.redactions.record(rec) if self.redactions else rec))
            else:
                rec = to_record(req, resp, test_id=test_id, keep_headers=self.keep_response_headers, ids=ids)
                new.append((None, self.redactions.record(rec) if self.redactions else rec))
        return new

    def _dumps(self, rec: Any) -> bytes:
        return record.dumps(rec, ascii_only=self._ascii).encode("utf-8")

    def _save_file(
        self,
        path: Path,
        new: list[tuple[str | None, dict[str, Any]]],
        dropped: Sequence[Origin],
        first_rewrite: bool,
    ) -> None:
        base: list[Any] = []
        if path.exists() and not first_rewrite:
            # A bad file raises CassetteFormatError here: it is never overwritten.
            doc = record.read(path)
            base = doc if isinstance(doc, list) else [doc]
            base = _without_dropped(base, dropped, path)
        records = [rec for _, rec in new]
        for check in self.save_checks:
            check([(path, rec) for rec in records])
        atomic.write_if_changed(path, self._dumps(base + records))

    def _save_directory(
        self,
        path: Path,
        new: list[tuple[str | None, dict[str, Any]]],
        dropped: Sequence[Origin],
        first_rewrite: bool,
    ) -> None:
        on_disk = listdir(path)
        drop = {o.name for o in dropped if o.name in on_disk and _still(path / o.name, o)}
        keep: list[str] = []
        for name in on_disk:
            if name == order.ORDER_FILE or is_temp_leftover(name) or name in drop:
                continue
            if first_rewrite and is_record_file(name) and _holds_recordings(path / name):
                continue
            keep.append(name)
        used = set(keep)
        planned: list[tuple[Path, dict[str, Any]]] = []
        for preferred, rec in new:
            stem = file_stem(rec) if preferred is None else preferred[: -len(".json")]
            name, n = f"{stem}.json", 1
            while name in used:
                n += 1
                name = f"{stem}.{n}.json"
            used.add(name)
            planned.append((path / name, rec))
        for check in self.save_checks:
            check(planned)
        manifest = order.read_manifest(path)
        names = order.ordered([n for n in keep if is_record_file(n)], manifest)
        names += [file.name for file, _ in planned]
        text = None if self.compat is not None else order.manifest_text(names)
        if (
            not planned
            and len(keep) == len(on_disk) - (order.ORDER_FILE in on_disk)
            and ((text is None and not manifest) or (text is not None and text.splitlines() == manifest))
        ):
            return  # nothing to change: the directory is left exactly as it is
        writes = {file.name: self._dumps(rec) for file, rec in planned}
        if text is not None:
            writes[order.ORDER_FILE] = text.encode("utf-8")
        atomic.replace_directory(path, keep, writes)


DROPPED_KEY = "vcr_ext_dropped"
"""Key of ``cassette_dict`` holding the :class:`Origin` of each loaded interaction vcrpy no longer holds."""


def _version(path: Path) -> tuple[int, ...] | None:
    """What changes whenever a save replaces the cassette at ``path``; ``None`` if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _cassette_path(cassette_path: str | os.PathLike[str]) -> Path:
    """The cassette's real path (a symlink to a cassette is saved through, not replaced)."""
    path = Path(os.path.abspath(os.fspath(cassette_path)))
    real = _real(path)
    if os.path.islink(real):
        problem = "is a symbolic link that never reaches a file or directory"
        raise CassetteFormatError(path, None, "(path)", problem)
    return real


def listdir(path: Path) -> list[str]:
    """Every name in the directory ``path`` (none if it is missing); an unreadable one is a format error."""
    try:
        with os.scandir(path) as entries:
            return [e.name for e in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        raise CassetteFormatError(path, None, "(directory)", f"cannot be listed: {err}") from err


def is_record_file(name: str) -> bool:
    """Whether a directory cassette's entry named ``name`` is read as records."""
    return name.endswith(".json") and not name.startswith(".")


def is_temp_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary file a crashed save left inside the directory."""
    # Temporary files of earlier vcr_ext versions, which wrote inside the directory.
    return name.startswith(".") and name.endswith(".tmp")


def _replayable(rec: Any) -> bool:
    return isinstance(rec, dict) and record.is_http(rec) and formats.not_replayable(rec) is None


def _holds_recordings(file: Path) -> bool:
    """Whether a file holds this cassette's recordings (``rewrite`` replaces only those)."""
    try:
        doc = record.read(file)
    except CassetteFormatError:
        return False  # not ours to delete
    items = doc if isinstance(doc, list) else [doc]
    return bool(items) and all(_replayable(rec) for rec in items)


def _fingerprint(rec: Any, path: Path, index: int | None) -> tuple[int, bytes] | None:
    if not _replayable(rec):
        return None
    try:
        _, response = to_interaction(formats.read_record(record.check(rec, os.fspath(path), index)))
    except (CassetteFormatError, ValueError, KeyError, TypeError):
        return None
    origin: Origin = response[ORIGIN_KEY]
    return origin.fingerprint


def _still(file: Path, origin: Origin) -> bool:
    """Whether ``file`` still holds the recording ``origin`` was loaded from (no other worker replaced it)."""
    try:
        doc = record.read(file)
    except CassetteFormatError:
        return False
    return not isinstance(doc, list) and _fingerprint(doc, file, None) == origin.fingerprint


def _without_dropped(items: list[Any], dropped: Sequence[Origin], path: Path) -> list[Any]:
    """``items`` less one record per dropped origin whose recording is still among them."""
    if not dropped:
        return items
    left = Counter(o.fingerprint for o in dropped)
    kept: list[Any] = []
    for i, rec in enumerate(items):
        fingerprint = _fingerprint(rec, path, i)
        if fingerprint is not None and left[fingerprint] > 0:
            left[fingerprint] -= 1
            continue
        kept.append(rec)
    return kept
