"""Cassette layouts on disk: round trips, order of repeats, untouched files, errors that lose nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.request import Request

from vcr_ext.errors import CassetteFormatError
from vcr_ext.interactions import ORIGIN_KEY
from vcr_ext.persister import DROPPED_KEY, Persister


def _interaction(content: str, *, question: str = "hi") -> tuple[Request, dict[str, Any]]:
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": question}]}).encode()
    request = Request(
        "POST", "https://api.openai.com/v1/chat/completions", body, {"authorization": "Bearer sk-x"}
    )
    payload = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 9,
        "model": "gpt-4o",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["application/json"], "Set-Cookie": ["a=b"], "x-request-id": ["req_1"]},
        "body": {"string": json.dumps(payload).encode()},
    }
    return request, response


def _save(persister: Persister, path: Path, *pairs: tuple[Request, dict[str, Any]]) -> None:
    persister.save_cassette(path, {"requests": [p[0] for p in pairs], "responses": [p[1] for p in pairs]})


def _contents(response: dict[str, Any]) -> str:
    return str(json.loads(response["body"]["string"])["choices"][0]["message"]["content"])


def test_directory_round_trip_keeps_repeats_in_recorded_order(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _save(Persister(), cassette, _interaction("first"), _interaction("second"), _interaction("third"))
    stems = {p.name.split(".", 1)[0] for p in cassette.iterdir()}
    assert len(stems) == 1
    (stem,) = stems
    assert {p.name for p in cassette.iterdir()} == {f"{stem}.json", f"{stem}.2.json", f"{stem}.3.json"}
    _, responses = Persister().load_cassette(cassette)
    assert [_contents(r) for r in responses] == ["first", "second", "third"]


def test_file_layout_round_trip(tmp_path: Path) -> None:
    cassette = tmp_path / "cas.json"
    _save(Persister(), cassette, _interaction("a", question="q1"), _interaction("b", question="q2"))
    doc = json.loads(cassette.read_text())
    assert isinstance(doc, list) and len(doc) == 2
    _, responses = Persister().load_cassette(cassette)
    assert [_contents(r) for r in responses] == ["a", "b"]


def test_request_headers_and_volatile_response_headers_never_reach_disk(tmp_path: Path) -> None:
    _save(Persister(), tmp_path / "cas", _interaction("x"))
    (written,) = (tmp_path / "cas").iterdir()
    rec = json.loads(written.read_text())
    assert rec["request"]["headers"] == {}
    assert rec["response"]["headers"] == {"content-type": "application/json", "x-request-id": "req_1"}
    assert "sk-x" not in written.read_text() and "a=b" not in written.read_text()


def test_saving_loaded_interactions_rewrites_nothing(tmp_path: Path, seed_file: Path) -> None:
    cassette = tmp_path / "cas"
    cassette.mkdir()
    shutil.copy(seed_file, cassette)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in cassette.iterdir()}
    requests, responses = Persister().load_cassette(cassette)
    _save(Persister(), cassette, *zip(requests, responses, strict=True), _interaction("new"))
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in cassette.iterdir()}
    assert len([name for name in after if name.endswith(".json")]) == 2
    assert after[seed_file.name] == before[seed_file.name]


def test_a_changed_response_is_rebuilt_not_written_back_stale(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _save(Persister(), cassette, _interaction("old"))
    requests, responses = Persister().load_cassette(cassette)
    origin = responses[0][ORIGIN_KEY]
    responses[0]["body"]["string"] = _interaction("edited by a hook")[1]["body"]["string"]
    # As IndexedCassette does: the loaded recording whose response changed is named as dropped.
    Persister().save_cassette(
        cassette, {"requests": [requests[0]], "responses": [responses[0]], DROPPED_KEY: [origin]}
    )
    _, reloaded = Persister().load_cassette(cassette)
    assert _contents(reloaded[0]) == "edited by a hook"


def test_missing_or_empty_cassette_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(CassetteNotFoundError):
        Persister().load_cassette(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CassetteNotFoundError):
        Persister().load_cassette(tmp_path / "empty")


def test_rewrite_ignores_and_replaces_what_is_on_disk(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _save(Persister(), cassette, _interaction("old", question="old question"))
    with pytest.raises(CassetteNotFoundError):
        Persister(rewrite=True).load_cassette(cassette)
    _save(Persister(rewrite=True), cassette, _interaction("new"))
    _, responses = Persister().load_cassette(cassette)
    assert [_contents(r) for r in responses] == ["new"]


def test_broken_json_names_the_file_and_line(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _save(Persister(), cassette, _interaction("x"))
    (broken,) = cassette.iterdir()
    broken.write_text('{\n  "test_id": nul\n}\n')
    with pytest.raises(CassetteFormatError) as err:
        Persister().load_cassette(cassette)
    assert str(broken) in str(err.value) and "line 2" in str(err.value)


def test_bad_record_in_a_file_cassette_names_the_record(tmp_path: Path) -> None:
    cassette = tmp_path / "cas.json"
    _save(Persister(), cassette, _interaction("a", question="1"), _interaction("b", question="2"))
    doc = json.loads(cassette.read_text())
    doc[1]["response"]["is_streaming"] = "no"
    cassette.write_text(json.dumps(doc))
    with pytest.raises(CassetteFormatError, match=r"cas\.json, record 1: field 'response\.is_streaming'"):
        Persister().load_cassette(cassette)


def test_a_failed_save_check_writes_nothing(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _save(Persister(), cassette, _interaction("kept", question="q1"))
    before = {p.name: p.read_bytes() for p in cassette.iterdir()}

    def refuse(planned: object) -> None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        _save(Persister(save_checks=[refuse]), cassette, _interaction("other", question="q2"))
    assert {p.name: p.read_bytes() for p in cassette.iterdir()} == before


def test_tool_invocation_records_are_skipped_with_a_reason(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _save(Persister(), cassette, _interaction("x"))
    tool = {
        "test_id": "t",
        "request": {"test_id": "t", "provider": "tavily", "tool_name": "web_search", "kwargs": {}},
        "response": {"body": {}, "is_streaming": False},
    }
    (cassette / "tool.json").write_text(json.dumps(tool))
    persister = Persister()
    requests, _ = persister.load_cassette(cassette)
    assert len(requests) == 1
    (skipped,) = persister.skipped
    assert skipped.path.endswith("tool.json") and "tavily.web_search" in skipped.reason


def test_loaded_responses_carry_their_origin(tmp_path: Path) -> None:
    _save(Persister(), tmp_path / "cas", _interaction("x"))
    _, responses = Persister().load_cassette(tmp_path / "cas")
    assert ORIGIN_KEY in responses[0]


def test_written_files_are_ordinary_project_files(tmp_path: Path) -> None:
    import os
    import stat

    _save(Persister(), tmp_path / "cas", _interaction("x"))
    (written,) = (tmp_path / "cas").iterdir()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask
