"""An embedded OpenAI-compatible HTTP server for demos and tests.

:class:`FakeOpenAIServer` listens on ``127.0.0.1`` on a free port and answers the routes the
openai SDK uses most (chat completions, Responses, embeddings, legacy completions, models)
with bodies framed byte for byte like api.openai.com's: pretty-printed JSON for whole bodies,
``data:``/``event:`` server-sent events sent one HTTP chunk per event, and the same headers a
real response carries. Bodies are deterministic (see :mod:`vcr_ext.demo._fake_payloads`);
headers that differ on every real response (``date``, ``cf-ray``, cookies, rate-limit
counters) differ here too, so that a recorder can be tested on dropping them.

Run ``python -m vcr_ext.demo.server`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import email.utils
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from vcr_ext.demo._fake_payloads import FakeResponse, error_response, generate, request_digest
from vcr_ext.loopback_http import LoopbackHandler

__all__ = ["FakeOpenAIServer", "ReceivedRequest", "main"]

# Errors a client causes by hanging up mid-response (an SDK stream closed early, a pool reset).
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_RATE_LIMIT_REQUESTS = 10_000
_RATE_LIMIT_TOKENS = 30_000_000


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server received it.

    ``path`` includes the query string; ``headers`` has lower-cased names (repeated headers
    joined with ``", "``); ``body`` is the decoded body (chunked uploads are de-chunked).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Canned:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | Iterable[bytes]


class FakeOpenAIServer:
    """A loopback OpenAI-compatible server running in a daemon thread.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`) and point a client
    at :attr:`base_url`. Every request is appended to :attr:`requests`. Responses queued with
    :meth:`enqueue` are served before anything is generated.
    """

    requests: list[ReceivedRequest]

    def __init__(self, *, request_id_prefix: str = "req_demo") -> None:
        self.requests = []
        self._request_id_prefix = request_id_prefix
        self._lock = threading.Lock()
        self._canned: dict[tuple[str, str], collections.deque[_Canned]] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._served = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAIServer:
        """Bind ``127.0.0.1`` on a free port and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer(self)
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAIServer:{httpd.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and release the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        # Pooled client connections would otherwise keep their handler threads reading forever.
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's origin."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, what to pass as the openai client's ``base_url``."""
        return self.url + "/v1"

    # ------------------------------------------------------------------ canned responses

    def enqueue(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | Iterable[bytes] = b"",
    ) -> None:
        """Serve exactly these bytes to the next request for ``method`` and ``path``.

        ``path`` matches the request path with its query string, or without it when none
        is given here. Canned responses are served first-in first-out per (method, path)
        and take precedence over generated ones. ``headers`` are sent as given; only
        framing is added when missing: ``content-length`` for a bytes body, and
        ``transfer-encoding: chunked`` for an iterable body, whose items are then sent one
        flushed chunk each (unless ``headers`` set ``content-length``, in which case the
        items are written back to back unframed).
        """
        canned = _Canned(status, list(headers), body)
        with self._lock:
            self._canned.setdefault((method.upper(), path), collections.deque()).append(canned)

    # ------------------------------------------------------------------ used by the handler

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._served += 1

    def _take_canned(self, method: str, path: str) -> _Canned | None:
        keys = [(method, path)]
        if "?" in path:
            keys.append((method, path.split("?", 1)[0]))
        with self._lock:
            for key in keys:
                queue = self._canned.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _headers(self, response: FakeResponse, method: str, path: str, body: bytes) -> list[tuple[str, str]]:
        """Headers in the order and style api.openai.com sends them."""
        request_id = f"{self._request_id_prefix}_{request_digest(method, path, body).hex()[:32]}"
        with self._lock:
            remaining = max(_RATE_LIMIT_REQUESTS - self._served, 0)
        if response.status == 429:
            remaining = 0
        now = time.time()
        processing_ms = 120 + secrets.randbelow(600)
        cookie_expiry = _cookie_date(now + 1800)
        headers = [
            ("date", email.utils.formatdate(now, usegmt=True)),
            ("content-type", response.content_type),
        ]
        if isinstance(response.body, bytes):
            headers.append(("content-length", str(len(response.body))))
        else:
            headers.append(("transfer-encoding", "chunked"))
        headers += [
            ("connection", "keep-alive"),
            ("access-control-expose-headers", "X-Request-ID"),
            ("openai-organization", "org-demo"),
            ("openai-processing-ms", str(processing_ms)),
            ("openai-project", "proj_demo"),
            ("openai-version", "2020-10-01"),
            ("x-envoy-upstream-service-time", str(processing_ms + secrets.randbelow(40))),
            ("x-ratelimit-limit-requests", str(_RATE_LIMIT_REQUESTS)),
            ("x-ratelimit-limit-tokens", str(_RATE_LIMIT_TOKENS)),
            ("x-ratelimit-remaining-requests", str(remaining)),
            ("x-ratelimit-remaining-tokens", str(_RATE_LIMIT_TOKENS - 20 - secrets.randbelow(2000))),
            ("x-ratelimit-reset-requests", f"{(6 + secrets.randbelow(8000)) / 1000:g}s"),
            ("x-ratelimit-reset-tokens", f"{secrets.randbelow(20)}ms"),
            *response.headers,
            ("x-request-id", request_id),
            ("x-openai-proxy-wasm", "v0.1"),
            ("cf-cache-status", "DYNAMIC"),
            (
                "set-cookie",
                f"__cf_bm={secrets.token_urlsafe(32)}-{int(now)}-1.0.1.1-{secrets.token_urlsafe(48)}; "
                f"path=/; expires={cookie_expiry}; domain=.api.openai.com; HttpOnly; Secure; SameSite=None",
            ),
            ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
            ("x-content-type-options", "nosniff"),
            (
                "set-cookie",
                f"_cfuvid={secrets.token_urlsafe(32)}-{int(now * 1000)}-0.0.1.1-604800000; "
                "path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None",
            ),
            ("server", "cloudflare"),
            ("cf-ray", f"{secrets.token_hex(8)}-FRA"),
            ("alt-svc", 'h3=":443"; ma=86400'),
        ]
        return headers


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _cookie_date(timestamp: float) -> str:
    """Cloudflare's cookie ``expires`` style, ``Mon, 27-Oct-25 12:01:14 GMT``, independent of locale."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d}-{_MONTHS[t.tm_mon - 1]}-{t.tm_year % 100:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Handler threads are daemons and their sockets are shut down in stop(); joining them
    # here would only wait on clients that keep pooled connections open.
    block_on_close = False

    def __init__(self, owner: FakeOpenAIServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, connection: socket.socket, *, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # Hang-ups and stop() racing a response are expected; anything else is a bug worth seeing.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(LoopbackHandler):
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def _serve(self) -> None:
        try:
            body = self._read_body()
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            owner = self.server.owner
            owner._record(ReceivedRequest(self.command, self.path, headers, body))
            canned = owner._take_canned(self.command, self.path)
            if canned is not None:
                self._send_canned(canned)
                return
            try:
                response = generate(self.command, self.path, body)
            except Exception as exc:
                # A bug here must reach the client as a response, not as a dropped connection.
                traceback.print_exc()
                response = error_response(500, f"vcr-ext demo server bug: {exc!r}", "server_error")
            self._send(
                response.status, owner._headers(response, self.command, self.path, body), response.body
            )
        except _DISCONNECTS:
            self.close_connection = True

    def _send_canned(self, canned: _Canned) -> None:
        names = {name.lower() for name, _ in canned.headers}
        headers = list(canned.headers)
        body = canned.body
        if isinstance(body, (bytes, bytearray)):
            if "content-length" not in names and "transfer-encoding" not in names:
                headers.append(("content-length", str(len(body))))
            chunked = "transfer-encoding" in names
            self._send(canned.status, headers, [bytes(body)] if chunked else bytes(body))
            return
        if "content-length" in names:
            self._send(canned.status, headers, body, framed=False)
            return
        if "transfer-encoding" not in names:
            headers.append(("transfer-encoding", "chunked"))
        self._send(canned.status, headers, body)

    def _send(
        self,
        status: int,
        headers: Sequence[tuple[str, str]],
        body: bytes | Iterable[bytes],
        *,
        framed: bool = True,
    ) -> None:
        """Write status line, headers and body; an iterable body goes out one flushed chunk per item."""
        # send_response() would add its own Server and Date headers; ours must be the only ones.
        self.send_response_only(status)
        asked_to_close = self.close_connection
        for name, value in headers:
            if name.lower() == "connection" and asked_to_close:
                value = "close"
            self.send_header(name, value)
        self.end_headers()
        if isinstance(body, bytes):
            self.wfile.write(body)
        else:
            for piece in body:
                if not piece:
                    # An empty chunk would end the body early.
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if framed else piece)
                self.wfile.flush()
            if framed:
                self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in the foreground until interrupted; prints the ``base_url`` to use first."""
    parser = argparse.ArgumentParser(
        prog="python -m vcr_ext.demo.server",
        description="Run the vcr-ext fake OpenAI server on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--request-id-prefix", default="req_demo", help="prefix of x-request-id values")
    args = parser.parse_args(argv)
    stop = threading.Event()
    # Fails off the main thread (e.g. called from a test), where stopping is the caller's business.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAIServer(request_id_prefix=args.request_id_prefix) as server:
        print(server.base_url, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
