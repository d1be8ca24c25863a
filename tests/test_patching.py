"""vcr_ext's patch builder patches what vcrpy's does and leaves every library as vcrpy would."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from vcr.cassette import Cassette
from vcr.patch import CassettePatcherBuilder

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.patching import PatcherBuilder, SetAttribute


def _targets(builder: Any) -> list[tuple[int, str]]:
    """(id of the patched object, attribute) of every patch a builder makes, in order."""
    out = []
    for patcher in builder.build():
        if isinstance(patcher, SetAttribute):
            out.append((id(patcher._obj), patcher._name))
        elif hasattr(patcher, "attribute"):  # mock's _patch
            out.append((id(patcher.getter()), patcher.attribute))
        else:  # vcrpy's ConnectionRemover
            out.append((0, type(patcher).__name__))
    return out


def _state() -> dict[str, Any]:
    import http.client

    import urllib3.connectionpool

    objects = {
        "http.client": http.client,
        "urllib3.connectionpool": urllib3.connectionpool,
        "HTTPConnectionPool": urllib3.connectionpool.HTTPConnectionPool,
        "httpx.HTTPTransport": httpx.HTTPTransport,
        "httpx.AsyncHTTPTransport": httpx.AsyncHTTPTransport,
        "httpx.MockTransport": httpx.MockTransport,
    }
    return {name: dict(vars(obj)) for name, obj in objects.items()}


def test_the_builder_patches_every_target_vcrpy_patches(tmp_path: Path) -> None:
    cassette = Cassette(str(tmp_path / "c"))
    assert _targets(PatcherBuilder(cassette)) == _targets(CassettePatcherBuilder(cassette))


def test_leaving_a_cassette_restores_every_library_exactly(tmp_path: Path) -> None:
    before = _state()
    modules = set(sys.modules)
    with vcr_ext.VCR(record_mode="all").use_cassette(str(tmp_path / "c")):
        # Patched: the transport's method is now the cassette's own attribute.
        original = before["httpx.HTTPTransport"]["handle_request"]
        assert vars(httpx.HTTPTransport)["handle_request"] is not original
    after = _state()
    assert after.keys() == before.keys()
    for name in before:
        assert after[name].keys() == before[name].keys(), name
        changed = [k for k in before[name] if after[name][k] is not before[name][k]]
        assert changed == [], (name, changed)
    # No library the build found missing is left blocked in sys.modules.
    assert [m for m in set(sys.modules) - modules if sys.modules[m] is None] == []


def test_an_inherited_method_is_deleted_again_not_copied_onto_the_class() -> None:
    class Base:
        def send(self) -> str:
            return "base"

    class Child(Base):
        pass

    with SetAttribute(Child, "send", lambda self: "patched"):
        assert Child().send() == "patched"
    assert "send" not in vars(Child)
    assert Child().send() == "base"


FAKE_HTTPLIB2 = """
import http.client

class HTTPConnectionWithTimeout(http.client.HTTPConnection):
    pass

class HTTPSConnectionWithTimeout(http.client.HTTPSConnection):
    pass

SCHEME_TO_CONNECTION = {"http": HTTPConnectionWithTimeout, "https": HTTPSConnectionWithTimeout}
"""


def test_a_library_missing_at_one_build_is_patched_once_it_can_be_imported(tmp_path: Path) -> None:
    if "httplib2" in sys.modules or importlib.util.find_spec("httplib2") is not None:
        pytest.skip("httplib2 is installed here: this test needs it missing")
    cassette = Cassette(str(tmp_path / "c"))
    assert all(name != "HTTPConnectionWithTimeout" for _, name in _targets(PatcherBuilder(cassette)))
    # Missing stays an ordinary import error after the build, not a blocked name.
    assert "httplib2" not in sys.modules
    with pytest.raises(ModuleNotFoundError, match="No module named 'httplib2'"):
        importlib.import_module("httplib2")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "httplib2.py").write_text(FAKE_HTTPLIB2)
    sys.path.insert(0, str(tmp_path / "lib"))
    try:
        patched = [name for _, name in _targets(PatcherBuilder(cassette))]
        assert "HTTPConnectionWithTimeout" in patched
        assert patched == [name for _, name in _targets(CassettePatcherBuilder(cassette))]
    finally:
        sys.path.remove(str(tmp_path / "lib"))
        for name in ("httplib2", "vcr.stubs.httplib2_stubs"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("library", ["httpx", "requests"])
def test_replay_through_the_cheaper_patches_needs_no_server(tmp_path: Path, library: str) -> None:
    cassette = str(tmp_path / "c")
    body = {"model": "m", "messages": [{"role": "user", "content": library}]}

    def call(base: str) -> Any:
        if library == "httpx":
            return httpx.post(f"{base}/chat/completions", json=body, timeout=10).json()
        return requests.post(f"{base}/chat/completions", json=body, timeout=10).json()

    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(cassette):
        live = call(server.base_url)
        base = server.base_url
    # The server is gone: only the cassette can answer.
    with vcr_ext.VCR(record_mode="none").use_cassette(cassette):
        assert call(base)["choices"] == live["choices"]


def _queue(server: FakeOpenAIServer, answer: str) -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        ],
    }
    headers = [("content-type", "application/json")]
    server.enqueue("POST", "/v1/chat/completions", headers=headers, body=json.dumps(completion).encode())


def _chat(base: str, text: str) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    reply = requests.post(f"{base}/chat/completions", json=body, timeout=10).json()
    return str(reply["choices"][0]["message"]["content"])


def test_cassettes_one_after_another_each_answer_from_their_own_recordings(tmp_path: Path) -> None:
    # Connection classes are reused between cassettes: each must reach the cassette open now.
    with FakeOpenAIServer() as server:
        base = server.base_url
        _queue(server, "first answer")
        with vcr_ext.VCR(record_mode="once").use_cassette(str(tmp_path / "a")):
            assert _chat(base, "same question") == "first answer"
        _queue(server, "second answer")
        with vcr_ext.VCR(record_mode="once").use_cassette(str(tmp_path / "b")):
            assert _chat(base, "same question") == "second answer"
        served = len(server.requests)
    session = requests.Session()  # one pool of connections across the cassettes below
    for _ in range(3):
        for name, answer in (("a", "first answer"), ("b", "second answer")):
            with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / name)):
                body = {"model": "m", "messages": [{"role": "user", "content": "same question"}]}
                got = session.post(f"{base}/chat/completions", json=body, timeout=10).json()
                assert got["choices"][0]["message"]["content"] == answer
    assert served == 2


def test_nested_cassettes_answer_from_the_inner_one_then_the_outer_one(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        base = server.base_url
        _queue(server, "outer")
        with vcr_ext.VCR(record_mode="once").use_cassette(str(tmp_path / "outer")):
            assert _chat(base, "q") == "outer"
        _queue(server, "inner")
        with vcr_ext.VCR(record_mode="once").use_cassette(str(tmp_path / "inner")):
            assert _chat(base, "q") == "inner"
    replay = vcr_ext.VCR(record_mode="none")
    with replay.use_cassette(str(tmp_path / "outer"), allow_playback_repeats=True):
        assert _chat(base, "q") == "outer"
        with replay.use_cassette(str(tmp_path / "inner"), allow_playback_repeats=True):
            assert _chat(base, "q") == "inner"
        assert _chat(base, "q") == "outer"


def test_a_closed_cassette_is_not_kept_alive_by_the_patches_it_used(tmp_path: Path) -> None:
    import gc
    import weakref

    with FakeOpenAIServer() as server:
        with vcr_ext.VCR(record_mode="once").use_cassette(str(tmp_path / "c")) as cassette:
            _chat(server.base_url, "q")
        ref = weakref.ref(cassette)
        del cassette
        gc.collect()
        assert ref() is None
