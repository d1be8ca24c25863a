"""``vcr-ext convert``: plain vcrpy cassettes to our format and back; our layouts; llama-stack folders.

Every vcrpy cassette here is recorded in the test by vcrpy itself, around real openai
SDK calls to a loopback server that serves exact bytes (the real captured SSE stream of
the shared corpus, gzip bodies, binary bodies), or is built by hand where vcrpy can no
longer write the layout (cassettes of vcrpy < 1.0). The claim tested is the one the
command makes: replaying the converted cassette gives the client what replaying the
original under vcrpy gave, both ways.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from vcrpy_cassettes import (
    FAKE_KEY,
    JSON_HEADERS,
    SSE_HEADERS,
    Call,
    chat,
    chat_body,
    chat_stream,
    convert,
    enqueue_gzip_chat,
    file_content,
    models,
    record_plain,
    replay_httpx,
    replay_ours,
    replay_plain,
    tree,
)

import vcr_ext
from vcr_ext.cli.main import main
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.formats import vcrpy as vcrpy_format

CHAT = "/v1/chat/completions"
# A key of the form the scanner must catch; never a real one.
PLANTED = "sk-proj-" + "Xq9vL2mT8rB4nK7wP1sD6fH3jG5zC0aE9uY2iO8pQ4lM7xN1"


@pytest.fixture(scope="module")
def sse_stream(corpus_dir: Path) -> bytes:
    path = corpus_dir / "wire" / "chat_stream_openai_2025-10-27_r4u.sse"
    if not path.is_file():
        pytest.skip(f"captured chat stream not found at {path}")
    return path.read_bytes()


def _stream_text(sse: bytes) -> str:
    """The text a chat stream says, read straight from its bytes (not through vcr_ext)."""
    text = ""
    for line in sse.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[len("data: ") :])["choices"]:
                text += choice["delta"].get("content") or ""
    return text


def _events(sse: bytes) -> list[bytes]:
    """The stream as api.openai.com sends it: one HTTP chunk per event."""
    return [block + b"\n\n" for block in sse.split(b"\n\n") if block.strip()]


def _scenario(sse: bytes, *, gzip_body: bool) -> tuple[list[Call], Callable[[FakeOpenAIServer], None]]:
    """A stream, optionally a gzip body, one request made twice with two answers, a model list."""
    calls: list[Call] = [chat_stream("Say hi.")]
    if gzip_body:
        calls.append(chat("Compress this."))
    calls += [chat("Roll a die."), chat("Roll a die."), models]

    def setup(server: FakeOpenAIServer) -> None:
        server.enqueue("POST", CHAT, headers=SSE_HEADERS, body=_events(sse))
        if gzip_body:
            enqueue_gzip_chat(server, "gzipped answer")
        server.enqueue("POST", CHAT, headers=JSON_HEADERS, body=chat_body("4", completion_id="chatcmpl-A"))
        server.enqueue("POST", CHAT, headers=JSON_HEADERS, body=chat_body("2", completion_id="chatcmpl-B"))
        # /v1/models is answered by the server's own generator.

    return calls, setup


def _records(dst: Path) -> list[dict[str, Any]]:
    if dst.is_file():
        doc: list[dict[str, Any]] = json.loads(dst.read_text())
        return doc
    order = (dst / ".vcr-ext-order").read_text().split() if (dst / ".vcr-ext-order").exists() else None
    names = order or sorted(p.name for p in dst.glob("*.json"))
    return [json.loads((dst / name).read_text()) for name in names]


@pytest.mark.parametrize(
    ("serializer", "layout"), [("yaml", "dir"), ("yaml", "file"), ("json", "dir"), ("json", "file")]
)
def test_vcrpy_cassette_converts_and_replays_the_same_both_ways(
    tmp_path: Path, sse_stream: bytes, serializer: str, layout: str
) -> None:
    # vcrpy's JSON serializer cannot hold a compressed (binary) body, so only YAML gets one.
    calls, setup = _scenario(sse_stream, gzip_body=serializer == "yaml")
    original = tmp_path / f"original.{serializer}"
    base_url, live = record_plain(original, serializer, calls, setup)
    text = original.read_text()
    assert "authorization" in text  # plain vcrpy writes the request headers, key and all
    if serializer == "yaml":
        assert "!!binary" in text and "content-encoding" in text  # the gzip body as vcrpy keeps it

    dst = tmp_path / ("converted.json" if layout == "file" else "converted")
    result = convert(original, dst, "--layout", layout)
    assert result.returncode == 0, result.stderr
    assert f"converted {len(calls)} interaction(s)" in result.stdout
    assert dst.is_file() == (layout == "file")

    # What was written: our records, no request header, the key nowhere.
    written = "".join(data.decode() for data in tree(dst).values())
    assert FAKE_KEY not in written and "authorization" not in written.lower()
    records = _records(dst)
    assert len(records) == len(calls)
    assert all(r["request"]["headers"] == {} for r in records)
    stream = records[0]["response"]
    assert stream["is_streaming"] is True
    assert stream["body"][0]["__type__"] == "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
    if serializer == "yaml":
        gz = records[1]["response"]
        assert gz["body"]["__type__"] == "openai.types.chat.chat_completion.ChatCompletion"
        assert "content-encoding" not in gz["headers"]  # stored decoded
    if layout == "dir":
        # The same request twice: <hash>.json then <hash>.2.json, played in recorded order.
        assert len([p for p in dst.glob("*.2.json")]) == 1

    plain = replay_plain(original, serializer, base_url, calls)
    assert plain == live
    ours = replay_ours(dst, base_url, calls)
    assert ours == plain
    # Against the bytes the server sent, not only against each other.
    assert "".join(
        c["choices"][0]["delta"]["content"] or "" for c in ours[0] if c["choices"]
    ) == _stream_text(sse_stream)
    answers = [r["choices"][0]["message"]["content"] for r in ours[-3:-1]]
    assert answers == ["4", "2"]

    # And back to a plain vcrpy cassette, which plain vcrpy replays the same.
    back = tmp_path / f"back.{serializer}"
    result = convert(dst, back, "--to", "vcrpy")
    assert result.returncode == 0, result.stderr
    assert "interactions" in vcrpy_format.dumps(records, "yaml")
    assert vcrpy_format.serializer_for(back) == serializer
    assert FAKE_KEY not in back.read_text()
    assert replay_plain(back, serializer, base_url, calls) == plain


def test_binary_body_round_trips_as_base64(tmp_path: Path) -> None:
    payload = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    calls = [file_content("file-abc123")]

    def setup(server: FakeOpenAIServer) -> None:
        headers = [("content-type", "application/octet-stream")]
        server.enqueue("GET", "/v1/files/file-abc123/content", headers=headers, body=payload)

    original = tmp_path / "binary.yaml"
    base_url, live = record_plain(original, "yaml", calls, setup)
    assert live[0]["bytes"] == payload
    assert "!!binary" in original.read_text()

    dst = tmp_path / "binary.json"
    result = convert(original, dst)
    assert result.returncode == 0, result.stderr
    (rec,) = json.loads(dst.read_text())
    body = rec["response"]["body"]
    assert body["__type__"] == "vcr_ext.raw.Base64"
    assert base64.b64decode(body["__data__"]) == payload

    plain = replay_plain(original, "yaml", base_url, calls)
    assert replay_ours(dst, base_url, calls) == plain == live

    back = tmp_path / "back.yaml"
    assert convert(dst, back, "--to", "vcrpy").returncode == 0
    assert replay_plain(back, "yaml", base_url, calls) == plain
    # vcrpy's JSON serializer has no way to hold these bytes: refused, nothing written.
    refused = tmp_path / "back.json"
    result = convert(dst, refused, "--to", "vcrpy")
    assert result.returncode == 2
    assert "binary" in result.stderr and "yaml" in result.stderr
    assert not refused.exists()


def test_request_headers_with_credentials_are_dropped(tmp_path: Path) -> None:
    calls = [chat("Hello")]

    def setup(server: FakeOpenAIServer) -> None:
        server.enqueue("POST", CHAT, headers=JSON_HEADERS, body=chat_body("Hi"))

    original = tmp_path / "auth.yaml"
    # A realistic key and cookie in the request headers, as a real recording has them.
    base_url, _ = record_plain(original, "yaml", calls, setup)
    text = original.read_text().replace(FAKE_KEY, PLANTED)
    text = text.replace(
        "      connection:\n", "      cookie:\n      - __cf_bm=abc123secretcookie\n      connection:\n"
    )
    original.write_text(text)
    assert PLANTED in original.read_text()

    dst = tmp_path / "auth"
    result = convert(original, dst)
    assert result.returncode == 0, result.stderr
    written = "".join(data.decode() for data in tree(dst).values())
    assert PLANTED not in written and "secretcookie" not in written
    assert replay_ours(dst, base_url, calls) == replay_plain(original, "yaml", base_url, calls)


# -- hand-built cassettes: hosts other than OpenAI, layouts vcrpy no longer writes -------------

ITEMS_URL = "https://api.example.test/v2/items?q=1"
ITEMS = {"items": [{"id": 1, "name": "ä"}, {"id": 2, "name": "b"}]}

V1_YAML = f"""\
interactions:
- request:
    body: null
    headers:
      Accept:
      - '*/*'
      Authorization:
      - Token abc
    method: GET
    uri: {ITEMS_URL}
  response:
    body:
      string: '{json.dumps(ITEMS)}'
    headers:
      Content-Type:
      - application/json
      Set-Cookie:
      - a=b
    status:
      code: 200
      message: OK
version: 1
"""

# vcrpy < 1.0: a bare list, the URL in parts, response headers as raw lines.
PRE_1_0_YAML = f"""\
- request: !!python/object:vcr.request.Request
    body: null
    headers: !!python/object/apply:__builtin__.frozenset
    - - !!python/tuple [Accept, '*/*']
    host: api.example.test
    method: GET
    path: /v2/items?q=1
    port: 443
    protocol: https
  response:
    body: {{string: '{json.dumps(ITEMS)}'}}
    headers: ["Content-Type: application/json\\r\\n", "Server: old\\r\\n"]
    status: {{code: 200, message: OK}}
"""


def test_non_openai_host_is_kept_and_replays(tmp_path: Path) -> None:
    original = tmp_path / "items.yaml"
    original.write_text(V1_YAML)
    dst = tmp_path / "items.json"
    result = convert(original, dst)
    assert result.returncode == 0, result.stderr
    (rec,) = json.loads(dst.read_text())
    assert rec["request"]["url"] == ITEMS_URL
    assert rec["response"]["headers"] == {"content-type": "application/json"}  # the cookie is gone
    expected = {"status": 200, "type": "application/json", "json": ITEMS}
    assert replay_httpx(original, ITEMS_URL, ours=False) == expected
    assert replay_httpx(dst, ITEMS_URL, ours=True) == expected
    back = tmp_path / "back.yaml"
    assert main(["convert", str(dst), str(back), "--to", "vcrpy"]) == 0
    assert replay_httpx(back, ITEMS_URL, ours=False) == expected


def test_cassette_of_vcrpy_before_1_0_converts(tmp_path: Path) -> None:
    original = tmp_path / "old.yaml"
    original.write_text(PRE_1_0_YAML)
    dst = tmp_path / "old.json"
    assert main(["convert", str(original), str(dst)]) == 0
    assert replay_httpx(dst, ITEMS_URL, ours=True) == {
        "status": 200,
        "type": "application/json",
        "json": ITEMS,
    }


def test_old_body_shapes_in_a_json_cassette(tmp_path: Path) -> None:
    # A request body as {"string": ...} and a response body as a bare string.
    cassette = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": "https://search.example.test/v1/query",
                    "body": {"string": json.dumps({"q": "cats"})},
                    "headers": {"api-key": ["k-123"]},
                },
                "response": {
                    "status": {"code": 201, "message": "Created"},
                    "headers": {"Content-Type": ["application/json"]},
                    "body": json.dumps({"hits": 3}),
                },
            }
        ],
    }
    original = tmp_path / "old.json"
    original.write_text(json.dumps(cassette))
    assert vcrpy_format.is_vcrpy_cassette(original)
    dst = tmp_path / "ours"
    assert main(["convert", str(original), str(dst)]) == 0
    with vcr_ext.VCR(record_mode="none").use_cassette(str(dst)):
        reply = httpx.post("https://search.example.test/v1/query", json={"q": "cats"}, timeout=5)
    assert (reply.status_code, reply.json()) == (201, {"hits": 3})


# -- secrets and bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("target", [["--layout", "dir"], ["--layout", "file"], ["--to", "vcrpy"]])
def test_secret_in_a_response_stops_everything(tmp_path: Path, target: list[str]) -> None:
    calls = [chat("What is my key?"), chat("Thanks")]

    def setup(server: FakeOpenAIServer) -> None:
        server.enqueue("POST", CHAT, headers=JSON_HEADERS, body=chat_body("fine"))
        server.enqueue("POST", CHAT, headers=JSON_HEADERS, body=chat_body(f"Your key is {PLANTED}."))

    original = tmp_path / "leak.yaml"
    record_plain(original, "yaml", calls, setup)
    before = tree(tmp_path)
    dst = tmp_path / "out"
    result = convert(original, dst, *target)
    assert result.returncode == 1, result.stderr
    assert f"{original}, interaction 1" in result.stderr
    assert "response.body.__data__.choices[0].message.content" in result.stderr
    assert "Nothing was written" in result.stderr
    assert PLANTED not in result.stderr + result.stdout  # masked
    assert tree(tmp_path) == before  # no DST, no temporary file


BAD_CASSETTES = {
    "status missing": (
        "bad.yaml",
        V1_YAML.replace("version: 1", "")
        + "- request: {method: GET, uri: 'https://a.test/x', body: null, headers: {}}\n"
        "  response: {body: {string: ''}, headers: {}}\n",
        ["interaction 1", "'response.status'", "is missing"],
    ),
    "status not a number": (
        "bad.yaml",
        V1_YAML.replace("code: 200", "code: lots"),
        ["interaction 0", "'response.status.code'", "HTTP status"],
    ),
    "no uri": (
        "bad.json",
        json.dumps({"version": 1, "interactions": [{"request": {"method": "GET"}, "response": {}}]}),
        ["interaction 0", "'request.uri'", "is missing"],
    ),
    "header value a mapping": (
        "bad.yaml",
        V1_YAML.replace("      Set-Cookie:\n      - a=b\n", "      Set-Cookie: {a: b}\n"),
        ["interaction 0", "'response.headers.Set-Cookie'", "must be text"],
    ),
    "not yaml": ("bad.yaml", "interactions: [\n  - {request: \n", ["'(file)'", "not valid YAML", "line"]),
    "unsafe tag": (
        "bad.yaml",
        "interactions:\n- !!python/object/apply:os.system ['echo hi']\n",
        ["'(file)'", "safe YAML loader"],
    ),
    "interactions not a list": (
        "bad.json",
        json.dumps({"version": 1, "interactions": {"a": 1}}),
        ["'interactions'", "must be a list"],
    ),
    "unknown version": (
        "bad.json",
        json.dumps({"version": 2, "interactions": []}),
        ["'version'", "version 1"],
    ),
    "corrupt gzip body": (
        "bad.yaml",
        V1_YAML.replace(
            f"string: '{json.dumps(ITEMS)}'", "string: !!binary |\n        H4sIAAAAAAAAA3XR\n"
        ).replace("      Set-Cookie:", "      Content-Encoding:\n      - gzip\n      Set-Cookie:"),
        ["interaction 0", "'response.body.string'", "is not gzip data"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASSETTES), ids=list(BAD_CASSETTES))
def test_bad_cassette_is_named_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    name, text, expected = BAD_CASSETTES[case]
    src = tmp_path / name
    src.write_text(text)
    dst = tmp_path / "out"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert str(src) in err
    for part in expected:
        assert part in err, err
    assert not os.path.lexists(dst)


def test_bad_cassette_exit_code_from_the_command_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.yaml"
    src.write_text(V1_YAML.replace("code: 200", "code: lots"))
    result = convert(src, tmp_path / "out")
    assert result.returncode == 2
    assert f"{src}, interaction 0: field 'response.status.code'" in result.stderr


def test_existing_destination_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "items.yaml"
    src.write_text(V1_YAML)
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "old.json").write_text("{}")
    assert main(["convert", str(src), str(dst)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["convert", str(src), str(dst), "--force"]) == 0
    assert [p.name for p in dst.iterdir()] != ["old.json"] and not (dst / "old.json").exists()
    # A folder that holds more than recordings is never swapped out, even with --force.
    (dst / "notes.txt").write_text("mine")
    before = tree(dst)
    assert main(["convert", str(src), str(dst), "--force"]) == 2
    assert "holds more than recordings" in capsys.readouterr().err
    assert tree(dst) == before
    # Nor is a directory replaced by a file.
    assert main(["convert", str(src), str(dst), "--layout", "file", "--force"]) == 2
    assert tree(dst) == before


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "items.yaml"
    src.write_text(V1_YAML)
    assert main(["convert", str(tmp_path / "missing.yaml"), str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "o.yaml"), "--to", "vcrpy", "--layout", "dir"]) == 2
    assert main(["convert", str(src), str(tmp_path / "o"), "--serializer", "json"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.yaml").write_text(V1_YAML)
    assert main(["convert", str(empty), str(tmp_path / "o")]) == 2
    assert "convert each file on its own" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# -- our own layouts and llama-stack folders -------------------------------------------------------


def test_directory_and_file_of_our_format_convert_losslessly(tmp_path: Path, sse_stream: bytes) -> None:
    calls, setup = _scenario(sse_stream, gzip_body=True)
    original = tmp_path / "original.yaml"
    base_url, _ = record_plain(original, "yaml", calls, setup)
    first = tmp_path / "first"
    assert main(["convert", str(original), str(first)]) == 0
    one_file = tmp_path / "one.json"
    assert main(["convert", str(first), str(one_file)]) == 0
    again = tmp_path / "again"
    assert main(["convert", str(one_file), str(again)]) == 0
    assert tree(again) == tree(first)  # records, names and order file: byte for byte
    assert json.loads(one_file.read_text()) == _records(first)
    assert replay_ours(one_file, base_url, calls) == replay_ours(first, base_url, calls)


def test_llama_stack_recordings_folder(tmp_path: Path, corpus_dir: Path) -> None:
    recordings = corpus_dir / "llama-stack-2025-10" / "inference" / "recordings"
    if not recordings.is_dir():
        pytest.skip(f"llama-stack recordings not found at {recordings}")
    # A few of the corpus's files, linked (not copied) into a folder of their own.
    src = tmp_path / "recordings"
    src.mkdir()
    picked = sorted(recordings.glob("*.json"))[:8]
    for file in picked:
        (src / file.name).symlink_to(file)

    as_dir, as_file = tmp_path / "ours", tmp_path / "ours.json"
    result = convert(src, as_dir)
    assert result.returncode == 0, result.stderr
    assert main(["convert", str(src), str(as_file)]) == 0
    # The records are the format already: carried over unchanged, llama-stack's names kept.
    originals = {f.name: json.loads(f.read_text()) for f in picked}
    assert {p.name: json.loads(p.read_text()) for p in as_dir.glob("*.json")} == originals
    assert json.loads(as_file.read_text()) == [originals[f.name] for f in picked]

    def served(path: Path) -> list[Any]:
        requests, responses = vcr_ext.Persister().load_cassette(path)
        return [
            (q.method, q.uri, q.body, r["status"]["code"], r["headers"], r["body"]["string"])
            for q, r in zip(requests, responses, strict=True)
        ]

    assert served(as_dir) == served(src)
    assert served(as_file) == served(src)
    assert all(f.is_symlink() for f in src.iterdir())  # the corpus was only read


def test_reader_api_for_other_commands(tmp_path: Path) -> None:
    src = tmp_path / "items.yaml"
    # Hand-edited cassettes hold header values YAML reads as numbers; on the wire they are text.
    src.write_text(V1_YAML.replace("      Set-Cookie:", "      Content-Length: 60\n      Set-Cookie:"))
    assert vcrpy_format.is_vcrpy_cassette(src)
    assert vcrpy_format.is_vcrpy_cassette(tmp_path / "nothing.yaml") is False
    assert vcrpy_format.is_vcrpy_cassette(tmp_path) is False
    ours = tmp_path / "ours.json"
    assert main(["convert", str(src), str(ours)]) == 0
    assert vcrpy_format.is_vcrpy_cassette(ours) is False  # our own records have a url, not a uri
    assert vcrpy_format.read(src) == json.loads(ours.read_text())
    ((request, response),) = vcrpy_format.read_interactions(src)
    assert (request.method, request.uri, response["status"]["code"]) == ("GET", ITEMS_URL, 200)
    assert response["headers"]["Content-Length"] == ["60"]
    assert json.loads(response["body"]["string"]) == ITEMS
    assert yaml.safe_load(vcrpy_format.dumps(vcrpy_format.read(src)))["version"] == 1
