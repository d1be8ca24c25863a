"""A bad cassette fails when it is opened, naming file, record and field, and is left exactly as it was.

Each case of :data:`CASES` is opened in each layout it applies to (a directory of
one-record files, and one file holding a list of records) in each record mode. The
error must come from entering ``use_cassette``, before the test body sends anything (a
loopback server counts what reaches it), and every byte under the test's folder must
be the same afterwards: a file that cannot be read is never taken for a missing
cassette, which vcrpy would record again and write over.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import vcr_ext
from vcr_ext import record, serializer, typed_check
from vcr_ext.errors import CassetteFormatError
from vcr_ext.persister import Persister

CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
EMBEDDINGS = "openai.types.create_embedding_response.CreateEmbeddingResponse"
MODES = ("none", "once", "new_episodes", "all")
DIRECTORY, FILE = "directory", "file"


def _chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    return {
        "__type__": CHUNK,
        "__data__": {
            "id": "rec-0123456789ab",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-4o",
            "choices": [
                {"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": finish}
            ],
        },
    }


def good(question: str = "hi") -> dict[str, Any]:
    """A valid streamed chat record, as vcr_ext writes one."""
    return {
        "test_id": "tests/test_x.py::test_x",
        "request": {
            "method": "POST",
            "url": "http://127.0.0.1:9/v1/chat/completions",
            "headers": {},
            "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": question}], "stream": True},
            "endpoint": "/v1/chat/completions",
            "model": "gpt-4o",
        },
        "response": {
            "body": [_chunk("Hel"), _chunk("lo"), _chunk(None, "stop")],
            "is_streaming": True,
            "headers": {"content-type": "text/event-stream; charset=utf-8"},
        },
    }


def bad(change: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    """A bad record: :func:`good` (asked something else) changed by ``change``, or what ``change`` returns."""

    def make() -> Any:
        rec = good("the bad one")
        replaced = change(rec)
        return rec if replaced is None else replaced

    return make


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a dotted path (``response.body.1.__data__.choices``) of a record."""

    def change(rec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = rec
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _drop(*paths: str) -> Callable[[dict[str, Any]], None]:
    """Remove dotted paths (``request.url``) of a record."""

    def change(rec: dict[str, Any]) -> None:
        for path in paths:
            *parents, last = path.split(".")
            target: Any = rec
            for part in parents:
                target = target[part]
            del target[last]

    return change


TOOL_RECORD = {
    "test_id": "t",
    "request": {"test_id": "t", "provider": "tavily", "tool_name": "web_search", "kwargs": {"q": "x"}},
    "response": {"body": {"results": []}, "is_streaming": False},
}


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


# -- the layouts a case is laid out in ---------------------------------------------------------

Expected = tuple[Path, Path, int | None]
"""(cassette path to open, the file the error names, the record it names)"""


def lay_record(root: Path, layout: str, bad_value: Any) -> Expected:
    """A bad record: its own file beside a good one, or the second of a list of records."""
    if layout == DIRECTORY:
        cassette = root / "cas"
        cassette.mkdir()
        (cassette / "good.json").write_bytes(_dumps(good()))
        (cassette / "bad.json").write_bytes(_dumps(bad_value))
        return cassette, cassette / "bad.json", None
    cassette = root / "cas.json"
    cassette.write_bytes(_dumps([good(), bad_value]))
    return cassette, cassette, 1


def lay_bytes(root: Path, layout: str, data: bytes) -> Expected:
    """A bad file: beside a good one in a directory, or the one-file cassette itself."""
    if layout == DIRECTORY:
        cassette = root / "cas"
        cassette.mkdir()
        (cassette / "good.json").write_bytes(_dumps(good()))
        (cassette / "bad.json").write_bytes(data)
        return cassette, cassette / "bad.json", None
    cassette = root / "cas.json"
    cassette.write_bytes(data)
    return cassette, cassette, None


def lay_tool_in_list(root: Path, layout: str) -> Expected:
    # A list of records is vcr_ext's own layout, in a directory or as the cassette.
    if layout == DIRECTORY:
        cassette = root / "cas"
        cassette.mkdir()
        (cassette / "list.json").write_bytes(_dumps([good(), TOOL_RECORD]))
        return cassette, cassette / "list.json", 1
    cassette = root / "cas.json"
    cassette.write_bytes(_dumps([good(), TOOL_RECORD]))
    return cassette, cassette, 1


def lay_symlink_loop(root: Path, layout: str) -> Expected:
    cassette = root / ("cas" if layout == DIRECTORY else "cas.json")
    os.symlink(cassette.name, cassette)  # a link to itself
    return cassette, cassette, None


def lay_broken_symlink(root: Path, layout: str) -> Expected:
    cassette = root / ("cas" if layout == DIRECTORY else "cas.json")
    os.symlink("nowhere", cassette)
    return cassette, cassette, None


def lay_directory_for_file(root: Path, layout: str) -> Expected:
    if layout == DIRECTORY:
        cassette = root / "cas"
        (cassette / "sub.json").mkdir(parents=True)  # named like a record file
        (cassette / "good.json").write_bytes(_dumps(good()))
        return cassette, cassette / "sub.json", None
    cassette = root / "cas.json"
    cassette.mkdir()
    (cassette / "x.json").write_bytes(_dumps(good()))
    return cassette, cassette, None


def lay_file_for_directory(root: Path, layout: str) -> Expected:
    cassette = root / "cas"
    cassette.write_bytes(_dumps(good()))
    return cassette, cassette, None


def lay_unreadable(root: Path, layout: str) -> Expected:
    # A good record in a file nobody may read: the one-record file, or the cassette file.
    cassette, unreadable, _ = lay_bytes(root, layout, _dumps(good("unreadable")))
    unreadable.chmod(0)
    return cassette, unreadable, None


@dataclass(frozen=True)
class Case:
    """One bad cassette: how it is laid out and what the error must name."""

    id: str
    field: str
    problem: str  # words the message must hold
    lay: Callable[[Path, str], Expected]
    layouts: tuple[str, ...] = (DIRECTORY, FILE)
    marks: tuple[pytest.MarkDecorator, ...] = ()


def record_case(id: str, field: str, problem: str, make: Callable[[], Any]) -> Case:
    return Case(id, field, problem, lambda root, layout: lay_record(root, layout, make()))


def bytes_case(id: str, problem: str, data: bytes) -> Case:
    return Case(id, "(file)", problem, lambda root, layout: lay_bytes(root, layout, data))


_TRUNCATED = _dumps(good())[:200]
_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

CASES = [
    bytes_case("not-json", "is not valid JSON", b'{"request": nul}\n'),
    bytes_case("not-utf8", "is not UTF-8", b'{"test_id": "\xff\xfe"}\n'),
    bytes_case("truncated-json", "is not valid JSON", _TRUNCATED),
    bytes_case("empty-array", "is an empty list", b"[]\n"),
    record_case("record-not-an-object", "(record)", "expected a JSON object", lambda: "a string"),
    record_case("no-request", "request", "missing", bad(_drop("request"))),
    record_case(
        "method-not-a-string", "request.method", "expected an HTTP method", bad(_set("request.method", 5))
    ),
    record_case(
        "no-url-no-endpoint",
        "request.url",
        "neither request.url nor request.endpoint",
        bad(_drop("request.url", "request.endpoint")),
    ),
    record_case("url-not-a-string", "request.url", "expected a string", bad(_set("request.url", ["x"]))),
    record_case("no-request-body", "request.body", "missing: a POST record", bad(_drop("request.body"))),
    record_case("no-response", "response", "missing", bad(_drop("response"))),
    record_case("no-response-body", "response.body", "missing", bad(_drop("response.body"))),
    record_case(
        "is-streaming-not-a-bool",
        "response.is_streaming",
        "expected true or false",
        bad(_set("response.is_streaming", "yes")),
    ),
    record_case("stream-body-not-a-list", "response.body", "must be a list", bad(_set("response.body", {}))),
    record_case("bad-status", "response.status", "HTTP status code", bad(_set("response.status", 99))),
    record_case(
        "header-not-a-string",
        "response.headers",
        "string value",
        bad(_set("response.headers", {"content-type": 1})),
    ),
    record_case(
        "sse-done-not-a-bool", "response.sse_done", "true or false", bad(_set("response.sse_done", 1))
    ),
    record_case(
        "type-not-a-string",
        "response.body[1].__type__",
        "expected a type name",
        bad(_set("response.body.1.__type__", 5)),
    ),
    record_case(
        "unknown-vcr-ext-type",
        "response.body[1].__type__",
        "unknown vcr_ext type 'vcr_ext.raw.Nope'",
        bad(_set("response.body.1", {"__type__": "vcr_ext.raw.Nope", "__data__": "x"})),
    ),
    record_case(
        "chunk-not-an-envelope",  # "data" where "__data__" belongs
        "response.body[1].__data__",
        "is an envelope",
        bad(_set("response.body.1", {"__type__": CHUNK, "data": _chunk("lo")["__data__"]})),
    ),
    record_case(
        "data-field-of-the-wrong-kind",
        "response.body[1].__data__.choices",
        'ChatCompletionChunk holds an array or null here, got a string ("oops")',
        bad(_set("response.body.1.__data__.choices", "oops")),
    ),
    record_case(
        "data-not-an-object",
        "response.body[1].__data__",
        "ChatCompletionChunk holds an object here, got a number (42)",
        bad(_set("response.body.1.__data__", 42)),
    ),
    record_case(
        "nested-data-of-the-wrong-kind",
        "response.body[2].__data__.choices[0].delta.content",
        "holds a string or null here, got an array",
        bad(_set("response.body.2.__data__.choices.0.delta.content", ["lo"])),
    ),
    record_case(
        "raw-text-not-a-string",
        "response.body[1].__data__",
        "vcr_ext.raw.Text holds a string",
        bad(_set("response.body.1", {"__type__": "vcr_ext.raw.Text", "__data__": 5})),
    ),
    record_case(
        "request-body-bad-base64",
        "request.body.__data__",
        "holds base64 text",
        bad(_set("request.body", {"__type__": "vcr_ext.raw.Base64", "__data__": "not base64!"})),
    ),
    record_case(
        "sse-event-not-an-object",
        "response.body[1].__data__",
        "expected an object of event, id, retry and data",
        bad(_set("response.body.1", {"__type__": "vcr_ext.sse.Event", "__data__": 42})),
    ),
    record_case(
        "sse-event-with-a-number-for-its-name",
        "response.body[1].__data__.event",
        "expected a string",
        bad(_set("response.body.1", {"__type__": "vcr_ext.sse.Event", "__data__": {"event": 7}})),
    ),
    record_case(
        "id-mapping-with-an-empty-id",
        "id_normalization_mapping.file-1",
        "expected an original id",
        bad(_set("id_normalization_mapping", {"file-1": ""})),
    ),
    Case(
        "tool-invocation-in-a-list", "request", "a list of records holds HTTP records only", lay_tool_in_list
    ),
    Case("symlink-loop-as-directory", "(directory)", "symbolic links", lay_symlink_loop, (DIRECTORY,)),
    Case("symlink-loop-as-file", "(file)", "symbolic links", lay_symlink_loop, (FILE,)),
    Case(
        "broken-symlink-as-directory",
        "(directory)",
        "symbolic link to nothing",
        lay_broken_symlink,
        (DIRECTORY,),
    ),
    Case("broken-symlink-as-file", "(file)", "symbolic link to nothing", lay_broken_symlink, (FILE,)),
    Case("directory-where-a-file-should-be", "(file)", "Is a directory", lay_directory_for_file),
    Case(
        "file-where-a-directory-should-be", "(directory)", "is a file", lay_file_for_directory, (DIRECTORY,)
    ),
    Case(
        "permission-denied",
        "(file)",
        "Permission denied",
        lay_unreadable,
        marks=(
            pytest.mark.skipif(
                _IS_ROOT, reason="root reads every file whatever its mode; see the simulated case"
            ),
        ),
    ),
]


def _params() -> Iterator[Any]:
    for case in CASES:
        for layout in case.layouts:
            for mode in MODES:
                yield pytest.param(case, layout, mode, id=f"{case.id}-{layout}-{mode}", marks=case.marks)


# -- what the tests look at ---------------------------------------------------------------------


class _Counting(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.send_response(500)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, type[_Counting]]]:
    """A loopback HTTP server counting the requests that reach it (none may)."""
    handler = type("Counting", (_Counting,), {"hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry under ``root``: kind, bytes (or link target) and mode, without following links."""
    out: dict[str, tuple[str, bytes | str, int]] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            rel = os.fspath(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path), st.st_mode)
            elif path.is_dir():
                out[rel] = ("dir", b"", st.st_mode)
            else:
                out[rel] = ("file", path.read_bytes() if os.access(path, os.R_OK) else b"?", st.st_mode)
    return out


def assert_names(err: CassetteFormatError, path: Path, index: int | None, field: str, problem: str) -> None:
    assert (err.path, err.record, err.field) == (os.fspath(path), index, field), str(err)
    message = str(err)
    assert message.startswith(os.fspath(path) + ("" if index is None else f", record {index}")), message
    assert f"field '{field}'" in message and problem in message, message


@pytest.mark.parametrize(("case", "layout", "mode"), list(_params()))
def test_a_bad_file_fails_on_open_and_is_left_as_it_was(
    case: Case, layout: str, mode: str, tmp_path: Path, loopback: tuple[str, type[_Counting]]
) -> None:
    url, handler = loopback
    cassette, bad_path, index = case.lay(tmp_path, layout)
    before = snapshot(tmp_path)
    hits = handler.hits
    entered = False
    with (
        pytest.raises(CassetteFormatError) as err,
        vcr_ext.VCR(record_mode=mode, layout=layout).use_cassette(str(cassette)),
    ):
        entered = True
        httpx.post(url, json={"model": "gpt-4o", "messages": []})
    assert not entered and handler.hits == hits
    assert_names(err.value, bad_path, index, case.field, case.problem)
    assert snapshot(tmp_path) == before


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 36
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("layout", [DIRECTORY, FILE])
def test_the_good_records_of_the_cases_load(layout: str, tmp_path: Path) -> None:
    # The cases fail because of what they change, not because the base record is bad.
    cassette, _, _ = lay_record(tmp_path, layout, good("another question"))
    requests, _ = Persister(layout="file" if layout == FILE else "directory").load_cassette(cassette)
    assert len(requests) == 2


@pytest.mark.parametrize("layout", [DIRECTORY, FILE])
def test_a_file_that_cannot_be_read_is_named_even_as_root(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied, simulated: running as root, chmod cannot make a file unreadable."""
    cassette, bad_path, index = lay_bytes(tmp_path, layout, _dumps(good("unreadable")))
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == bad_path:
            raise PermissionError(13, "Permission denied", os.fspath(self))
        return read_bytes(self)

    before = snapshot(tmp_path)
    monkeypatch.setattr(Path, "read_bytes", denied)
    with (
        pytest.raises(CassetteFormatError) as err,
        vcr_ext.VCR(record_mode="all", layout=layout).use_cassette(str(cassette)),
    ):
        pytest.fail("the cassette opened")
    assert_names(err.value, bad_path, index, "(file)", "cannot be read: Permission denied")
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_a_directory_that_cannot_be_listed_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission denied on the directory, simulated for the same reason."""
    cassette = tmp_path / "cas"
    cassette.mkdir()
    scandir = os.scandir

    def denied(path: Any) -> Any:
        if Path(path) == cassette:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(CassetteFormatError) as err:
        Persister().load_cassette(cassette)
    assert_names(err.value, cassette, None, "(directory)", "cannot be read: Permission denied")


# -- shapes that are not bad ----------------------------------------------------------------------


def _load_one(tmp_path: Path, rec: dict[str, Any]) -> Persister:
    cassette = tmp_path / "cas"
    cassette.mkdir(parents=True, exist_ok=True)
    (cassette / "rec.json").write_bytes(_dumps(rec))
    persister = Persister()
    requests, _ = persister.load_cassette(cassette)
    assert len(requests) == 1
    return persister


def test_a_one_record_tool_invocation_file_in_a_directory_is_skipped_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "cas").mkdir()
    (tmp_path / "cas" / "tool.json").write_bytes(_dumps(TOOL_RECORD))
    persister = _load_one(tmp_path, good())
    (skipped,) = persister.skipped
    assert (
        skipped.path.endswith("tool.json") and skipped.index is None and "tavily.web_search" in skipped.reason
    )


def test_a_request_without_method_or_url_that_is_no_tool_call_is_an_error(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    rec = good()
    rec["request"] = {"body": rec["request"]["body"]}
    cassette.mkdir()
    (cassette / "rec.json").write_bytes(_dumps(rec))
    with pytest.raises(CassetteFormatError) as err:
        Persister().load_cassette(cassette)
    assert err.value.field == "request.method"


def test_records_that_legitimately_have_no_request_body_load(tmp_path: Path) -> None:
    get = good()
    get["request"].update(method="GET", url="http://127.0.0.1:9/v1/models", endpoint="/v1/models")
    del get["request"]["body"]
    get["response"] = {"body": {"object": "list", "data": []}, "is_streaming": False}
    _load_one(tmp_path / "get", get)
    raw_http = {  # llama-stack's later recorder: the JSON sent is its "payload"
        "request": {"url": "http://localhost:8000/v1/rerank", "method": "POST", "payload": {"query": "q"}},
        "response": {"status": 200, "body": {"results": []}, "is_streaming": False},
    }
    _load_one(tmp_path / "raw", raw_http)


def test_nulls_extras_and_sdk_leniencies_are_fine(tmp_path: Path) -> None:
    rec = good()
    data = rec["response"]["body"][0]["__data__"]
    # Explicit nulls (llama-stack's re-dumps), null in a required field (real providers),
    # fields the class does not know, and a value model_validate refuses but the SDK takes.
    data.update(
        created=None, system_fingerprint=None, obfuscation="x3", brand_new_field={"a": [1]}, object=""
    )
    data["choices"][0]["delta"].update(role=None, tool_calls=None, reasoning_content="thinking")
    _load_one(tmp_path, rec)


def test_base64_embeddings_fit_their_class(tmp_path: Path) -> None:
    # The SDK asks for base64 embeddings and decodes the string itself.
    rec = good()
    rec["request"].update(url="http://127.0.0.1:9/v1/embeddings", endpoint="/v1/embeddings")
    payload: dict[str, Any] = {
        "object": "list",
        "model": "m",
        "data": [{"object": "embedding", "index": 0, "embedding": "AAAA"}],
    }
    rec["response"] = {"body": {"__type__": EMBEDDINGS, "__data__": payload}, "is_streaming": False}
    _load_one(tmp_path, rec)
    payload["data"][0]["embedding"] = {"not": "numbers"}
    with pytest.raises(CassetteFormatError) as err:
        _load_one(tmp_path, rec)
    assert err.value.field == "response.body.__data__.data[0].embedding"


def test_a_class_that_dumps_to_another_kind_fits_that_kind() -> None:
    # ollama's Image serializes to a base64 string, which is what a recorder re-dumping
    # the object writes; its fields say nothing about its JSON.
    message = {"role": "assistant", "content": "x", "images": ["aGVsbG8="]}
    assert typed_check.check("ollama._types.ChatResponse", {"message": message}) is None
    message["content"] = ["x"]
    mismatch = typed_check.check("ollama._types.ChatResponse", {"message": message})
    assert mismatch is not None and mismatch.path == ".message.content"


@pytest.mark.parametrize(
    "type_name",
    [
        "openai.types.not_a_module.Nope",
        "openai.types.chat.chat_completion_chunk.Nope",
        "some_other_sdk.types.Thing",
    ],
)
def test_a_type_no_installed_sdk_has_is_not_checked(type_name: str, tmp_path: Path) -> None:
    assert not typed_check.is_checked(type_name)
    rec = good()
    rec["response"]["body"][1] = {"__type__": type_name, "__data__": {"choices": "anything"}}
    _load_one(tmp_path, rec)


def test_every_sdk_type_of_the_corpus_is_checked_and_fits(corpus_dir: Path) -> None:
    types: set[str] = set()
    for file in sorted((corpus_dir / "llama-stack-2025-10").rglob("*.json")):
        rec = json.loads(file.read_bytes())
        if not record.is_http(rec):
            continue
        record.check(rec, file, None)
        body = rec["response"]["body"]
        types |= {i["__type__"] for i in (body if isinstance(body, list) else [body]) if isinstance(i, dict)}
    assert types and all(typed_check.is_checked(t) for t in types), types


# -- vcrpy's own persister with the "vcr_ext" serializer --------------------------------------------


@pytest.mark.parametrize(
    ("text", "index", "field"),
    [
        pytest.param("[]", None, "(file)", id="empty-array"),
        pytest.param('[{"request": ', None, "(file)", id="truncated"),
        pytest.param(json.dumps([good(), TOOL_RECORD]), 1, "request", id="tool-in-list"),
        pytest.param(
            json.dumps(bad(_set("response.body.1.__data__.choices", "oops"))()),
            None,
            "response.body[1].__data__.choices",
            id="data-of-the-wrong-kind",
        ),
    ],
)
def test_the_serializer_checks_as_the_persister_does(text: str, index: int | None, field: str) -> None:
    with pytest.raises(CassetteFormatError) as err:
        serializer.deserialize(text)
    assert (err.value.record, err.value.field) == (index, field)


def test_the_serializer_reads_a_good_cassette() -> None:
    doc = [good(), good("again")]
    assert len(serializer.deserialize(json.dumps(doc))["interactions"]) == 2
