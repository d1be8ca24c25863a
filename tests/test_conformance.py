"""Conformance over the shared corpus: every llama-stack recording replays through the client that made it.

Parametrized when the module is collected: one test per recording (sync replay), one per
openai/ollama recording (async replay), one per chat stream with tool calls (the
``chat.completions.stream()`` helper, sync and async). The ids are the recordings' paths
relative to the corpus folder. Without the corpus a single test skips and says why.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import corpus_path

from vcr_ext import conformance
from vcr_ext.cli import main as cli
from vcr_ext.conformance import ASYNC, ASYNC_HELPER, HELPER, Case

ROOT = corpus_path() / conformance.CORPUS_NAME
CASES: list[Case] = conformance.discover(ROOT) if ROOT.is_dir() else []
MISSING = f"corpus not found at {ROOT}: set VCR_EXT_CORPUS to the shared corpus folder"


def _params(cases: list[Case]) -> list[object]:
    return [pytest.param(c, id=c.name) for c in cases]


def _run(case: Case, *, asynchronous: bool = False, helper: bool = False) -> None:
    if case.skip_reason is not None:
        pytest.skip(case.skip_reason)
    outcome = conformance.replay(case, asynchronous=asynchronous, helper=helper)
    if outcome.skipped:
        pytest.skip(outcome.detail)
    assert outcome.ok, f"{case.name} ({case.kind}, {case.provider}, {case.client_call}): {outcome.detail}"


if CASES:

    @pytest.mark.parametrize("case", _params(CASES))
    def test_sync_replay(case: Case) -> None:
        _run(case)

    @pytest.mark.parametrize("case", _params([c for c in CASES if ASYNC in c.modes]))
    def test_async_replay(case: Case) -> None:
        _run(case, asynchronous=True)

    @pytest.mark.parametrize("case", _params([c for c in CASES if HELPER in c.modes]))
    def test_stream_helper(case: Case) -> None:
        _run(case, helper=True)

    @pytest.mark.parametrize("case", _params([c for c in CASES if ASYNC_HELPER in c.modes]))
    def test_async_stream_helper(case: Case) -> None:
        _run(case, asynchronous=True, helper=True)

    def test_a_helper_call_the_sdk_refuses_is_reported_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
        import openai

        def refuse(self: object, **kwargs: object) -> None:
            raise ValueError("`get_weather` is not strict")

        monkeypatch.setattr(openai.resources.chat.completions.Completions, "stream", refuse)
        case = next(c for c in CASES if HELPER in c.modes)
        outcome = conformance.replay(case, helper=True)
        assert outcome.skipped and not outcome.ok
        assert "refuses the recorded arguments" in outcome.detail and "is not strict" in outcome.detail

else:

    def test_corpus_recordings() -> None:
        pytest.skip(MISSING)


# -- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://api.openai.com/v1/v1/chat/completions", "openai"),
        ("http://localhost:11434/api/ps", "ollama"),
        ("http://0.0.0.0:11434/v1/v1/embeddings", "ollama"),
        ("https://api.together.xyz/v1/v1/completions", "together"),
        ("https://api.fireworks.ai/inference/v1/v1/models", "fireworks"),
        ("https://api.cerebras.ai/v1/v1/chat/completions", "cerebras"),
        ("https://x-eastus2.cognitiveservices.azure.com/openai/v1/v1/chat/completions", "azure"),
        ("https://integrate.api.nvidia.com/v1/v1/models", "nvidia"),
        ("http://localhost:8000/v1/v1/models", "vllm"),
        ("http://localhost:8080/v1/v1/completions", "vllm"),
        ("__databricks__/serving-endpoints/v1/embeddings", "databricks"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/v1/models", "gemini"),
        ("https://example.org/v1/chat/completions", "example.org"),
        ("", "unknown"),
    ],
)
def test_provider_of(url: str, provider: str) -> None:
    assert conformance.provider_of(url) == provider


def _record(endpoint: str, body: dict[str, object], streaming: bool = False) -> dict[str, object]:
    return {
        "request": {"method": "POST", "url": "http://h" + endpoint, "endpoint": endpoint, "body": body},
        "response": {"body": [] if streaming else {}, "is_streaming": streaming},
    }


CHAT = "openai.chat.completions.create"
COMPLETION = "openai.completions.create"


@pytest.mark.parametrize(
    ("endpoint", "body", "kind", "call"),
    [
        ("/v1/chat/completions", {"messages": [], "stream": True}, "chat-stream", CHAT),
        ("/v1/completions", {"messages": []}, "chat", CHAT),
        ("/v1/completions", {"prompt": "p", "stream": True}, "completion-stream", COMPLETION),
        ("/v1/embeddings", {"input": "x"}, "embeddings", "openai.embeddings.create"),
        ("/v1/models", {}, "models", "openai.models.list"),
        ("/api/generate", {"prompt": "p", "stream": True}, "ollama-generate-stream", "ollama.generate"),
        ("/api/chat", {"messages": []}, "ollama-chat", "ollama.chat"),
        ("/api/embeddings", {"input": "x"}, "ollama-embed", "ollama.embed"),
        ("/api/embeddings", {"prompt": "x"}, "ollama-embeddings", "ollama.embeddings"),
        ("/api/ps", {}, "ollama-ps", "ollama.ps"),
        ("/api/tags", {}, "ollama-tags", "ollama.list"),
    ],
)
def test_classify(endpoint: str, body: dict[str, object], kind: str, call: str) -> None:
    assert conformance.classify(_record(endpoint, body)) == (endpoint, kind, call, None)


def test_classify_tool_invocation_and_unknown_routes_are_skipped_with_a_reason() -> None:
    tool = {"request": {"provider": "tavily", "tool_name": "web_search", "kwargs": {}}, "response": {}}
    _, kind, call, reason = conformance.classify(tool)
    assert (kind, call) == ("tool-invocation", "")
    assert reason is not None and "tavily.web_search" in reason
    unknown = conformance.classify(_record("/v1/audio/speech", {}))
    assert unknown[3] == "no client call known for route /v1/audio/speech"


def test_nothing_is_skipped_without_a_reason() -> None:
    if not CASES:
        pytest.skip(MISSING)
    assert all(c.skip_reason for c in CASES if not c.client_call)
    assert len(CASES) == len(list(ROOT.rglob("*.json")))


def test_first_difference_is_exact_and_names_the_field() -> None:
    assert conformance.first_difference({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}) is None
    assert conformance.first_difference({"a": [1.0, 2.0]}, {"a": [1.0, 2.0000001]}) == (
        "response.a[1]: recorded 2.0, replayed 2.0000001"
    )
    assert conformance.first_difference({"n": 1}, {"n": 1.0}) == "response.n: recorded 1, replayed 1.0"
    assert conformance.first_difference([1], [1, 2]) == "response[1]: not recorded, replayed 2"
    assert conformance.first_difference({"a": 1}, {}) == "response.a: recorded 1, missing from the replay"


def test_expected_tool_calls_accumulate_the_deltas_as_the_sdk_does() -> None:
    def chunk(tc: dict[str, object]) -> dict[str, object]:
        return {"__type__": "x", "__data__": {"choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]}}

    record = {
        "response": {
            "body": [
                chunk({"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}),
                chunk({"index": 0, "id": None, "type": None, "function": {"arguments": '{"a":'}}),
                chunk({"index": 0, "function": {"arguments": "1}"}}),
            ]
        }
    }
    assert conformance.expected_tool_calls(record) == [
        {"choice": 0, "id": "call_1", "name": "f", "arguments": '{"a":1}'}
    ]


# -- the report and the command ------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_run() -> conformance.Run:
    if not CASES:
        pytest.skip(MISSING)
    return conformance.run_all(ROOT, modes=(conformance.SYNC,))


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["conformance", *args])
    return code, out.getvalue()


def test_report_names_every_provider_endpoint_and_skip(corpus_run: conformance.Run) -> None:
    text = conformance.render(corpus_run)
    for case in CASES:
        assert f"\n{case.provider} " in text, case.provider
        assert f"\n{case.endpoint} " in text, case.endpoint
        if case.skip_reason:
            assert f"{case.name}: {case.skip_reason}" in text
    for outcome in corpus_run.failures:
        assert outcome.case.name in text and outcome.detail in text
    # The providers and endpoints of the Oct-2025 corpus, each in its own table row.
    for name in ("openai", "ollama", "together", "fireworks", "cerebras", "azure", "nvidia", "vllm"):
        assert f"\n{name} " in text
    assert "\ndatabricks " in text
    for endpoint in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/api/ps"):
        assert f"\n{endpoint} " in text


def _copy(cases: list[Case], into: Path) -> None:
    for case in cases:
        target = into / case.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case.path, target)


def test_cli_exits_0_when_every_recording_passes(corpus_run: conformance.Run, tmp_path: Path) -> None:
    failed = {o.case.path for o in corpus_run.failures}
    per_kind: dict[str, list[Case]] = {}
    for case in CASES:
        if case.path not in failed:
            per_kind.setdefault(case.kind, []).append(case)
    chosen = [c for cases in per_kind.values() for c in cases[:2]]
    _copy(chosen, tmp_path)
    code, out = _cli(str(tmp_path))
    assert code == 0, out
    assert "failed: 0" in out
    assert f"({len(chosen)} recordings;" in out


def test_cli_exits_1_when_a_recording_fails(tmp_path: Path) -> None:
    # A recorded 500: the SDK raises, so the replay cannot give the recorded object.
    record = {
        "request": {
            "method": "POST",
            "url": "https://api.openai.com/v1/v1/embeddings",
            "headers": {},
            "body": {"model": "m", "input": "x", "encoding_format": "float"},
            "endpoint": "/v1/embeddings",
            "model": "m",
        },
        "response": {"body": {"error": {"message": "boom"}}, "is_streaming": False, "status": 500},
    }
    (tmp_path / "broken.json").write_text(json.dumps(record))
    code, out = _cli(str(tmp_path), "--mode", conformance.SYNC)
    assert code == 1
    assert "broken.json [sync] embeddings: InternalServerError: Error code: 500" in out


def test_whole_corpus_matches_the_cli_exit_code(corpus_run: conformance.Run) -> None:
    # The command's verdict over the whole corpus is the report's: 0 exactly when nothing failed.
    code, out = _cli(str(ROOT), "--mode", conformance.SYNC)
    assert code == (1 if corpus_run.failures else 0), out
    assert f"failed: {len(corpus_run.failures)}," in out
