"""vcr_ext's patch builder patches what vcrpy's does and leaves every library as vcrpy would."""

from __future__ import annotations

import importlib
import importlib.util
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

# The attributes vcrpy swaps on each library (a sample of every kind: module attribute,
# class attribute defined on the class, method inherited from a base class).
PATCHED = [
    (httpx.HTTPTransport, "handle_request"),
    (httpx.AsyncHTTPTransport, "handle_async_request"),
    (httpx.MockTransport, "handle_async_request"),
    (requests.adapters.HTTPAdapter, "send"),
]


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
        assert vars(httpx.HTTPTransport)["handle_request"] is not before["httpx.HTTPTransport"]["handle_request"]
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
