"""An OpenAI-compatible HTTP server that replays cassettes, optionally recording misses from an upstream.

:class:`ReplayServer` loads one or more cassettes with vcr_ext's own configuration
(:func:`vcr_ext.VCR`, so :class:`~vcr_ext.persister.Persister` and
:class:`~vcr_ext.cassette.IndexedCassette`) and answers each HTTP request it receives
with the recording the library itself would play for it: a ``vcr.request.Request`` is
built from the incoming request and looked up with ``can_play_response_for`` /
``play_response``, so matching (method, API route, canonical body; never host or port),
play counts and ``allow_playback_repeats`` are exactly those of ``use_cassette``.

- A recorded stream (``text/event-stream``) is sent with HTTP/1.1 chunked transfer
  encoding, one flushed chunk per server-sent event, as the API sends it.
- A request no recording answers gets OpenAI's error shape with status
  :data:`NO_MATCH_STATUS` (404: the openai SDKs raise ``NotFoundError`` and, as for
  every 4xx but 408/409/429, do not retry; ``x-should-retry: false`` says so again) and
  code :data:`NO_MATCH_CODE`, the message being vcrpy's explanation with vcr_ext's
  nearest-miss diff.
- With an ``upstream`` and a record mode that records (``once``, ``new_episodes``), a
  miss the cassette may record is forwarded upstream with the client's headers
  (``authorization`` included: it is never part of a recording), relayed to the client
  as it arrives, and saved at once through the persister (scrubbed, secret-scanned,
  written atomically under the cassette's lock), so a killed server loses nothing it
  already answered.
- :meth:`ReplayServer.close` stops accepting, lets in-flight responses finish, closes
  idle keep-alive connections and waits for every handler thread.
"""

from __future__ import annotations

import contextlib
import http
import json
import os
import re
import socket
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import httpx
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

from .cassette import IndexedCassette
from .config import VCR
from .loopback_http import LoopbackHandler
from .persister import Persister

__all__ = [
    "NO_MATCH_CODE",
    "NO_MATCH_STATUS",
    "RECORD_MODES",
    "ReplayServer",
    "ServerStats",
    "split_sse_events",
]

NO_MATCH_STATUS = 404
NO_MATCH_CODE = "vcr_ext_no_match"
UPSTREAM_ERROR_STATUS = 502
UPSTREAM_ERROR_CODE = "vcr_ext_upstream_error"
# ``all`` and ``rewrite`` replace recordings, which a save of one new recording at a time
# (what keeps a killed server from losing any) cannot express; they are left out.
RECORD_MODES = ("none", "once", "new_episodes")

# Framing belongs to each hop, not to the message: the server sets its own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
        "proxy-authorization",
        "proxy-authenticate",
    }
)
# Errors a client causes by hanging up mid-response (an SDK stream closed early, a pool reset).
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
# An SSE event ends at a blank line. Splitting only sets where chunks end (the bytes sent
# are the recording's bytes, whatever the split), so the common line endings suffice.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_UPSTREAM_TIMEOUT = httpx.Timeout(connect=30.0, read=600.0, write=600.0, pool=600.0)


def split_sse_events(body: bytes) -> list[bytes]:
    """``body`` cut after each blank line that ends an event; the pieces join back to ``body``."""
    pieces: list[bytes] = []
    start = 0
    for end in _EVENT_END.finditer(body):
        pieces.append(body[start : end.end()])
        start = end.end()
    if start < len(body):
        pieces.append(body[start:])
    return pieces


def error_body(message: str, code: str, error_type: str = "invalid_request_error") -> bytes:
    """OpenAI's error shape, which every OpenAI SDK turns into its error class with this message."""
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def _header_items(headers: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """A vcrpy response's headers (``{name: [values]}`` or ``{name: value}``) as pairs."""
    for name, values in headers.items():
        for value in [values] if isinstance(values, str) else values:
            yield name, str(value)


def _is_event_stream(headers: Iterable[tuple[str, str]]) -> bool:
    return any(
        name.lower() == "content-type" and value.split(";", 1)[0].strip().lower() == "text/event-stream"
        for name, value in headers
    )


@dataclass
class ServerStats:
    """What the server did, by outcome; read it after :meth:`ReplayServer.close`."""

    played: int = 0
    missed: int = 0
    recorded: int = 0
    # Recordings answered but not saved (a secret found, a full disk), with the reason.
    save_failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, outcome: str) -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)


class ReplayServer:
    """Serve ``paths`` (the first is the cassette recordings go to) on ``127.0.0.1:port``.

    Raises :class:`vcr_ext.CassetteFormatError` for a cassette that cannot be read, and
    ``OSError`` when the port cannot be bound. ``port=0`` picks a free port; see
    :attr:`base_url`. ``log`` receives one line per request (``None``: silent).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        record_mode: str = "none",
        upstream: str | None = None,
        allow_playback_repeats: bool = False,
        port: int = 0,
        log: TextIO | None = None,
    ) -> None:
        if not paths:
            raise ValueError("at least one cassette path is needed")
        if record_mode not in RECORD_MODES:
            raise ValueError(f"record_mode {record_mode!r}: expected one of {', '.join(RECORD_MODES)}")
        if record_mode != "none" and upstream is None:
            raise ValueError(f"record_mode {record_mode!r} records from an upstream: give one")
        self.paths = [os.path.abspath(os.fspath(p)) for p in paths]
        self.record_mode = record_mode
        self.upstream_root = _upstream_root(upstream) if upstream is not None else None
        self.stats = ServerStats()
        self._log = log
        self._log_lock = threading.Lock()
        # One recording saved at a time: each save merges what is on disk with one new record.
        self._record_lock = threading.Lock()
        self.cassette, self.persister = _load(self.paths, record_mode, allow_playback_repeats)
        self._upstream: httpx.Client | None = None
        if self.upstream_root is not None:
            self._upstream = httpx.Client(timeout=_UPSTREAM_TIMEOUT, follow_redirects=False)
            # httpx's defaults (accept-encoding, user-agent, ...) would change what the
            # client asked for; the upstream gets the client's headers only.
            self._upstream.headers.clear()
        self._httpd = _HTTPServer(self, port)
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what an OpenAI client takes as its base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def interactions(self) -> int:
        """How many recordings the server holds (loaded and recorded)."""
        return len(self.cassette)

    def start(self) -> ReplayServer:
        """Serve in a background thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"vcr-ext-serve:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop_accepting(self) -> None:
        """Stop the accept loop and close the listening socket: new connections are refused.

        Responses under way go on; :meth:`close` waits for them.
        """
        if self._thread is not None:
            self._httpd.shutdown()  # returns once serve_forever has left its loop
            self._thread.join()
            self._thread = None
        self._httpd.socket.close()

    def close(self) -> None:
        """Stop accepting, finish in-flight responses, close idle connections, release the port.

        Every recording was saved when it was answered, so nothing is left to write.
        """
        self.stop_accepting()
        self._httpd.drain()
        self._httpd.server_close()  # joins every handler thread (block_on_close)
        if self._upstream is not None:
            self._upstream.close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def note(self, line: str) -> None:
        """Write one line to the log, if there is one."""
        if self._log is None:
            return
        with self._log_lock, contextlib.suppress(OSError, ValueError):
            self._log.write(line + "\n")
            self._log.flush()

    # -- per request --------------------------------------------------------------

    def request_for(self, method: str, target: str, body: bytes) -> Request:
        """The vcrpy request an HTTP request is looked up (and recorded) as.

        Its URL is the upstream's when recording (what the recording names), else this
        server's: matching is on the API route, never on the host. No header is given:
        matching reads none, and one the cassette never holds can never be written.
        """
        root = self.upstream_root or f"http://127.0.0.1:{self.port}"
        return Request(method, root + target, body, {})

    def explain_miss(self, request: Request) -> str:
        """vcrpy's account of why nothing plays, with vcr_ext's closest-recording diff."""
        exc = CannotOverwriteExistingCassetteException(cassette=self.cassette, failed_request=request)
        # vcrpy's "How to fix" speaks of use_cassette options; the server's are its flags.
        explanation = str(exc).split("\n\nHow to fix:", 1)[0]
        if exc.reason == "already_played":
            hint = "let recordings play again with --repeat, or record the extra request"
        else:
            hint = "record it: serve with --record-mode new_episodes --upstream URL"
        return f"{explanation}\n\nvcr-ext serve: {hint}."

    def may_record(self) -> bool:
        """Whether a miss goes upstream to be recorded (vcrpy's rule for the record mode)."""
        return self._upstream is not None and not self.cassette.write_protected

    def save(self, request: Request, response: dict[str, Any]) -> str | None:
        """Add one recording to the cassette in memory and on disk; the error if the save failed.

        The persister writes only the records it is handed on top of what is on disk
        (under the cassette's file lock, atomically), so saving each new recording alone
        never writes one twice.
        """
        with self._record_lock:
            before = len(self.cassette)
            self.cassette.append(request, response)
            if len(self.cassette) == before:
                return None  # a before_record filter dropped it
            stored_request, stored_response = self.cassette.data[before]
            try:
                self.persister.save_cassette(
                    self.cassette._path, {"requests": [stored_request], "responses": [stored_response]}
                )
            except Exception as exc:  # a secret found, a full disk: the server goes on serving
                reason = f"{type(exc).__name__}: {exc}"
                with self.stats.lock:
                    self.stats.save_failures.append(reason)
                return reason
        self.stats.count("recorded")
        return None

    def forward(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> httpx.Response:
        """Send the request upstream and return the response unread (``stream=True``)."""
        assert self._upstream is not None and self.upstream_root is not None
        sent = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        upstream_request = self._upstream.build_request(
            method, self.upstream_root + target, headers=sent, content=body
        )
        return self._upstream.send(upstream_request, stream=True)


def _upstream_root(upstream: str) -> str:
    """The upstream URL this server's root maps to: ``https://api.openai.com/v1`` -> ``https://api.openai.com``.

    A client asks this server for ``/v1/chat/completions``; the upstream is given as a
    base URL as an OpenAI client takes it, with or without its ``/v1``.
    """
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"upstream {upstream!r}: expected an http:// or https:// URL")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _load(paths: Sequence[str], record_mode: str, repeats: bool) -> tuple[IndexedCassette, Persister]:
    """The cassette ``use_cassette(paths[0])`` would open, with ``paths[1:]`` loaded too but never written."""
    vcr = VCR(record_mode=record_mode)
    vcr.vcr_ext_extra_paths = tuple(paths[1:])
    config = vcr.get_merged_config(path=paths[0], allow_playback_repeats=repeats)
    # What CassetteContextDecorator.__enter__ does with the options that are not the cassette's.
    transformer = config.pop("path_transformer", None)
    for name in ("func_path_generator", "record_on_exception"):
        config.pop(name, None)
    if transformer is not None:
        config["path"] = transformer(config["path"])
    cassette = IndexedCassette.load(**config)
    persister: Persister = config["persister"]
    return cassette, persister


class _HTTPServer(ThreadingHTTPServer):
    # Handler threads are joined by server_close(), so a shutdown waits for in-flight responses.
    daemon_threads = False
    block_on_close = True

    def __init__(self, owner: ReplayServer, port: int) -> None:
        self.owner = owner
        # Connection -> whether a request on it is being answered. Idle keep-alive
        # connections are shut down on close; busy ones finish and close themselves.
        self._connections: dict[socket.socket, bool] = {}
        self._connections_lock = threading.Lock()
        self.draining = False
        super().__init__(("127.0.0.1", port), _Handler)

    def track(self, connection: socket.socket, *, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections[connection] = False
            else:
                self._connections.pop(connection, None)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Tracked here, in the accept loop, rather than in the handler's thread: once
        # shutdown() has returned, drain() knows every connection that was accepted.
        self.track(request, alive=True)
        super().process_request(request, client_address)

    def set_busy(self, connection: socket.socket, busy: bool) -> bool:
        """Mark the connection; returns whether the server is draining (then close it after this response)."""
        with self._connections_lock:
            if connection in self._connections:
                self._connections[connection] = busy
            return self.draining

    def drain(self) -> None:
        """From now on every response closes its connection; idle ones are closed now."""
        with self._connections_lock:
            self.draining = True
            idle = [c for c, busy in self._connections.items() if not busy]
        for connection in idle:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up, or drain() closing an idle connection, is not an error.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(LoopbackHandler):
    server: _HTTPServer

    def _target(self) -> str:
        """The request's path and query (an absolute-form target, as proxies get, loses its origin)."""
        if self.path.startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            return urlunsplit(("", "", parts.path or "/", parts.query, ""))
        return self.path

    # -- answering ----------------------------------------------------------------

    def _serve(self) -> None:
        owner = self.server.owner
        draining = self.server.set_busy(self.connection, True)
        if draining:
            self.close_connection = True
        try:
            body = self._read_body()
            target = self._target()
            request = owner.request_for(self.command, target, body)
            line = f"{self.command} {target}"
            if owner.cassette.can_play_response_for(request):
                response = owner.cassette.play_response(request)
                owner.stats.count("played")
                status = int(response["status"]["code"])
                owner.note(f"{line} -> {status} (played)")
                self._send_recorded(response)
            elif owner.may_record():
                self._forward_and_record(request, target, body, line)
            else:
                owner.stats.count("missed")
                owner.note(f"{line} -> {NO_MATCH_STATUS} (no recording matches)")
                message = owner.explain_miss(request)
                self._send_whole(
                    NO_MATCH_STATUS,
                    [("content-type", "application/json"), ("x-should-retry", "false")],
                    error_body(message, NO_MATCH_CODE),
                )
        except _DISCONNECTS:
            self.close_connection = True
        except Exception as exc:
            # A bug must reach the client as a response, not as a dropped connection.
            traceback.print_exc()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_whole(
                    500,
                    [("content-type", "application/json")],
                    error_body(f"vcr-ext serve: {exc!r}", "vcr_ext_server_error", "server_error"),
                )
        finally:
            if self.server.set_busy(self.connection, False):
                self.close_connection = True

    def _send_recorded(self, response: Mapping[str, Any]) -> None:
        raw = response["body"]["string"]
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw or b"")
        headers = [
            (k, v) for k, v in _header_items(response.get("headers") or {}) if k.lower() not in _HOP_BY_HOP
        ]
        status = int(response["status"]["code"])
        message = response["status"].get("message") or None
        if _is_event_stream(headers):
            self._start(status, headers, message=message, chunked=True)
            for event in split_sse_events(body):
                self._chunk(event)
            self._end_chunks()
        else:
            self._send_whole(status, headers, body, message=message)

    def _forward_and_record(self, request: Request, target: str, body: bytes, line: str) -> None:
        owner = self.server.owner
        try:
            upstream = owner.forward(self.command, target, list(self.headers.items()), body)
        except httpx.HTTPError as exc:
            owner.note(f"{line} -> {UPSTREAM_ERROR_STATUS} (upstream failed: {exc!r})")
            message = f"vcr-ext serve: the upstream {owner.upstream_root} did not answer: {exc!r}"
            self._send_whole(
                UPSTREAM_ERROR_STATUS,
                [("content-type", "application/json")],
                error_body(message, UPSTREAM_ERROR_CODE, "api_error"),
            )
            return
        with contextlib.closing(upstream):
            headers = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
            pieces: list[bytes] = []
            # Raw bytes: a compressed body reaches the client as sent, with its
            # content-encoding; the persister decodes it for the recording.
            streaming = _is_event_stream(headers)
            try:
                if streaming:
                    self._start(upstream.status_code, headers, message=upstream.reason_phrase, chunked=True)
                    for piece in upstream.iter_raw():
                        pieces.append(piece)
                        self._chunk(piece)
                else:
                    pieces = list(upstream.iter_raw())
            except httpx.HTTPError as exc:
                # The upstream broke off: a partial answer is no recording. A stream already
                # started ends without its last chunk, which the client reads as the error it is.
                owner.note(f"{line} -> upstream broke off ({exc!r}), not recorded")
                self.close_connection = True
                if not streaming:
                    message = f"vcr-ext serve: the upstream {owner.upstream_root} broke off: {exc!r}"
                    self._send_whole(
                        UPSTREAM_ERROR_STATUS,
                        [("content-type", "application/json")],
                        error_body(message, UPSTREAM_ERROR_CODE, "api_error"),
                    )
                return
            whole = b"".join(pieces)
            recorded: dict[str, Any] = {
                "status": {"code": upstream.status_code, "message": upstream.reason_phrase},
                "headers": _grouped(upstream.headers.multi_items()),
                "body": {"string": whole},
            }
        # Saved before the response ends, so a client that got the whole answer finds it on disk.
        failure = owner.save(request, recorded)
        outcome = "recorded" if failure is None else f"NOT saved: {failure}"
        owner.note(f"{line} -> {upstream.status_code} (forwarded, {outcome})")
        if failure is not None:
            print(f"vcr-ext serve: {line}: the recording was not saved: {failure}", file=sys.stderr)
        if streaming:
            self._end_chunks()
        else:
            self._send_whole(upstream.status_code, headers, whole, message=upstream.reason_phrase)

    # -- writing ------------------------------------------------------------------

    def _start(
        self, status: int, headers: Sequence[tuple[str, str]], *, message: str | None = None, chunked: bool
    ) -> None:
        if message is None:
            with contextlib.suppress(ValueError):
                message = http.HTTPStatus(status).phrase
        # send_response() would add its own Server and Date headers; the recording's are the answer.
        self.send_response_only(status, message)
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("transfer-encoding", "chunked")
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()

    def _send_whole(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes, *, message: str | None = None
    ) -> None:
        self._start(status, [*headers, ("content-length", str(len(body)))], message=message, chunked=False)
        self.wfile.write(body)
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        if data:  # an empty chunk would end the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _grouped(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Header pairs as vcrpy's response dict holds them, ``{name: [values]}``."""
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    return grouped
