"""The request handler both of vcr_ext's HTTP servers share (the demo server and ``vcr-ext serve``).

Reading a request body (``content-length`` or chunked, trailers skipped), sending every
method to one ``_serve``, keeping the log quiet and telling the server when a
connection ends: the same for both, so written once. Each server says what ``_serve``
answers and what ``track`` keeps.
"""

from __future__ import annotations

import contextlib
import socket
from http.server import BaseHTTPRequestHandler
from typing import Protocol


class TrackingServer(Protocol):
    """A server that keeps count of its open connections (to close them when it stops)."""

    def track(self, connection: socket.socket, *, alive: bool) -> None: ...


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: every method goes to :meth:`_serve`; bodies read whole."""

    protocol_version = "HTTP/1.1"
    server: TrackingServer  # type: ignore[assignment]

    def finish(self) -> None:
        self.server.track(self.connection, alive=False)
        with contextlib.suppress(OSError):  # the client hung up
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        # Each server reports what it served its own way (or not at all, in tests).
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        raise NotImplementedError

    def _read_body(self) -> bytes:
        """The request body, de-chunked when sent chunked (trailers, if any, end with an empty line)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""
