"""Parallel recording: pytest-xdist workers and threads recording one cassette lose nothing.

Every run is counted against what the loopback upstream really served: each request it
answered must be on disk exactly once as a recording, every file whole, and a replay
with the upstream gone must give each test what it saw live.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ask_chat

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer

WORKERS = 4
TESTS = 16

# Each test asks its own question; with REPEAT set, test 0 asks its question twice (a retry).
# With STALE set, test 0 also asks a question no later run asks. Each writes what it got to
# out/<name>.json in a recording run, and compares with it in a replay run.
SUITE = """
import json
import os
from pathlib import Path

import httpx
import pytest

COUNT = int(os.environ.get("COUNT", "16"))
OUT = Path(os.environ["OUT_DIR"])


def ask(question):
    reply = httpx.post(
        os.environ["BASE_URL"] + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        timeout=30,
    )
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]


@pytest.mark.vcr
@pytest.mark.parametrize("i", range(16))
def testask_chat(i):
    if i >= COUNT:
        pytest.skip("not in this run")
    answers = [ask(f"question {i}")]
    if i == 0 and os.environ.get("REPEAT"):
        answers.append(ask("question 0"))
    if i == 0 and os.environ.get("STALE"):
        answers.append(ask("a question no later run asks"))
    out = OUT / f"{i}.json"
    if os.environ.get("REPLAY"):
        assert json.loads(out.read_text()) == answers
    else:
        out.write_text(json.dumps(answers))
"""

CONFTEST = """
import os
import pytest

import vcr_ext


@pytest.fixture
def default_cassette_name(request):
    return "shared" if os.environ.get("SHARED") else request.node.name


@pytest.fixture
def vcr_config():
    return vcr_ext.vcr_config(layout=os.environ.get("LAYOUT", "directory"))
"""


@pytest.fixture
def suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[pytest.Pytester, FakeOpenAIServer]]:
    pytester.makeini("[pytest]\nvcr_ext = true\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_par=SUITE)
    out = pytester.path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT_DIR", str(out))
    for name in ("COUNT", "REPEAT", "STALE", "REPLAY", "SHARED", "LAYOUT"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("BASE_URL", server.base_url)
        yield pytester, server


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cassetter", "-p", "no:cacheprovider", "-n", str(WORKERS), *args
    )


def _recordings(root: Path) -> list[dict[str, object]]:
    """Every record of every cassette under ``root``; each file must be whole JSON."""
    records: list[dict[str, object]] = []
    for file in sorted(root.rglob("*.json")):
        doc = json.loads(file.read_text())  # a half-written file fails here
        records.extend(doc if isinstance(doc, list) else [doc])
    return records


def _questions(records: list[dict[str, object]]) -> list[str]:
    return sorted(rec["request"]["body"]["messages"][0]["content"] for rec in records)  # type: ignore[index]


def _served(server: FakeOpenAIServer) -> list[str]:
    return sorted(json.loads(r.body)["messages"][0]["content"] for r in server.requests)


def _replay(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, expected_passed: int) -> None:
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9/v1")  # the upstream is gone
    monkeypatch.setenv("REPLAY", "1")
    monkeypatch.delenv("COUNT", raising=False)
    _run(pytester, "--record-mode=none", "--block-network").assert_outcomes(passed=expected_passed)


@pytest.mark.parametrize(
    ("shared", "layout"),
    [(True, "directory"), (True, "file"), (False, "directory")],
    ids=["shared-directory", "shared-file", "own-directory"],
)
def test_once_records_every_request_of_every_worker(
    suite: tuple[pytest.Pytester, FakeOpenAIServer],
    monkeypatch: pytest.MonkeyPatch,
    shared: bool,
    layout: str,
) -> None:
    pytester, server = suite
    if shared:
        monkeypatch.setenv("SHARED", "1")
    monkeypatch.setenv("LAYOUT", layout)
    monkeypatch.setenv("REPEAT", "1")
    # A new shared cassette being recorded by other workers must not make `once` refuse.
    _run(pytester, "--record-mode=once").assert_outcomes(passed=TESTS)
    assert len(server.requests) == TESTS + 1
    records = _recordings(pytester.path / "cassettes")
    assert _questions(records) == _served(server)
    if shared:
        files = list((pytester.path / "cassettes" / "test_par").iterdir())
        assert [f.name for f in files] == (["shared"] if layout == "directory" else ["shared.json"])
    _replay(pytester, monkeypatch, TESTS)


def test_once_refuses_a_new_request_for_a_cassette_of_an_earlier_run(
    suite: tuple[pytest.Pytester, FakeOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, server = suite
    monkeypatch.setenv("SHARED", "1")
    monkeypatch.setenv("COUNT", "8")
    _run(pytester, "--record-mode=once").assert_outcomes(passed=8, skipped=8)
    monkeypatch.setenv("COUNT", "16")
    result = _run(pytester, "--record-mode=once")
    # The cassette existed before this run: `once` replays it and refuses the 8 new requests.
    result.assert_outcomes(passed=8, failed=8)
    assert len(server.requests) == 8
    assert "CannotOverwriteExistingCassetteException" in result.stdout.str()


def test_new_episodes_adds_every_worker_s_requests(
    suite: tuple[pytest.Pytester, FakeOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, server = suite
    monkeypatch.setenv("SHARED", "1")
    monkeypatch.setenv("COUNT", "8")
    _run(pytester, "--record-mode=once").assert_outcomes(passed=8, skipped=8)
    first = _served(server)
    monkeypatch.setenv("COUNT", "16")
    _run(pytester, "--record-mode=new_episodes").assert_outcomes(passed=TESTS)
    served = _served(server)
    # The 8 recorded requests replayed; only the 8 new ones reached the upstream.
    assert len(served) == TESTS and first == sorted(f"question {i}" for i in range(8))
    assert _questions(_recordings(pytester.path / "cassettes")) == served
    _replay(pytester, monkeypatch, TESTS)


def _rerecord_after_a_stale_request(
    pytester: pytest.Pytester, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Record the shared cassette with one request no later run makes, then run ``mode``."""
    monkeypatch.setenv("SHARED", "1")
    monkeypatch.setenv("STALE", "1")
    _run(pytester, "--record-mode=once").assert_outcomes(passed=TESTS)
    monkeypatch.delenv("STALE")
    server.requests.clear()
    _run(pytester, f"--record-mode={mode}").assert_outcomes(passed=TESTS)
    assert len(server.requests) == TESTS


def test_all_replaces_what_it_re_records_and_keeps_the_rest(
    suite: tuple[pytest.Pytester, FakeOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, server = suite
    _rerecord_after_a_stale_request(pytester, server, monkeypatch, "all")
    # Each re-recorded request replaced its old recording (no duplicates); the request no
    # test made this time keeps its recording, as in vcrpy.
    assert _questions(_recordings(pytester.path / "cassettes")) == sorted(
        [*_served(server), "a question no later run asks"]
    )
    _replay(pytester, monkeypatch, TESTS)


def test_rewrite_replaces_the_old_recordings_and_keeps_every_worker_s_new_ones(
    suite: tuple[pytest.Pytester, FakeOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, server = suite
    _rerecord_after_a_stale_request(pytester, server, monkeypatch, "rewrite")
    # Only this run's recordings: the stale one is gone, and no worker deleted another's.
    assert _questions(_recordings(pytester.path / "cassettes")) == _served(server)
    _replay(pytester, monkeypatch, TESTS)


# -- threads ---------------------------------------------------------------------------




def _in_threads(count: int, work: list[str], base_url: str) -> list[str]:
    """Ask every question of ``work`` from ``count`` threads that start together."""
    barrier = threading.Barrier(count)
    answers: list[str] = [""] * len(work)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        barrier.wait()
        try:
            for j in range(k, len(work), count):
                answers[j] = ask_chat(base_url, work[j])
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return answers


def test_threads_sharing_a_cassette_play_each_recording_once_and_record_the_rest(tmp_path: Path) -> None:
    cassette = tmp_path / "threads"
    my_vcr = vcr_ext.VCR(record_mode="once")
    with FakeOpenAIServer() as server:
        with my_vcr.use_cassette(str(cassette)):
            # Eight recordings of one request (a retried call), recorded one after another.
            recorded = [ask_chat(server.base_url, "same question") for _ in range(8)]
        served_before = len(server.requests)
        with vcr_ext.VCR(record_mode="new_episodes").use_cassette(str(cassette)):
            work = ["same question"] * 8 + [f"new {i}" for i in range(16)]
            replayed = _in_threads(8, work, server.base_url)
        # No repeat of the recorded request went upstream: each thread got one recording.
        assert len(server.requests) - served_before == 16
        assert sorted(replayed[:8]) == sorted(recorded)
    assert len(_recordings(cassette)) == 24
    with vcr_ext.VCR(record_mode="none").use_cassette(str(cassette)):
        again = _in_threads(8, [f"new {i}" for i in range(16)], "http://127.0.0.1:9/v1")
    assert again == replayed[8:]


def test_two_threads_checking_the_same_recording_at_once_do_not_both_take_it(tmp_path: Path) -> None:
    """vcrpy's stubs ask ``can_play_response_for`` and then ``play_response``: the interleaving
    A asks, B asks, A plays, B plays must not hand B a recording A already took."""
    import copy

    cassette = tmp_path / "one"
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        ask_chat(server.base_url, "only once")
    with vcr_ext.VCR(record_mode="new_episodes").use_cassette(str(cassette)) as played:
        recorded = played.requests[0]
        a_asked, b_asked, a_played = threading.Event(), threading.Event(), threading.Event()
        outcome: dict[str, object] = {}

        def thread_a() -> None:
            request = copy.deepcopy(recorded)
            outcome["a can play"] = played.can_play_response_for(request)
            a_asked.set()
            b_asked.wait()
            outcome["a got"] = played.play_response(request)
            a_played.set()

        def thread_b() -> None:
            request = copy.deepcopy(recorded)
            a_asked.wait()
            outcome["b can play"] = played.can_play_response_for(request)
            b_asked.set()
            a_played.wait()

        threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # A took the one recording; B is told to record instead of failing in play_response.
    assert outcome["a can play"] is True
    assert outcome["b can play"] is False
    assert isinstance(outcome["a got"], dict)
