"""Reading the pydantic-ai cassettes of the shared corpus, for the provider tests.

``$VCR_EXT_CORPUS/providers/pydantic-ai/<provider>/*.yaml`` are the cassettes pydantic-ai's
own suite recorded against the live provider APIs (see the corpus's README): vcrpy YAML,
one file per pydantic-ai test, its ``interactions`` each a request and the response the
provider sent, a JSON body kept decoded under ``parsed_body`` and any other as
``body.string``. The tests read them where they lie and serve the recorded bytes from a
loopback server (:class:`vcr_ext.demo.server.FakeOpenAIServer`); nothing of the corpus is
copied into the repository.

What is the same for every provider is here: finding a folder or file (the test is skipped
when it is absent), one interaction as the server sends it again (:class:`Recording`; each
test file subclasses it with what its provider differs in: which interactions are its
calls, the headers pydantic-ai removed and the server adds back, binary bodies and their
chunking), and reading back the cassette a test wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from vcr_ext.demo.server import FakeOpenAIServer

# Framing the loopback server sets itself (the corpus holds both content-length and chunked).
FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})

R = TypeVar("R", bound="Recording")


def provider_folder(corpus_dir: Path, provider: str) -> Path:
    """The corpus folder of ``provider`` (``anthropic``, ``google``, ...); the test is skipped without it."""
    path = corpus_dir / "providers" / "pydantic-ai" / provider
    if not path.is_dir():
        pytest.skip(f"no {provider} recordings in the corpus at {path}")
    return path


def corpus_cassette(corpus_dir: Path, provider: str, name: str) -> Path:
    """One cassette of ``provider``'s folder; the test is skipped without it."""
    path = provider_folder(corpus_dir, provider) / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is missing")
    return path


def interactions(path: Path) -> list[dict[str, Any]]:
    """The recorded interactions of one cassette, as vcrpy's YAML holds them."""
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text())["interactions"]
    return loaded


def kept_headers(response: dict[str, Any]) -> list[tuple[str, str]]:
    """A recorded response's headers, one pair a value, without the framing ones."""
    return [
        (name, value)
        for name, values in response["headers"].items()
        if name.lower() not in FRAMING
        for value in values
    ]


class Recording:
    """One recorded interaction: the URI asked, and the status, headers and body bytes the provider sent."""

    def __init__(self, interaction: dict[str, Any]) -> None:
        request, response = interaction["request"], interaction["response"]
        self.uri: str = request["uri"]
        self.status: int = response["status"]["code"]
        self.headers = kept_headers(response)
        if "parsed_body" in response:
            self.body = json.dumps(response["parsed_body"]).encode()
        else:
            text = response["body"]["string"]
            self.body = text.encode() if isinstance(text, str) else bytes(text)
        self.content_type = dict(self.headers).get("content-type", "")
        self.streaming = self.content_type.startswith("text/event-stream")

    def chunks(self) -> list[bytes]:
        """The body as the server sends it: one HTTP chunk per SSE event, a JSON body whole."""
        if not self.streaming:
            return [self.body]
        events = self.body.split(b"\n\n")
        return [e + b"\n\n" for e in events[:-1]] + ([events[-1]] if events[-1] else [])

    @classmethod
    def wanted(cls, interaction: dict[str, Any]) -> bool:
        """Whether this class reads ``interaction`` (by default every one; a subclass picks its calls)."""
        return True

    @classmethod
    def read(cls: type[R], path: Path) -> list[R]:
        """The interactions of one cassette this class reads, in the cassette's order."""
        return [cls(interaction) for interaction in interactions(path) if cls.wanted(interaction)]

    @classmethod
    def of_file(cls: type[R], corpus_dir: Path, provider: str, name: str) -> list[R]:
        """:meth:`read` of ``provider``'s corpus file ``name``; the test is skipped without it."""
        return cls.read(corpus_cassette(corpus_dir, provider, name))

    @classmethod
    def of_folder(cls: type[R], corpus_dir: Path, provider: str) -> list[tuple[str, R]]:
        """:meth:`read` of every cassette of ``provider``'s folder, each labelled ``<file>#<index>``."""
        return [
            (f"{p.name}#{i}", rec)
            for p in sorted(provider_folder(corpus_dir, provider).glob("*.yaml"))
            for i, rec in enumerate(cls.read(p))
        ]

    def serve(self, server: FakeOpenAIServer, path: str) -> None:
        """Queue this response on ``server``, as the answer to a ``POST`` of ``path``."""
        server.enqueue("POST", path, status=self.status, headers=self.headers, body=self.chunks())


# ------------------------------------------------------------------ what a test wrote


def cassette_records(cassette: Path) -> list[dict[str, Any]]:
    """The records of a cassette folder the test wrote, in file order."""
    return [json.loads(p.read_text()) for p in sorted(cassette.glob("*.json"))]


def written_bytes(root: Path) -> bytes:
    """Every byte of every file below ``root``: where no credential may be."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def assert_none_written(root: Path, secrets: Iterable[str]) -> None:
    """Something was written below ``root``, and no value of ``secrets`` is in any of it."""
    data = written_bytes(root)
    assert data, f"nothing was written below {root}"
    for value in secrets:
        assert value.encode() not in data, value
