"""The "sdk-only" row: the openai SDK fed the recorded wire bytes from memory, with no recorder.

What a replay costs is mostly the SDK's own work (building pydantic models for every
stream chunk). Running the same calls against an ``httpx2.MockTransport`` that answers
from a dict with the exact bytes the server sent shows that cost, so that a recorder's
own overhead is roughly its time minus this row's. Not a strict floor: a recorder that
replays less than the live bytes (vcr_ext drops most headers and compacts JSON bodies)
gives the SDK less to parse, and can come out below it. The responses are captured
while recording, through the real transport, as the tools capture theirs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from .tools import Tool
from .traffic import make_client

SDK_ONLY = "sdk-only"
Key = tuple[str, str, bytes]  # method, path, request body
# Framing headers describe the wire, not the body handed to the SDK.
_FRAMING = {b"content-length", b"transfer-encoding", b"connection"}


@dataclass(frozen=True)
class _Canned:
    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes


@dataclass
class SdkOnly:
    """Responses captured by request, and the two clients that capture and serve them."""

    responses: dict[Key, _Canned] = field(default_factory=dict)

    def record_client(self, base_url: str) -> openai.OpenAI:
        transport = _Capturing(self.responses)
        return make_client(base_url, close_connections=True, http_client=httpx2.Client(transport=transport))

    def replay_client(self, base_url: str) -> openai.OpenAI:
        return make_client(base_url, http_client=httpx2.Client(transport=httpx2.MockTransport(self._serve)))

    def _serve(self, request: httpx2.Request) -> httpx2.Response:
        canned = self.responses[_key(request)]
        return httpx2.Response(canned.status, headers=canned.headers, content=canned.content)

    def tool(self) -> Tool:
        """This as a row of the tables: no cassette to open, its own clients."""
        return Tool(
            SDK_ONLY,
            "",
            lambda mode: _no_cassette,
            record_client=self.record_client,
            replay_client=self.replay_client,
            has_cassettes=False,
        )


def _no_cassette(path: str) -> AbstractContextManager[Any]:
    return nullcontext()


def _key(request: httpx2.Request) -> Key:
    return (request.method, request.url.path, request.read())


class _Capturing(httpx2.HTTPTransport):
    """The real transport, keeping a copy of every response it returns."""

    def __init__(self, store: dict[Key, _Canned]) -> None:
        super().__init__()
        self._store = store

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        content = response.read()
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _FRAMING]
        self._store[_key(request)] = _Canned(response.status_code, headers, content)
        return httpx2.Response(response.status_code, headers=headers, content=content, request=request)
