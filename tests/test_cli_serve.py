"""``vcr-ext serve``: cassettes replayed over loopback HTTP to the openai SDKs (Python, Node) and curl.

Every cassette is recorded in the test through the real ``openai.OpenAI`` client with
``vcr_ext.VCR(record_mode="once")`` against :class:`FakeOpenAIServer`, or against the
corpus's captured OpenAI streams. The server runs as ``python -m vcr_ext.cli.main serve``
in a subprocess; the tests synchronise on its output (the URL line on stdout, log lines
on stderr) and on process exit, never on sleeps.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import openai
import pytest

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.persister import Persister
from vcr_ext.replay_server import NO_MATCH_CODE, NO_MATCH_STATUS, split_sse_events
from vcr_ext.secrets import SecretScanner

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "tests" / "node"
MODEL = "gpt-4o-mini"
QUESTION = "What is a cassette?"
MISSING = "What is a gramophone?"
# Generous upper bounds for a process to answer; waits end on output or exit, not on these.
DEADLINE = 60.0

# The client process: the openai SDK against OPENAI_BASE_URL, as an application would run.
PY_CLIENT = r"""
import json, sys
import openai

spec = json.loads(sys.argv[1])
client = openai.OpenAI()  # OPENAI_BASE_URL, OPENAI_API_KEY from the environment; default retries
messages = spec["messages"]
completion = client.chat.completions.create(model=spec["model"], messages=messages)
stream = client.chat.completions.create(model=spec["model"], messages=messages, stream=True)
chunks = [c.to_dict() for c in stream]
error = None
if spec.get("missing"):
    try:
        client.chat.completions.create(
            model=spec["model"], messages=[{"role": "user", "content": spec["missing"]}]
        )
    except openai.APIStatusError as exc:
        error = {
            "class": type(exc).__name__,
            "status": exc.status_code,
            "code": exc.code,
            "type": exc.type,
            "message": exc.body["message"] if isinstance(exc.body, dict) else str(exc),
        }
print(json.dumps({"completion": completion.to_dict(), "chunks": chunks, "error": error}))
"""


# -- the server process -----------------------------------------------------------------


class Serve:
    """``vcr-ext serve`` in a subprocess: its URL, its stderr lines as they come, its exit."""

    def __init__(self, *args: str | os.PathLike[str]) -> None:
        cmd = [sys.executable, "-m", "vcr_ext.cli.main", "serve", *(os.fspath(a) for a in args)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.lines: list[str] = []
        self.signalled = False
        self._stderr: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr), daemon=True)
        ]
        self._readers[0].start()
        self.url = self._first_stdout_line()

    @staticmethod
    def _pump(stream: IO[str] | None, into: queue.Queue[str | None]) -> None:
        assert stream is not None
        for line in stream:
            into.put(line.rstrip("\n"))
        into.put(None)

    def _first_stdout_line(self) -> str:
        stdout = self.proc.stdout
        assert stdout is not None
        # readline returns "" if the process exits before printing: then report its stderr.
        got: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: got.put(stdout.readline()), daemon=True).start()
        try:
            line = got.get(timeout=DEADLINE)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("vcr-ext serve printed no URL") from None
        if not line:
            code = self.proc.wait(timeout=DEADLINE)
            raise AssertionError(f"vcr-ext serve exited {code} before listening:\n{self.stderr_text()}")
        return line.strip()

    def _next_line(self) -> str | None:
        """The next stderr line, ``None`` once stderr has ended."""
        try:
            line = self._stderr.get(timeout=DEADLINE)
        except queue.Empty:
            raise AssertionError("vcr-ext serve went quiet:\n" + "\n".join(self.lines)) from None
        if line is None:
            self._stderr.put(None)  # stay at the end for later calls
        else:
            self.lines.append(line)
        return line

    def wait_for(self, text: str) -> str:
        """Block until a stderr line contains ``text``; returns it."""
        for seen in self.lines:
            if text in seen:
                return seen
        while (line := self._next_line()) is not None:
            if text in line:
                return line
        raise AssertionError(f"stderr ended without {text!r}:\n" + "\n".join(self.lines))

    def stderr_text(self) -> str:
        """All of stderr; call once the process has exited (it reads to the end)."""
        while self._next_line() is not None:
            pass
        return "\n".join(self.lines)

    def send(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` once (a second SIGTERM or SIGINT would stop the server at once)."""
        self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the server, wait for it to exit; returns its exit code and whole stderr."""
        if not self.signalled:
            self.send(sig)
        code = self.proc.wait(timeout=DEADLINE)
        return code, self.stderr_text()

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``vcr-ext serve ...`` expected to exit by itself (bad arguments, bad cassettes)."""
    cmd = [sys.executable, "-m", "vcr_ext.cli.main", "serve", *(os.fspath(a) for a in args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=DEADLINE, cwd=REPO, check=False)


def py_client(base_url: str, spec: dict[str, Any], api_key: str = "sk-test") -> dict[str, Any]:
    """Run the openai Python SDK in its own process against ``base_url``; its JSON results."""
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": api_key}
    proc = subprocess.run(
        [sys.executable, "-c", PY_CLIENT, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=DEADLINE,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def curl(*args: str) -> bytes:
    proc = subprocess.run(["curl", *args], capture_output=True, timeout=DEADLINE, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def dechunk(raw: bytes) -> list[bytes]:
    """The chunks of an HTTP/1.1 chunked body (``curl --raw`` output), the final empty one excluded."""
    chunks: list[bytes] = []
    rest = raw
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            assert rest == b"\r\n", f"bytes after the last chunk: {rest!r}"
            return chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


# -- recording the cassettes ------------------------------------------------------------


def spec(missing: str | None = None) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "missing": missing}


def _volatile_free(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what a recording normalizes (``id``, ``created``)."""
    return {k: v for k, v in obj.items() if k not in ("id", "created")}


def same_answer(a: dict[str, Any], b: dict[str, Any]) -> None:
    """The two client results hold the same completion and the same chunks, ids and timestamps aside."""
    assert _volatile_free(a["completion"]) == _volatile_free(b["completion"])
    assert [_volatile_free(c) for c in a["chunks"]] == [_volatile_free(c) for c in b["chunks"]]


@dataclass(frozen=True)
class Recorded:
    cassette: Path
    live: dict[str, Any]  # what the SDK got from the live server while it was recorded


def record_chat(cassette: Path, **vcr_options: Any) -> dict[str, Any]:
    """Record a non-streamed and a streamed chat completion through the openai SDK; the live results."""
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        messages: Any = [{"role": "user", "content": QUESTION}]
        with vcr_ext.VCR(record_mode="once", **vcr_options).use_cassette(os.fspath(cassette)):
            completion = client.chat.completions.create(model=MODEL, messages=messages)
            chunks = [
                c.to_dict()
                for c in client.chat.completions.create(model=MODEL, messages=messages, stream=True)
            ]
    return {"completion": completion.to_dict(), "chunks": chunks}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    cassette = tmp_path_factory.mktemp("serve") / "chat"
    return Recorded(cassette, record_chat(cassette))


# -- replay to the SDKs -----------------------------------------------------------------


def test_python_sdk_replays_what_it_got_live(recorded: Recorded) -> None:
    with Serve(recorded.cassette, "--port", "0") as serve:
        assert serve.url.startswith("http://127.0.0.1:") and serve.url.endswith("/v1")
        got = py_client(serve.url, spec(missing=MISSING))
        code, log = serve.stop()
    assert code == 0, log
    same_answer(got, recorded.live)
    assert got["completion"]["choices"][0]["message"]["content"]
    assert len(got["chunks"]) > 2
    error = got["error"]
    assert error["class"] == "NotFoundError" and error["status"] == NO_MATCH_STATUS
    assert error["code"] == NO_MATCH_CODE and error["type"] == "invalid_request_error"
    # The closest recording's difference, in vcr_ext's words.
    assert "messages[0].content" in error["message"]
    assert QUESTION in error["message"] and MISSING in error["message"]
    # The SDK did not retry: one miss, and the two recordings each played once.
    assert log.count("no recording matches") == 1, log
    assert "2 played, 0 recorded, 1 missed" in log


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "openai").is_dir(),
    reason="tests/node/node_modules is missing: run npm ci --prefix tests/node",
)
def test_node_sdk_replays_what_python_got_live(recorded: Recorded) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    with Serve(recorded.cassette, "--port", "0") as serve:
        env["OPENAI_BASE_URL"] = serve.url
        proc = subprocess.run(
            ["node", os.fspath(NODE_DIR / "replay.mjs"), json.dumps(spec(missing=MISSING))],
            capture_output=True,
            text=True,
            env=env,
            timeout=DEADLINE,
            check=False,
        )
        code, log = serve.stop()
    assert proc.returncode == 0, proc.stderr
    assert code == 0, log
    got = json.loads(proc.stdout)
    same_answer(got, recorded.live)
    error = got["error"]
    assert error["class"] == "NotFoundError" and error["status"] == NO_MATCH_STATUS
    assert error["code"] == NO_MATCH_CODE
    assert "messages[0].content" in error["message"]
    assert log.count("no recording matches") == 1, log


@needs_curl
def test_curl_sees_sse_framing_chunk_per_event(recorded: Recorded) -> None:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "stream": True})
    with Serve(recorded.cassette, "--port", "0", "--repeat") as serve:
        url = serve.url + "/chat/completions"
        args = ["-sN", url, "-H", "content-type: application/json", "-d", body]
        plain = curl(*args)
        raw = curl("--raw", *args)
        code, log = serve.stop()
    assert code == 0, log
    assert plain.startswith(b"data: {") and plain.endswith(b"data: [DONE]\n\n")
    events = plain.split(b"\n\n")[:-1]
    assert all(e.startswith(b"data: ") for e in events)
    assert len(events) == len(recorded.live["chunks"]) + 1
    # One HTTP chunk per event, and nothing but the recording's bytes.
    chunks = dechunk(raw)
    assert b"".join(chunks) == plain
    assert chunks == [e + b"\n\n" for e in events]


@needs_curl
def test_unmatched_request_error_shape(recorded: Recorded) -> None:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": MISSING}]})
    with Serve(recorded.cassette, "--port", "0") as serve:
        out = curl("-s", "-D", "-", serve.url + "/chat/completions", "-d", body)
        serve.stop()
    head, _, payload = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ")
    assert b"x-should-retry: false" in head.lower()
    error = json.loads(payload)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, NO_MATCH_CODE)
    assert "Closest recorded requests" in error["message"]
    assert "first difference at messages[0].content" in error["message"]


# -- the corpus's captured OpenAI streams, byte for byte ---------------------------------


@needs_curl
@pytest.mark.parametrize(
    ("wire", "route"),
    [
        ("chat_stream_openai_2025-10-27_r4u.sse", "/v1/chat/completions"),
        ("responses_stream_openai_2025-10-27_r4u.sse", "/v1/responses"),
    ],
)
def test_captured_openai_stream_replays_byte_for_byte(
    corpus_dir: Path, tmp_path: Path, wire: str, route: str
) -> None:
    captured = (corpus_dir / "wire" / wire).read_bytes()
    cassette = tmp_path / "wire"
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST",
            route,
            headers=[("content-type", "text/event-stream; charset=utf-8")],
            body=split_sse_events(captured),
        )
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with vcr_ext.VCR(record_mode="once").use_cassette(os.fspath(cassette)):
            if route == "/v1/responses":
                list(client.responses.create(model="gpt-3.5-turbo-0125", input="Hi", stream=True))
            else:
                list(
                    client.chat.completions.create(
                        model="gpt-3.5-turbo-0125", messages=[{"role": "user", "content": "Hi"}], stream=True
                    )
                )
        sent = server.requests[-1].body  # what the SDK sent, sent again by curl
    with Serve(cassette, "--port", "0") as serve:
        out = curl(
            "-sN",
            serve.url + route.removeprefix("/v1"),
            "-H",
            "content-type: application/json",
            "--data-binary",
            sent.decode(),
        )
        code, log = serve.stop()
    assert code == 0, log
    # Byte for byte, but for what a recording normalizes: a chat completion's id and created.
    recorded_id = re.search(rb'"id":"(rec-[0-9a-f]+)"', out)
    if recorded_id is not None:
        captured = re.sub(rb'"id":"chatcmpl-[A-Za-z0-9]+"', b'"id":"' + recorded_id[1] + b'"', captured)
        captured = re.sub(rb'"created":[0-9]+', b'"created":0', captured)
    else:
        assert route == "/v1/responses"  # Responses ids and timestamps are kept as sent
    assert out == captured


# -- other cassette kinds ---------------------------------------------------------------


def test_several_paths_and_a_one_file_cassette(recorded: Recorded, tmp_path: Path) -> None:
    one_file = tmp_path / "embeddings.json"
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with vcr_ext.VCR(record_mode="once").use_cassette(os.fspath(one_file)):
            live = client.embeddings.create(model="text-embedding-3-small", input="cassette")
    assert one_file.is_file()
    with Serve(recorded.cassette, one_file, "--port", "0") as serve:
        client = openai.OpenAI(base_url=serve.url, api_key="sk-test", max_retries=0)
        replayed = client.embeddings.create(model="text-embedding-3-small", input="cassette")
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": QUESTION}]
        )
        code, log = serve.stop()
    assert code == 0, log
    assert replayed.data[0].embedding == live.data[0].embedding
    assert (
        completion.choices[0].message.content
        == recorded.live["completion"]["choices"][0]["message"]["content"]
    )


def _a_llamastack_chat_stream(recordings: Path) -> tuple[dict[str, Any], int]:
    for file in sorted(recordings.glob("*.json")):
        rec = json.loads(file.read_text())
        request, response = rec.get("request", {}), rec.get("response", {})
        if (
            request.get("endpoint") == "/v1/chat/completions"
            and response.get("is_streaming")
            and not rec.get("id_normalization_mapping")
            and all(isinstance(c, dict) and "." in c.get("__type__", "") for c in response["body"])
        ):
            return request["body"], len(response["body"])
    pytest.skip(f"no streamed chat completion recording in {recordings}")


def test_llamastack_recordings_folder(corpus_dir: Path) -> None:
    recordings = corpus_dir / "llama-stack-2025-10" / "inference" / "recordings"
    if not recordings.is_dir():
        pytest.skip(f"{recordings} is not in the corpus")
    body, chunk_count = _a_llamastack_chat_stream(recordings)
    with Serve(recordings, "--port", "0") as serve:
        with httpx.stream("POST", serve.url + "/chat/completions", json=body, timeout=DEADLINE) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            text = reply.read().decode()
        code, log = serve.stop()
    assert code == 0, log
    events = [e for e in text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert len(events) == chunk_count + 1


# -- recording proxy --------------------------------------------------------------------


def fake_key() -> str:
    """A key in the form of a real OpenAI project key, which the secret scanner would stop."""
    key = "sk-proj-" + secrets.token_urlsafe(48).replace("-", "a").replace("_", "b")
    assert SecretScanner().find({"value": key}) is not None
    return key


def records_on_disk(cassette: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(cassette.glob("*.json"))]


def test_recording_proxy_then_replay_without_upstream(tmp_path: Path) -> None:
    cassette = tmp_path / "proxied"
    key = fake_key()
    upstream = FakeOpenAIServer().start()
    try:
        with Serve(
            cassette, "--port", "0", "--record-mode", "once", "--upstream", upstream.base_url
        ) as serve:
            proxied = py_client(serve.url, spec(), api_key=key)
            code, log = serve.stop()
        assert code == 0, log
        assert "0 played, 2 recorded, 0 missed" in log
        # Forwarded with the client's credentials...
        assert [r.headers.get("authorization") for r in upstream.requests] == [f"Bearer {key}"] * 2
    finally:
        upstream.stop()
    # ... which never reached the disk; the saved records pass the secret scan.
    records = records_on_disk(cassette)
    assert len(records) == 2
    for file in cassette.iterdir():
        text = file.read_text()
        assert key not in text and "authorization" not in text.lower()
    assert SecretScanner().find(records) is None
    assert all(r["request"]["headers"] == {} for r in records)
    assert {r["response"]["is_streaming"] for r in records} == {True, False}
    # The upstream is gone: a replay-only server answers the same.
    with Serve(cassette, "--port", "0", "--record-mode", "none") as serve:
        replayed = py_client(serve.url, spec())
        code, log = serve.stop()
    assert code == 0, log
    same_answer(replayed, proxied)


def _slow_stream(first: bytes, rest: Sequence[bytes], release: threading.Event) -> Iterator[bytes]:
    yield first
    # The upstream holds the rest back until the test has stopped the server.
    release.wait(DEADLINE)
    yield from rest


def test_sigterm_during_a_recorded_stream_finishes_it_and_saves(tmp_path: Path) -> None:
    cassette = tmp_path / "in-flight"
    events = [
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"'
        + word
        + b'"},"finish_reason":null}]}\n\n'
        for word in (b"Hello", b" there", b"!")
    ] + [b"data: [DONE]\n\n"]
    release = threading.Event()
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    with FakeOpenAIServer() as upstream:
        upstream.enqueue(
            "POST",
            "/v1/chat/completions",
            headers=[("content-type", "text/event-stream; charset=utf-8")],
            body=_slow_stream(events[0], events[1:], release),
        )
        with Serve(
            cassette, "--port", "0", "--record-mode", "once", "--upstream", upstream.base_url
        ) as serve:
            with httpx.stream(
                "POST",
                serve.url + "/chat/completions",
                content=body,
                headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
                timeout=DEADLINE,
            ) as reply:
                pieces = reply.iter_raw()
                received = [next(pieces)]  # the first event has been relayed: the stream is in flight
                assert received == [events[0]]
                serve.send(signal.SIGTERM)
                serve.wait_for("stopping")
                # Stopped accepting: a new connection is refused while this response goes on.
                with pytest.raises(httpx.ConnectError):
                    httpx.get(serve.url + "/models", timeout=DEADLINE)
                release.set()
                received += list(pieces)
            code, log = serve.stop()
    assert code == 0, log
    assert b"".join(received) == b"".join(events)
    assert "1 recorded" in log
    # The cassette is whole: the persister loads it, and it holds the full stream.
    requests, _ = Persister().load_cassette(cassette)
    assert len(requests) == 1
    (rec,) = records_on_disk(cassette)
    assert [c["__data__"]["choices"][0]["delta"]["content"] for c in rec["response"]["body"]] == [
        "Hello",
        " there",
        "!",
    ]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sigint_when_idle_exits_0(recorded: Recorded) -> None:
    # An idle keep-alive connection must not hold the shutdown up.
    with Serve(recorded.cassette, "--port", "0") as serve, httpx.Client(timeout=DEADLINE) as client:
        assert client.get(serve.url + "/models").status_code == NO_MATCH_STATUS
        code, log = serve.stop(signal.SIGINT)
    assert code == 0, log


# -- exit code 2 ------------------------------------------------------------------------


def test_unreadable_cassette_exits_2_naming_file_record_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "request": {"method": "POST", "url": "http://x/v1/chat/completions", "body": {}},
                    "response": {"body": {}, "is_streaming": "yes"},
                }
            ]
        )
    )
    proc = run_cli(bad, "--port", "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert str(bad) in proc.stderr and "record 0" in proc.stderr and "response.is_streaming" in proc.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "0"], "no such cassette"),
        (["--port", "0", "--upstream", "http://127.0.0.1:9/v1"], "--upstream is used only when recording"),
        (["--port", "0", "--record-mode", "once"], "add --upstream URL"),
        (["--port", "0", "--record-mode", "once", "--upstream", "ftp://x"], "expected an http"),
        (["--port", "70000"], "expected 0 to 65535"),
        (["--record-mode", "all"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    proc = run_cli(tmp_path / "nowhere", *args)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
