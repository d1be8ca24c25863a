"""``vcr-ext check PATH...``: every problem of the recordings under PATH, one a line, for CI and pre-commit.

Each record is checked for:

- **format**: what opening the cassette checks (:func:`vcr_ext.record.check`: shape,
  types, every ``__type__`` known and its ``__data__`` fitting the SDK class), and files
  that are not JSON or are empty lists;
- **stream**: a stream that does not end as its kind ends: a chat or text completion
  stream with a choice that never got a ``finish_reason``, a Responses stream whose last
  event is not ``response.completed``/``failed``/``incomplete`` or ``error``, an ollama
  stream whose last object is not ``done``, a 200 stream with no events. A recorded
  failure (status >= 400, an exception record, an error event) ends as it ended;
- **secret**: a credential, as the scanner that guards every save finds it
  (:mod:`vcr_ext.secrets`, the environment's ``*_API_KEY`` values included);
- **duplicate**: a one-record file equal to another of its folder in test id, request
  (method, route, body) and whole response (status, kept headers, body), under another
  name. The persister writes a request made N times as ``<hash>.json``,
  ``<hash>.2.json``, ...: identical files of one such name are recorded repeats (each
  answers one of the requests, in turn) and are not reported; under another name
  (a copy, a file renamed by other tooling) the same recording can only answer a
  request the test never made. In a list file identical records are repeats as well:
  they are not reported;
- **unreachable**: a record no request can play: one the loader skips (a llama-stack
  tool invocation, a client-side exception with no HTTP response), and a file holding
  recordings that a directory cassette never reads (a dot-file, a name not ending in
  ``.json``). A record whose match key repeats an earlier one is reachable (vcrpy plays
  them in turn), and so is a file the ``.vcr-ext-order`` manifest does not list (it
  plays after those it does).

Output: ``path:record: field: problem``, where ``record`` is the record's index in its
file (0 for a one-record file) or ``-`` for the file as a whole. Exit codes: 0 no
problem; 1 any problem; 2 usage error (a PATH that does not exist or holds no recording).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import cassette_files, order, progress, record, summary
from ..cassette_files import Cassette, Entry
from ..errors import CassetteFormatError
from ..formats import llamastack
from ..secrets import SecretScanner, mask

_FILE_FIELDS = frozenset({"(file)", "(directory)", "(path)"})
_RESPONSES_ENDINGS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


@dataclass(frozen=True)
class Problem:
    """One problem: the file, record index (``None``: the whole file), dotted field, what, and its kind."""

    path: str
    record: int | None
    field: str
    problem: str
    kind: str

    def line(self) -> str:
        """``path:record: field: problem``."""
        where = "-" if self.record is None else str(self.record)
        return f"{self.path}:{where}: {self.field}: {self.problem}"


def from_error(err: CassetteFormatError) -> Problem:
    """The problem a :class:`CassetteFormatError` names (a one-record file's record is record 0)."""
    index = None if err.record is None and err.field in _FILE_FIELDS else (err.record or 0)
    return Problem(err.path, index, err.field, err.problem, "format")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "check",
        help="check recordings: format, stream endings, secrets, duplicates, unreachable records",
        description="Check every recording under PATH; print one problem a line; exit 1 on any problem.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="cassette directories or files")
    parser.add_argument("--json", action="store_true", help="print a JSON list of problems instead of lines")
    parser.add_argument(
        "--allow-secret",
        action="append",
        default=[],
        metavar="TEXT",
        help="a known false positive the secret scanner lets through (repeatable), as allow_secrets=[...]",
    )
    parser.set_defaults(run=run)


# -- streams ----------------------------------------------------------------------------------


def stream_ending(rec: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, problem)`` if a checked record's stream does not end as its kind ends, else ``None``."""
    response = rec["response"]
    body = response["body"]
    if not response.get("is_streaming") or response.get("is_exception") or response.get("status", 200) >= 400:
        return None
    if not body:
        return "response.body", "a stream with no events: a 200 stream always sends at least one"
    payloads = [summary.payload_of(v) for v in body]
    indexed = [(i, p) for i, p in enumerate(payloads) if isinstance(p, dict)]
    if not indexed:
        return None  # raw or plain events: nothing says how such a stream ends
    if any(p.get("error") and "choices" not in p and "type" not in p for _, p in indexed):
        return None  # failed midway with an error event: recorded as it happened
    last_i, last = indexed[-1]
    if any(isinstance(p.get("type"), str) and p["type"].startswith("response.") for _, p in indexed):
        if last.get("type") not in _RESPONSES_ENDINGS:
            ends = "response.completed, response.failed, response.incomplete or error"
            return (
                f"response.body[{last_i}]",
                f"a Responses stream ends with {ends}; this one ends with {last.get('type')!r}",
            )
        return None
    if any("choices" in p for _, p in indexed):
        return _choices_ending(indexed)
    if any("done" in p for _, p in indexed) and last.get("done") is not True:
        return (
            f"response.body[{last_i}].__data__.done",
            "an ollama stream ends with an object that is done: true",
        )
    return None


def _choices_ending(indexed: list[tuple[int, dict[str, Any]]]) -> tuple[str, str] | None:
    """A chat or completion stream: every choice it streamed must have got a finish_reason."""
    seen: dict[int, tuple[int, int]] = {}  # choice index -> (chunk, position) of its last appearance
    finished: set[int] = set()
    for i, p in indexed:
        choices = p.get("choices")
        for position, c in enumerate(choices if isinstance(choices, list) else []):
            if not isinstance(c, dict):
                continue
            index = c.get("index", position)
            key = index if isinstance(index, int) else position
            seen[key] = (i, position)
            if c.get("finish_reason"):
                finished.add(key)
    for key in sorted(seen):
        if key not in finished:
            i, position = seen[key]
            field = f"response.body[{i}].__data__.choices[{position}].finish_reason"
            return field, f"the stream ends without a finish_reason for choice {key}: it was cut off"
    return None


# -- duplicates ---------------------------------------------------------------------------------


def _identity(entry: Entry, rec: dict[str, Any]) -> tuple[str, str]:
    """``(folder, key)``: one-record files with equal folder and key hold the same recording."""
    request = rec["request"]
    method, route = request.get("method", ""), request.get("endpoint") or request.get("url") or ""
    method, route, body = llamastack.wire_request(method, route, llamastack.recorded_body(request))
    key = json.dumps(
        [rec.get("test_id"), method.upper(), route, body, rec["response"]], sort_keys=True, default=str
    )
    return os.fspath(entry.path.parent), key


# -- the check ----------------------------------------------------------------------------------


class Checker:
    """Collects the problems of the records handed to it (:meth:`file`) and of each cassette's own."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.scanner = SecretScanner(allow=tuple(allow))
        self.seen: dict[tuple[str, str], Path] = {}
        self.problems: list[Problem] = []

    def _add(self, path: Path, index: int | None, field: str, problem: str, kind: str) -> None:
        self.problems.append(Problem(os.fspath(path), index, field, problem, kind))

    def _secret(self, path: Path, index: int | None, value: Any, *, whole_file: bool = False) -> None:
        hit = self.scanner.find_hit(value)
        if hit is not None:
            how = f" ({hit.detail})" if hit.detail else ""
            where = None if whole_file else (index or 0)
            self._add(
                path,
                where,
                hit.json_path or "(record)",
                f"secret: {hit.kind} ({mask(hit.value)}){how}",
                "secret",
            )

    def cassette(self, cassette: Cassette) -> None:
        """Problems of the cassette as a whole: an unlistable folder, recordings the loader never reads."""
        if cassette.error is not None:
            self.problems.append(from_error(cassette.error))
        for file in cassette.ignored:
            why = "a dot-file" if file.name.startswith(".") else "its name does not end in .json"
            self._add(
                file,
                None,
                "(file)",
                f"unreachable: holds recordings the loader never reads ({why})",
                "unreachable",
            )
            self._secret(file, None, record.read(file), whole_file=True)

    def file(self, items: list[Entry | CassetteFormatError]) -> None:
        """Problems of the records of one file (as :func:`cassette_files.read_file` gives them)."""
        for item in items:
            if isinstance(item, CassetteFormatError):
                self.problems.append(from_error(item))
                continue
            self.entry(item)

    def entry(self, entry: Entry) -> None:
        path, index, rec = entry.path, entry.index, entry.record
        # The secret scan reads the record whatever else is wrong with it: the file holds it anyway.
        self._secret(path, index, rec)
        if entry.skipped is not None:
            field = "request" if not record.is_http(rec) else "response"
            self._add(
                path, index or 0, field, f"unreachable: the loader skips it: {entry.skipped}", "unreachable"
            )
            return
        try:
            checked = record.check(rec, path, index)
        except CassetteFormatError as err:
            self.problems.append(from_error(err))
            return
        ending = stream_ending(checked)
        if ending is not None:
            self._add(path, index or 0, ending[0], ending[1], "stream")
        if index is not None:
            return  # a list's identical records are repeats, played in turn
        first = self.seen.setdefault(_identity(entry, checked), path)
        # Same stem (<hash>.json, <hash>.2.json): the persister's repeats of one request.
        if order.name_key(first.name)[0] != order.name_key(path.name)[0]:
            problem = f"duplicate of {first}: the same test id, request and response under another name"
            self._add(path, 0, "(record)", problem, "duplicate")


def check(cassettes: list[Cassette], allow: Iterable[str] = ()) -> list[Problem]:
    """Every problem of these cassettes, in the order their files are read."""
    checker = Checker(allow)
    for cassette in cassettes:
        checker.cassette(cassette)
    files = cassette_files.all_files(cassettes)
    for cassette, file in progress.track(files, total=len(files), what="files"):
        checker.file(cassette_files.read_file(cassette, file))
    return checker.problems


def _found(paths: Iterable[Path]) -> Iterator[Cassette]:
    for path in paths:
        yield from cassette_files.find(path)


def run(args: argparse.Namespace) -> int:
    try:
        cassettes = list(_found(args.paths))
    except cassette_files.NoCassette as err:
        print(f"vcr-ext check: {err}", file=sys.stderr)
        return 2
    problems = check(cassettes, args.allow_secret)
    if args.json:
        print(json.dumps([asdict(p) for p in problems], indent=2, ensure_ascii=False))
    else:
        for p in problems:
            print(p.line())
        files = len(cassette_files.all_files(cassettes))
        verdict = f"{len(problems)} problem(s)" if problems else "no problems"
        print(f"vcr-ext check: {files} file(s), {verdict}", file=sys.stderr)
    return 1 if problems else 0
