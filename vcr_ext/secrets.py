"""The credential scanner: before a cassette is written, refuse to write one that holds a secret.

It looks at every string about to be written (request and response bodies, URLs, kept
response headers, and JSON keys) for the credential forms of :mod:`vcr_ext.secret_rules`,
for the value of any field named like a credential (``api_key``, ``password``, ...), and
for the value of any ``*_API_KEY`` (and ``*_TOKEN``, ``*_SECRET``) environment variable
that is set. Two ways a secret hides from a string-by-string look are covered too:

- a streamed response body (a list of chunks) is reassembled: the strings at the same
  JSON path of every chunk, once the chunk index is removed
  (``response.body[i].__data__.choices[0].delta.content``), are joined in chunk order
  and the joined text is scanned, so a key the model wrote across five chunks is found;
- base64 and base64url text (20 to 4,096 characters, so an embedding vector is never
  decoded) is decoded, and the decoded text is scanned if it is printable.

A hit raises :class:`SecretFoundError` before anything is written, naming the cassette
file and the JSON path of the value (for a reassembled stream, of the chunk the secret
starts in). A known false positive is allowed explicitly with ``allow_secrets=[...]``
(exact strings or compiled patterns).

The scanner runs once per save over everything written, so it is built for volume: every
distinct string of the save is scanned once (the same model name or chunk type in ten
thousand records costs nothing more), all of them joined into one text that each rule
searches in one pass, and the JSON path of a hit is worked out only when there is one.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import VcrExtError
from .scrub import REDACTED
from .sdk_types import DATA_KEY, RAW_BASE64, TYPE_KEY
from .secret_rules import (
    AWS_SECRET_KEYS,
    B64_CANDIDATE,
    GCP_SERVICE_ACCOUNT,
    MIN_FIELD_SECRET,
    RULES,
    SECRET_KEYS,
    SEPARATOR,
    Rule,
    decode_base64,
    is_placeholder,
    looks_like_aws_secret,
    private_key_block,
)

__all__ = [
    "RULES",
    "SECRET_KEYS",
    "SecretFoundError",
    "SecretHit",
    "SecretScanner",
    "environment_secrets",
    "mask",
]

ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY")
MIN_ENV_SECRET = 12
# Fields whose values in a stream are random per chunk (OpenAI pads each event with an
# ``obfuscation`` string of 10-16 random characters): joined, they are one long random
# string that is nobody's secret, so they are not reassembled (each is still scanned).
NOT_REASSEMBLED = frozenset({"obfuscation"})


class SecretFoundError(VcrExtError):
    """A credential was about to be written to a cassette; nothing was written.

    ``detail`` says how the secret was found when it was not in one string as is
    (reassembled from stream chunks, decoded from base64).
    """

    def __init__(
        self,
        file: str | os.PathLike[str],
        json_path: str,
        kind: str,
        value: str,
        detail: str | None = None,
    ) -> None:
        self.file = os.fspath(file)
        self.json_path = json_path
        self.kind = kind
        self.detail = detail
        where = f"{json_path} ({detail})" if detail else json_path
        super().__init__(
            f"refusing to write cassette file {self.file}: it would hold {kind} ({mask(value)}) at "
            f"{where}. Nothing was written; the cassette on disk is unchanged. Remove the secret "
            "(scrub it with redact=[...]), or if this is a known false positive allow it with "
            "allow_secrets=[...]."
        )


class SecretHit(NamedTuple):
    """A secret found: where (``json_path``), what (``kind``), the ``value``, and how (``detail``)."""

    json_path: str
    kind: str
    value: str
    detail: str | None = None


def mask(value: str) -> str:
    """Enough of a secret to recognise it, not enough to use it."""
    return f"{value[:6]}…{value[-3:]}" if len(value) > 12 else "…"


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of set ``*_API_KEY``-like environment variables long enough to be credentials."""
    env = os.environ if environ is None else environ
    return sorted(
        {v for k, v in env.items() if k.upper().endswith(ENV_SUFFIXES) and len(v.strip()) >= MIN_ENV_SECRET},
    )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str, str | None]]:
    """Every string in a JSON value with its path, and the key it is the value of (keys too)."""
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            yield where, str(k), None
            if isinstance(v, str):
                yield where, v, str(k)
            else:
                yield from _strings(v, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield f"{path}[{i}]", v, None
            else:
                yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value, None


def _join(path: str, name: str) -> str:
    """``path.name``, or ``name`` at the top."""
    return f"{path}.{name}" if path else name


# Per-key facts, worked out once per key name and save; _GCP_KEY is set per object.
_SECRET_FIELD, _AWS_FIELD, _PRIVATE_KEY_FIELD, _NOT_JOINED, _GCP_KEY = 1, 2, 4, 8, 16
_FIELD_FACTS = _SECRET_FIELD | _PRIVATE_KEY_FIELD


def _key_facts(key: str) -> int:
    """What a key name says about its value, as bits (worked out once per name per save)."""
    facts = 0
    if SECRET_KEYS.match(key):
        facts |= _SECRET_FIELD
        if AWS_SECRET_KEYS.match(key):
            facts |= _AWS_FIELD
    if key == "private_key":
        facts |= _PRIVATE_KEY_FIELD
    if key in NOT_REASSEMBLED:
        facts |= _NOT_JOINED
    return facts


@dataclass
class _Stream:
    """A reassembled stream text: the strings at one path inside every chunk, joined."""

    record: int
    body: list[Any]  # the chunks
    path: str  # of the chunk list, e.g. ``response.body``
    inside: str  # the path inside each chunk, e.g. ``.__data__.choices[0].delta.content``


@dataclass
class _Decoded:
    """Decoded base64 text: the segment and offset its encoded form was found at."""

    parent: int
    offset: int  # in the whole text
    length: int  # of the encoded form


@dataclass(order=True)
class _Hit:
    """A candidate, ordered so that the first string with a secret wins, then the most specific rule."""

    segment: int
    rank: int
    offset: int
    kind: str = field(compare=False)
    value: str = field(compare=False)
    key: str | None = field(default=None, compare=False)  # set for a named-field hit


class _Batch:
    """Every string of the values being scanned, deduplicated, with what is needed to place a hit."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        # Texts are added value by value: firsts[i] is the index of the first text value i added.
        self.firsts: list[int] = []
        self.seen: dict[str, int] = {}
        self.facts: dict[str, int] = {}
        self.fields: list[tuple[str, str, int]] = []  # (key, value, facts)
        self.streams: list[tuple[_Stream, str]] = []
        self.extras: dict[int, _Stream | _Decoded] = {}

    def add(self, value: Any, record: int, path: str) -> None:
        """Collect the strings of one value (a record, or a list of records)."""
        if isinstance(value, list) and any(_chunk_list(v) is not None for v in value):
            for i, item in enumerate(value):
                self._add_record(item, record, f"{path}[{i}]")
        else:
            self._add_record(value, record, path)

    def _add_record(self, value: Any, record: int, path: str) -> None:
        """Collect one record's strings, named fields and (for a stream) reassembled texts."""
        texts, seen, facts, fields = self.texts, self.seen, self.facts, self.fields
        if len(self.firsts) <= record:
            self.firsts.append(len(texts))
        body = _chunk_list(value)
        # Inside a chunk of a stream, each string is also filed under its path in the chunk
        # (".__data__.choices[0].delta.content"); which chunk each piece came from is worked
        # out again only for a hit (:func:`_stream_pieces`).
        groups: dict[str, list[str]] = {}

        def visit(v: Any, rel: str | None) -> None:
            # The hot loop, run for every node of every record: the bookkeeping is inlined
            # (a call per string would double the time), and paths are strs, not tuples,
            # so that the cyclic garbage collector has fewer objects to track.
            if isinstance(v, dict):
                for k, x in v.items():
                    name = k if type(k) is str else str(k)
                    f = facts.get(name)
                    if f is None:
                        f = facts[name] = _key_facts(name)
                        if name not in seen:
                            seen[name] = len(texts)
                            texts.append(name)
                    if type(x) is str:
                        if x not in seen:
                            seen[x] = len(texts)
                            texts.append(x)
                        if f & _FIELD_FACTS and (g := _field_facts(v, f)):
                            fields.append((name, x, g))
                        if rel is not None and not f & _NOT_JOINED:
                            group = groups.get(at := f"{rel}.{name}")
                            if group is None:
                                groups[at] = [x]
                            else:
                                group.append(x)
                    elif isinstance(x, (dict, list)) and x is not body:
                        visit(x, None if rel is None else f"{rel}.{name}")
            elif isinstance(v, list):
                for j, x in enumerate(v):
                    if type(x) is str:
                        if x not in seen:
                            seen[x] = len(texts)
                            texts.append(x)
                        if rel is not None:
                            group = groups.get(at := f"{rel}[{j}]")
                            if group is None:
                                groups[at] = [x]
                            else:
                                group.append(x)
                    elif isinstance(x, (dict, list)):
                        visit(x, None if rel is None else f"{rel}[{j}]")
            elif isinstance(v, str):  # only a chunk, or a whole value, is a bare string here
                if v not in seen:
                    seen[v] = len(texts)
                    texts.append(v)
                if rel is not None:
                    groups.setdefault(rel, []).append(v)

        visit(value, None)
        if body is None:
            return
        for item in body:
            visit(item, "")
        body_path = _join(_join(path, "response"), "body")
        for rel, pieces in groups.items():
            # One piece, or the same value in every chunk (an id, a model name): nothing to join.
            if len(pieces) > 1 and pieces.count(pieces[0]) != len(pieces):
                self.streams.append((_Stream(record, body, body_path, rel), "".join(pieces)))

    def owner(self, segment: int) -> int:
        """The value a text was first seen in."""
        return bisect.bisect_right(self.firsts, segment) - 1


def _chunk_list(value: Any) -> list[Any] | None:
    """The response body of a record when it is a list of chunks (a stream), else ``None``."""
    if isinstance(value, dict):
        response = value.get("response")
        if isinstance(response, dict):
            body = response.get("body")
            if isinstance(body, list) and len(body) > 1:
                return body
    return None


def _field_facts(container: Mapping[str, Any], facts: int) -> int:
    """What a field says about its value: named like a credential, or a GCP service-account key."""
    found = facts & (_SECRET_FIELD | _AWS_FIELD)
    # A ``private_key`` is a GCP service-account key when its object says so.
    if facts & _PRIVATE_KEY_FIELD and container.get("type") == "service_account":
        found |= _GCP_KEY
    return found


@dataclass
class SecretScanner:
    """A persister save check: raises :class:`SecretFoundError` for the first secret about to be written.

    ``allow`` lists known false positives (a string allows any finding it equals or is
    part of; a pattern, any finding it matches); ``extra_patterns`` adds forms (name ->
    pattern) to :data:`RULES`; ``environ`` stands in for ``os.environ``.
    """

    allow: Sequence[str | re.Pattern[str]] = ()
    environ: Mapping[str, str] | None = None
    extra_patterns: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    def _allowed(self, *found: str) -> bool:
        """Whether ``allow`` lets any of these through (a finding, or the text it was found in)."""
        for rule in self.allow:
            for text in found:
                if isinstance(rule, re.Pattern):
                    if rule.search(text):
                        return True
                elif text == rule or rule in text:
                    return True
        return False

    def _rules(self) -> tuple[Rule, ...]:
        """The built-in rules, then ``extra_patterns`` (as rules without a boundary or entropy test)."""
        extra = tuple(
            Rule(name, name, pattern, "extra_patterns", boundary=False, classes=0)
            for name, pattern in self.extra_patterns.items()
        )
        return RULES + extra

    def find(
        self, value: Any, path: str = "", env_values: Sequence[str] | None = None
    ) -> tuple[str, str, str] | None:
        """The first ``(json_path, kind, secret)`` in a JSON value (a record or a list of records)."""
        hit = self.find_hit(value, path, env_values)
        return None if hit is None else (hit.json_path, hit.kind, hit.value)

    def find_hit(
        self, value: Any, path: str = "", env_values: Sequence[str] | None = None
    ) -> SecretHit | None:
        """As :meth:`find`, with the :attr:`SecretHit.detail` of a reassembled or decoded secret."""
        found = self._scan([value], path, env_values)
        return None if found is None else found[1]

    def __call__(self, planned: Iterable[tuple[Path, dict[str, Any]]]) -> None:
        """The save check: raise :class:`SecretFoundError` for the first file whose record holds a secret."""
        files: list[Path] = []
        records: list[dict[str, Any]] = []
        for file, rec in planned:
            files.append(file)
            records.append(rec)
        found = self._scan(records, "", None)
        if found is not None:
            index, hit = found
            raise SecretFoundError(files[index], hit.json_path, hit.kind, hit.value, hit.detail)

    # -- the scan -------------------------------------------------------------------------

    def _scan(
        self, values: Sequence[Any], path: str, env_values: Sequence[str] | None
    ) -> tuple[int, SecretHit] | None:
        """The first secret in ``values``: the index of the value it is in, and the hit."""
        if env_values is None:
            env_values = environment_secrets(self.environ)
        rules = self._rules()
        batch = _Batch()
        for index, value in enumerate(values):
            batch.add(value, index, path)
        segments = batch.texts + [joined for _, joined in batch.streams]
        for at, (stream, _) in enumerate(batch.streams, start=len(batch.texts)):
            batch.extras[at] = stream
        text, starts = _joined(segments)
        # Base64 found anywhere (strings, reassembled streams) is decoded once per distinct value.
        tried: set[str] = set()
        for m in B64_CANDIDATE.finditer(text):
            encoded = m.group(0)
            if encoded in tried:
                continue
            tried.add(encoded)
            plain = decode_base64(encoded)
            if plain is None:
                continue
            batch.extras[len(segments)] = _Decoded(
                bisect.bisect_right(starts, m.start()) - 1, m.start(), len(encoded)
            )
            segments.append(plain)
        # A body that is not text is stored whole as base64 (a vcr_ext.raw.Base64 envelope),
        # of any size and mostly not printable: its printable runs are what may be a key.
        for encoded in _binary_bodies(values):
            parent = batch.seen.get(encoded)
            runs = _printable_runs(encoded)
            if parent is None or not runs:
                continue
            batch.extras[len(segments)] = _Decoded(parent, starts[parent], len(encoded))
            segments.append(runs)
        if len(segments) > len(starts):
            text, starts = _joined(segments)
        best = self._first(batch, rules, text, starts, env_values)
        if best is None:
            return None
        return self._place(best, batch, values, path, starts)

    def _first(
        self, batch: _Batch, rules: tuple[Rule, ...], text: str, starts: list[int], env_values: Sequence[str]
    ) -> _Hit | None:
        """The first hit: in the earliest string, by the most specific rule (named fields, then
        environment values, come after every pattern)."""
        best: _Hit | None = None
        field_rank = len(rules)
        ranks = {rule.id: rank for rank, rule in enumerate(rules)}
        for key, value, facts in batch.fields:
            hit = self._field_hit(key, value, facts, ranks, field_rank)
            if hit is not None:
                hit.segment = batch.seen[value]
                best = hit if best is None or hit < best else best
        for rank, rule in enumerate(rules):
            for m in rule.pattern.finditer(text):
                segment = bisect.bisect_right(starts, m.start()) - 1
                if best is not None and segment > best.segment:
                    break  # a later string cannot come first
                lo = starts[segment]
                hi = starts[segment + 1] - 1 if segment + 1 < len(starts) else len(text)
                span = rule.accept(text, m, lo, hi)
                if span is None:
                    continue
                secret = text[span[0] : span[1]]
                if self._allowed(secret, m.group(0)):
                    continue
                hit = _Hit(segment, rank, span[0], f"what looks like {rule.kind}", secret)
                best = hit if best is None or hit < best else best
                break
        for secret in env_values:
            if self._allowed(secret):
                continue
            at = text.find(secret)
            if at >= 0:
                hit = _Hit(
                    bisect.bisect_right(starts, at) - 1,
                    field_rank + 1,
                    at,
                    "the value of an API-key environment variable",
                    secret,
                )
                best = hit if best is None or hit < best else best
        return best

    def _field_hit(
        self, key: str, value: str, facts: int, ranks: dict[str, int], field_rank: int
    ) -> _Hit | None:
        """The hit a field named like a credential (or a service account's ``private_key``) is."""
        if facts & _GCP_KEY and (block := private_key_block(value)) and not self._allowed(block, value):
            # The block as the private-key rule reports it, so one allow_secrets entry serves both.
            kind = f"what looks like {GCP_SERVICE_ACCOUNT.kind}"
            return _Hit(0, ranks.get(GCP_SERVICE_ACCOUNT.id, field_rank), 0, kind, block, key)
        if not facts & _SECRET_FIELD:
            return None
        if len(value) < MIN_FIELD_SECRET or value == REDACTED or is_placeholder(value):
            return None
        if self._allowed(value):
            return None
        if facts & _AWS_FIELD and looks_like_aws_secret(value):
            return _Hit(
                0,
                ranks.get("aws-secret-field", field_rank),
                0,
                "what looks like an AWS secret access key",
                value,
                key,
            )
        return _Hit(0, field_rank, 0, f"a value of a '{key}' field", value, key)

    def _place(
        self, hit: _Hit, batch: _Batch, values: Sequence[Any], path: str, starts: list[int]
    ) -> tuple[int, SecretHit]:
        """The value index, JSON path and detail of a hit (only now is any path worked out)."""
        extra = batch.extras.get(hit.segment)
        if extra is None:
            record = batch.owner(hit.segment)
            if hit.key is not None:
                where = _path_of_field(values[record], path, hit.key, batch.texts[hit.segment])
            else:
                where = _path_of_text(values[record], path, batch.texts[hit.segment])
            return record, SecretHit(where, hit.kind, hit.value)
        if isinstance(extra, _Stream):
            record, where, detail = _in_stream(extra, hit.offset - starts[hit.segment], len(hit.value))
            return record, SecretHit(where, hit.kind, hit.value, detail)
        parent = _Hit(extra.parent, hit.rank, extra.offset, hit.kind, "x" * extra.length)
        record, placed = self._place(parent, batch, values, path, starts)
        detail = "base64-decoded" + (f"; {placed.detail}" if placed.detail else "")
        return record, SecretHit(placed.json_path, hit.kind, hit.value, detail)


_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{8,}")


def _binary_bodies(value: Any) -> Iterator[str]:
    """The base64 text of every ``vcr_ext.raw.Base64`` envelope in ``value``."""
    if isinstance(value, dict):
        if value.get(TYPE_KEY) == RAW_BASE64 and isinstance(value.get(DATA_KEY), str):
            yield value[DATA_KEY]
            return
        for v in value.values():
            yield from _binary_bodies(v)
    elif isinstance(value, list):
        for v in value:
            yield from _binary_bodies(v)


def _printable_runs(encoded: str) -> str:
    """The runs of 8 or more printable ASCII characters in the bytes ``encoded`` holds, a line each."""
    try:
        raw = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        return ""
    return "\n".join(m.group(0).decode("ascii") for m in _PRINTABLE_RUN.finditer(raw))


def _joined(segments: list[str]) -> tuple[str, list[int]]:
    """The segments as one text, and where each starts in it."""
    starts = list(itertools.accumulate((len(s) + 1 for s in segments[:-1]), initial=0)) if segments else []
    return SEPARATOR.join(segments), starts


def _path_of_text(value: Any, path: str, text: str) -> str:
    for where, s, _ in _strings(value, path):
        if s == text:
            return where
    return path  # not reached: every text came from the value


def _path_of_field(value: Any, path: str, key: str, text: str) -> str:
    for where, s, k in _strings(value, path):
        if k == key and s == text:
            return where
    return _path_of_text(value, path, text)


def _stream_pieces(body: list[Any], inside: str) -> Iterator[tuple[int, str]]:
    """``(chunk index, string)`` at path ``inside`` of every chunk: the pieces a stream text joined."""

    def strings(v: Any, rel: str) -> Iterator[tuple[str, str]]:
        # The same paths, and the same fields left out, as the walk in _Batch._add_record.
        if isinstance(v, dict):
            for k, x in v.items():
                name = str(k)
                if isinstance(x, str):
                    if not _key_facts(name) & _NOT_JOINED:
                        yield f"{rel}.{name}", x
                elif isinstance(x, (dict, list)):
                    yield from strings(x, f"{rel}.{name}")
        elif isinstance(v, list):
            for j, x in enumerate(v):
                if isinstance(x, str):
                    yield f"{rel}[{j}]", x
                elif isinstance(x, (dict, list)):
                    yield from strings(x, f"{rel}[{j}]")
        elif isinstance(v, str):
            yield rel, v

    for i, item in enumerate(body):
        for rel, piece in strings(item, ""):
            if rel == inside:
                yield i, piece


def _in_stream(stream: _Stream, offset: int, length: int) -> tuple[int, str, str]:
    """The record, the path of the chunk a secret starts in, and which chunks it spans."""
    chunks: list[int] = []
    ends: list[int] = []
    end = 0
    for i, piece in _stream_pieces(stream.body, stream.inside):
        end += len(piece)
        chunks.append(i)
        ends.append(end)
    first = chunks[bisect.bisect_right(ends, offset)]
    last = chunks[bisect.bisect_right(ends, offset + max(length, 1) - 1)]
    where = f"{stream.path}[{first}]{stream.inside}"
    return stream.record, where, f"reassembled across stream chunks {first}..{last}"
