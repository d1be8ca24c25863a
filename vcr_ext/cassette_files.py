"""Finding and reading the records under any PATH, for the commands that read cassettes (``show``, ``check``).

A PATH is any of:

- a directory cassette (``cassettes/<module>/<test>/``: one-record files, maybe a
  ``.vcr-ext-order`` manifest), read in the order the loader replays it;
- a one-file cassette (``<test>.json``: a list of records) or a single record file;
- a tree of those, such as a llama-stack ``recordings/`` folder or a ``cassettes/``
  folder: every directory under it that holds record files is a directory cassette;
  folders whose names start with a dot (a killed save's ``.<name>.vcr-ext-new-…``,
  ``.git``) are not entered;
- a plain vcrpy cassette, when :mod:`vcr_ext.formats.vcrpy` is installed.

Records are read as the persister reads them (:func:`vcr_ext.record.read`,
:func:`~vcr_ext.record.records_of`, :func:`~vcr_ext.record.skip_reason`), in the order it
lists them (:mod:`vcr_ext.order`), but a bad file or record is handed back instead of
raised, so that a command reports every one of them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import order, record
from .errors import CassetteFormatError
from .persister import is_record_file, is_temp_leftover, listdir

Layout = Literal["directory", "file", "vcrpy"]
_VCRPY_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Cassette:
    """A cassette found under a PATH.

    ``files``: its record files in the order the loader reads them (one for a file
    cassette). ``ignored``: files of a directory cassette the loader never reads (a
    dot-file, a name not ending in ``.json``), other than the order manifest and a
    killed save's leftovers.
    """

    path: Path
    layout: Layout
    files: tuple[Path, ...]
    ignored: tuple[Path, ...] = ()
    error: CassetteFormatError | None = None


@dataclass(frozen=True)
class Entry:
    """One record of a cassette: its file, its index in the file (``None`` for a one-record file).

    ``skipped``: why the loader leaves it out of replay (a llama-stack tool invocation, a
    client-side exception with no HTTP response), else ``None``.
    """

    cassette: Cassette
    path: Path
    index: int | None
    record: Any
    skipped: str | None = None


class NoCassette(Exception):
    """A PATH that does not exist, or that holds no recording at all."""


def vcrpy_format() -> Any:
    """:mod:`vcr_ext.formats.vcrpy` (``is_vcrpy_cassette``, ``read``), ``None`` while it is not there."""
    name = "vcr_ext.formats.vcrpy"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise  # the module is there but something it imports is not: a real error
        return None


def _is_vcrpy(path: Path, vcrpy: Any) -> bool:
    if vcrpy is None or not path.name.endswith(_VCRPY_SUFFIXES):
        return False
    try:
        return bool(vcrpy.is_vcrpy_cassette(path))
    except (OSError, ValueError):
        return False


def find(path: Path) -> list[Cassette]:
    """The cassettes at ``path``; :class:`NoCassette` if it does not exist or holds no recording."""
    if not os.path.lexists(path):
        raise NoCassette(f"{path}: no such file or directory")
    vcrpy = vcrpy_format()
    if not path.is_dir():
        layout: Layout = "vcrpy" if _is_vcrpy(path, vcrpy) else "file"
        return [Cassette(path, layout, (path,))]
    found: list[Cassette] = []

    def unreadable(err: OSError) -> None:
        # os.walk passes over a folder it cannot list; the loader would refuse it, so it is named.
        problem = f"cannot be read: {err.strerror or err}"
        error = CassetteFormatError(err.filename, None, "(directory)", problem)
        found.append(Cassette(Path(err.filename), "directory", (), error=error))

    for folder, dirs, _ in os.walk(path, onerror=unreadable):
        # Sorted, so that the output is the same on every machine; dot-folders are not cassettes.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(_directory(Path(folder), vcrpy))
    if not found:
        raise NoCassette(f"{path}: no recordings (no .json files) in it or below it")
    return found


def _directory(folder: Path, vcrpy: Any) -> list[Cassette]:
    """The directory cassette ``folder`` is (if it holds record files), and the vcrpy cassettes in it."""
    try:
        listing = listdir(folder)
    except CassetteFormatError as err:
        # Unlistable: the loader refuses it, and so do the commands (see entries()).
        return [Cassette(folder, "directory", (), error=err)]
    files = [n for n in listing if (folder / n).is_file() or os.path.islink(folder / n)]
    vcrpy_files = sorted(n for n in files if _is_vcrpy(folder / n, vcrpy))
    names = [n for n in files if is_record_file(n) and n not in vcrpy_files]
    # The persister's order: the .vcr-ext-order manifest, then the rest by name.
    manifest = order.read_manifest(folder) if order.ORDER_FILE in listing else []
    ordered = order.ordered(names, manifest)
    ignored = sorted(
        n
        for n in files
        if not is_record_file(n)
        and n != order.ORDER_FILE
        and not is_temp_leftover(n)
        and n not in vcrpy_files
    )
    out = [Cassette(folder / n, "vcrpy", (folder / n,)) for n in vcrpy_files]
    if ordered or any(_looks_like_records(folder / n) for n in ignored):
        out.insert(
            0, Cassette(folder, "directory", tuple(folder / n for n in ordered), _recordings(folder, ignored))
        )
    return out


def _recordings(folder: Path, names: list[str]) -> tuple[Path, ...]:
    return tuple(folder / n for n in names if _looks_like_records(folder / n))


def _looks_like_records(file: Path) -> bool:
    """Whether a file the loader ignores holds recordings (rather than notes, a README, a script)."""
    try:
        doc = record.read(file)
    except CassetteFormatError:
        return False
    items = doc if isinstance(doc, list) else [doc]
    return bool(items) and all(isinstance(i, dict) and "request" in i and "response" in i for i in items)


def read_file(cassette: Cassette, file: Path) -> list[Entry | CassetteFormatError]:
    """The records of one file of ``cassette``, each an :class:`Entry`, or the error that stops reading it.

    A file that is not JSON, an empty list, or a tool record inside a list is one
    :class:`CassetteFormatError` (the loader refuses it as a whole, or that record).
    """
    if cassette.layout == "vcrpy":
        try:
            recs = vcrpy_format().read(file)
        except CassetteFormatError as err:
            return [err]
        except (OSError, ValueError, KeyError, TypeError) as err:
            return [CassetteFormatError(file, None, "(file)", f"is not a readable vcrpy cassette: {err}")]
        return [Entry(cassette, file, i, rec) for i, rec in enumerate(recs)]
    try:
        pairs = record.records_of(record.read(file), file)
    except CassetteFormatError as err:
        return [err]
    out: list[Entry | CassetteFormatError] = []
    for index, rec in pairs:
        try:
            reason = record.skip_reason(rec, file, index)
        except CassetteFormatError as err:
            out.append(err)
            continue
        out.append(Entry(cassette, file, index, rec, reason))
    return out


def entries(cassette: Cassette) -> Iterator[Entry | CassetteFormatError]:
    """Every record of a cassette in the loader's order, and every error met instead of a record."""
    if cassette.error is not None:
        yield cassette.error
    for file in cassette.files:
        yield from read_file(cassette, file)


def all_files(cassettes: list[Cassette]) -> list[tuple[Cassette, Path]]:
    """``(cassette, file)`` of every record file of these cassettes, each file once."""
    seen: set[Path] = set()
    out: list[tuple[Cassette, Path]] = []
    for cassette in cassettes:
        for file in cassette.files:
            key = Path(os.path.abspath(file))
            if key not in seen:
                seen.add(key)
                out.append((cassette, file))
    return out
