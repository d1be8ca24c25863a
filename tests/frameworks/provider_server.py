"""Real provider traffic from the shared corpus, served by a loopback server, for the framework tests.

Two sources, read from ``$VCR_EXT_CORPUS`` and never copied into the repository:

- ``providers/pydantic-ai/<provider>/<name>.yaml``: vcrpy cassettes pydantic-ai's own suite
  recorded against the live Anthropic and Google APIs (JSON bodies parsed under
  ``parsed_body``, see the corpus README);
- ``wire/...``: raw SSE bytes captured from api.openai.com.

:func:`serve` queues their responses on a :class:`vcr_ext.demo.server.FakeOpenAIServer`
at the path each was recorded on, in order, one HTTP chunk per SSE event, as
tests/providers/test_anthropic.py serves the Anthropic corpus. The server answers by
method and path only: what a framework sends is not checked against the recorded
request (the tests set the framework up as the recording test did, so that the answers
fit), but everything a framework sends is recorded, and replayed, by vcr_ext.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from vcr_ext.demo.server import FakeOpenAIServer

# Framing the server sets itself (the corpus holds both content-length and chunked).
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})
SSE = "text/event-stream; charset=utf-8"


@dataclass(frozen=True)
class Canned:
    """One response to serve: where it was recorded, and the bytes the server sent."""

    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    request: Any  # the recorded request body (parsed JSON), ``None`` for wire captures

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def sse_chunks(body: bytes) -> list[bytes]:
    """An SSE body as one HTTP chunk per event (events end with a blank line, LF or CRLF)."""
    separator = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\n\n"
    events = body.split(separator)
    return [e + separator for e in events[:-1]] + ([events[-1]] if events[-1] else [])


def _canned(interaction: dict[str, Any]) -> Canned:
    request, response = interaction["request"], interaction["response"]
    headers = [
        (name, value)
        for name, values in response["headers"].items()
        if name.lower() not in _FRAMING
        for value in values
    ]
    if "parsed_body" in response:
        body = json.dumps(response["parsed_body"]).encode()
    else:
        text = response["body"]["string"]
        body = text.encode() if isinstance(text, str) else bytes(text)
    streaming = dict(headers).get("content-type", "").startswith("text/event-stream")
    return Canned(
        method=request["method"],
        path=urlsplit(request["uri"]).path,
        status=response["status"]["code"],
        headers=headers,
        chunks=sse_chunks(body) if streaming else [body],
        request=request.get("parsed_body"),
    )


def pydantic_ai_cassette(corpus_dir: Path, provider: str, name: str) -> list[Canned]:
    """Every interaction of one pydantic-ai corpus cassette, in order; skips if it is absent."""
    path = corpus_dir / "providers" / "pydantic-ai" / provider / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is missing")
    return [_canned(i) for i in yaml.safe_load(path.read_text())["interactions"]]


def wire_capture(corpus_dir: Path, name: str, path: str = "/v1/chat/completions") -> Canned:
    """A raw SSE capture of ``$VCR_EXT_CORPUS/wire/<name>`` as served on ``path``; skips if absent."""
    file = corpus_dir / "wire" / name
    if not file.is_file():
        pytest.skip(f"corpus file {file} is missing")
    body = file.read_bytes()
    return Canned("POST", path, 200, [("content-type", SSE)], sse_chunks(body), None)


def serve(server: FakeOpenAIServer, *responses: Canned) -> None:
    """Queue ``responses`` on ``server``, each at its method and path, in order."""
    for r in responses:
        server.enqueue(r.method, r.path, status=r.status, headers=r.headers, body=r.chunks)


def written(folder: Path) -> bytes:
    """Every byte of every file under ``folder`` (to look for credentials in)."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def records(cassette: Path) -> list[dict[str, Any]]:
    """The records of a directory cassette."""
    return [json.loads(p.read_text()) for p in sorted(cassette.glob("*.json"))]


def fake_key(prefix: str, seed: str, n: int = 40) -> str:
    """A key-shaped value, the same every run (generated, so no secret scanner flags this file)."""
    rng = random.Random(seed)
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))
