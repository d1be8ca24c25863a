"""The indexed cassette plays exactly what vcrpy's would, with one lookup per request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from vcr.errors import CannotOverwriteExistingCassetteException

import vcr_ext
from vcr_ext import matchers
from vcr_ext.cassette import IndexedCassette
from vcr_ext.persister import Persister


def _write(cassette: Path, replies: list[tuple[dict[str, Any], str]]) -> None:
    """A cassette with one recorded chat completion per (request body, reply)."""
    from vcr.request import Request

    requests, responses = [], []
    for body, reply in replies:
        requests.append(
            Request("POST", "https://api.openai.com/v1/chat/completions", json.dumps(body).encode(), {})
        )
        payload = {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": reply}}]}
        responses.append(
            {
                "status": {"code": 200, "message": "OK"},
                "headers": {"content-type": ["application/json"]},
                "body": {"string": json.dumps(payload).encode()},
            }
        )
    Persister().save_cassette(cassette, {"requests": requests, "responses": responses})


def _ask(body: dict[str, Any], base: str = "http://127.0.0.1:9/v1") -> str:
    reply = httpx.post(f"{base}/chat/completions", json=body).json()
    return str(reply["choices"][0]["message"]["content"])


def _question(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def test_repeated_identical_requests_replay_in_recorded_order(tmp_path: Path) -> None:
    _write(
        tmp_path / "cas",
        [(_question("poll"), "pending"), (_question("poll"), "running"), (_question("poll"), "done")],
    )
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")) as cassette:
        assert isinstance(cassette, IndexedCassette)
        assert [_ask(_question("poll")) for _ in range(3)] == ["pending", "running", "done"]
        with pytest.raises(CannotOverwriteExistingCassetteException):
            _ask(_question("poll"))


def test_allow_playback_repeats_replays_the_first_again(tmp_path: Path) -> None:
    _write(tmp_path / "cas", [(_question("a"), "A")])
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas"), allow_playback_repeats=True):
        assert [_ask(_question("a")) for _ in range(3)] == ["A", "A", "A"]


def test_matching_ignores_base_url_key_order_and_float_noise(tmp_path: Path) -> None:
    _write(tmp_path / "cas", [(_question("a", temperature=0.2), "A")])
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")):
        body = {
            "temperature": 0.2000000001,
            "messages": [{"content": "a", "role": "user"}],
            "model": "gpt-4o",
        }
        assert _ask(body, base="http://localhost:1234/openai/v1") == "A"


def test_a_different_body_does_not_match(tmp_path: Path) -> None:
    _write(tmp_path / "cas", [(_question("a"), "A")])
    cassette = vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas"))
    with cassette, pytest.raises(CannotOverwriteExistingCassetteException):
        _ask(_question("b"))


def test_a_matcher_without_a_key_falls_back_to_vcrpys_scan(tmp_path: Path) -> None:
    _write(tmp_path / "cas", [(_question("a"), "A"), (_question("b"), "B")])
    calls: list[int] = []

    def same_model(r1: Any, r2: Any) -> None:
        calls.append(1)
        assert json.loads(r1.body)["model"] == json.loads(r2.body)["model"]

    my_vcr = vcr_ext.VCR(record_mode="none")
    my_vcr.register_matcher("same_model", same_model)
    with my_vcr.use_cassette(
        str(tmp_path / "cas"), match_on=("method", "route", "canonical_body", "same_model")
    ):
        assert _ask(_question("b")) == "B"
    assert calls  # the custom matcher was consulted


@pytest.fixture
def canonical_keys(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per canonical body key computed while the test runs."""
    calls: list[int] = []
    original = matchers.canonical_body.key

    def counting_key(request: Any) -> Any:
        calls.append(1)
        return original(request)

    monkeypatch.setattr(matchers.canonical_body, "key", counting_key)
    return calls


def test_lookup_cost_does_not_grow_with_the_cassette(tmp_path: Path, canonical_keys: list[int]) -> None:
    _write(tmp_path / "cas", [(_question(f"q{i}"), f"A{i}") for i in range(300)])
    keys = canonical_keys
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")):
        keys.clear()
        assert _ask(_question("q250")) == "A250"
    # vcrpy's scan would compare against every recorded request (hundreds of calls).
    assert len(keys) <= 4


def _send(raw: bytes) -> str:
    reply = httpx.post(
        "http://127.0.0.1:9/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    return str(reply.json()["choices"][0]["message"]["content"])


def test_exact_bytes_play_first_then_the_canonical_form(tmp_path: Path) -> None:
    first, second = {"model": "m", "n": 2}, {"n": 2, "model": "m"}  # canonically equal, other bytes
    _write(tmp_path / "cas", [(first, "A"), (second, "B")])
    second_bytes = b'{"n":2,"model":"m"}'
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")):
        assert _send(second_bytes) == "B"  # its own recording, though A comes first
        assert _send(second_bytes) == "A"  # then the other canonical match


def test_exact_bytes_need_no_canonical_form(tmp_path: Path, canonical_keys: list[int]) -> None:
    _write(tmp_path / "cas", [(_question("q"), "A")])
    calls = canonical_keys
    with vcr_ext.VCR(record_mode="none").use_cassette(str(tmp_path / "cas")):
        assert _send(json.dumps(_question("q"), separators=(",", ":")).encode()) == "A"
        assert calls == []
        with pytest.raises(CannotOverwriteExistingCassetteException):
            _send(b'{"model":"gpt-4o","messages":[]}')
    assert calls  # a body that no recording has byte for byte is compared canonically
