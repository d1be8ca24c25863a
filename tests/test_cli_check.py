"""``vcr-ext check``, run as a subprocess on real recordings, clean and with planted problems."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from test_cli_show import TOOL, vcr_ext_cli

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer

REPO_HOOKS = Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml"

# An OpenAI project key of the real form (48+ characters after the prefix), made up for this test.
PLANTED_KEY = "sk-proj-" + "Zq7XwK2mN9pR4tV8yB3cF6hJ1lD5gS0aE" + "uI7oP2kM4nQ9rT3vW8xY"


def record(cassette: Path, *, twice: bool = False) -> None:
    """A chat stream with a tool call, a Responses stream, embeddings and an error, through the SDK."""
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            for _ in range(2 if twice else 1):
                list(
                    client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "What time is it?"}],
                        tools=[TOOL],
                        stream=True,
                    )
                )
            list(client.responses.create(model="gpt-4o-mini", input="Say hello.", stream=True))
            client.embeddings.create(model="text-embedding-3-small", input="one")
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="error-429", messages=[{"role": "user", "content": "x"}])


def by_route(cassette: Path) -> dict[tuple[str, bool], list[Path]]:
    """Record files by (route, is_streaming), read apart from the code under test."""
    out: dict[tuple[str, bool], list[Path]] = {}
    for file in sorted(cassette.glob("*.json")):
        rec = json.loads(file.read_text())
        out.setdefault((rec["request"]["endpoint"], rec["response"]["is_streaming"]), []).append(file)
    return out


def edit(file: Path, change: Any) -> None:
    rec = json.loads(file.read_text())
    change(rec)
    file.write_text(json.dumps(rec, indent=2) + "\n")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cassette = tmp_path_factory.mktemp("check") / "c"
    record(cassette)
    return cassette


@pytest.fixture
def cassette(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the recorded cassette for a test to break."""
    return Path(shutil.copytree(pristine, tmp_path / "c"))


def test_clean_recording_passes(cassette: Path, seed_file: Path) -> None:
    result = vcr_ext_cli("check", cassette, seed_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "no problems" in result.stderr


def test_planted_secret_is_named(cassette: Path) -> None:
    [stream] = by_route(cassette)[("/v1/chat/completions", True)]
    # A key pasted into a prompt, edited into the file after recording (a save would have refused it).
    edit(stream, lambda r: r["request"]["body"]["messages"][0].update(content=f"my key is {PLANTED_KEY}"))
    result = vcr_ext_cli("check", cassette)
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{stream}:0: request.body.messages[0].content: secret: ")
    assert PLANTED_KEY not in line  # masked


def test_planted_secret_split_across_chunks(cassette: Path) -> None:
    [stream] = by_route(cassette)[("/v1/responses", True)]

    def split(rec: dict[str, Any]) -> None:
        deltas = [
            c["__data__"] for c in rec["response"]["body"] if c["__data__"]["type"].endswith("text.delta")
        ]
        half = 10  # neither piece is a key on its own: only the joined text is
        deltas[0]["delta"] += " " + PLANTED_KEY[:half]
        deltas[1]["delta"] = PLANTED_KEY[half:] + deltas[1]["delta"]

    edit(stream, split)
    result = vcr_ext_cli("check", "--json", cassette)
    assert result.returncode == 1
    [problem] = json.loads(result.stdout)
    assert (problem["path"], problem["record"], problem["kind"]) == (str(stream), 0, "secret")
    assert re.fullmatch(r"response\.body\[\d+\]\.__data__\.delta", problem["field"])
    # The same check lets a known false positive through when told to.
    allowed = vcr_ext_cli("check", "--allow-secret", PLANTED_KEY, cassette)
    assert allowed.returncode == 0, allowed.stdout


def test_broken_data_is_named(cassette: Path) -> None:
    [stream] = by_route(cassette)[("/v1/chat/completions", True)]
    edit(stream, lambda r: r["response"]["body"][2]["__data__"].update(choices="not a list"))
    result = vcr_ext_cli("check", cassette)
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{stream}:0: response.body[2].__data__.choices: ")


def test_not_json_and_unknown_type(cassette: Path) -> None:
    routes = by_route(cassette)
    [embeddings] = routes[("/v1/embeddings", False)]
    [responses] = routes[("/v1/responses", True)]
    embeddings.write_text('{"request": ')
    edit(responses, lambda r: r["response"]["body"][0].update({"__type__": "vcr_ext.raw.Nope"}))
    result = vcr_ext_cli("check", cassette)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{embeddings}:-: (file): is not valid JSON") for line in lines)
    assert any(
        line.startswith(f"{responses}:0: response.body[0].__type__: unknown vcr_ext type") for line in lines
    )
    assert len(lines) == 2


def test_duplicate_is_reported_and_real_repeats_are_not(cassette: Path, tmp_path: Path) -> None:
    [embeddings] = by_route(cassette)[("/v1/embeddings", False)]
    copy = cassette / "copy-of-embeddings.json"
    shutil.copyfile(embeddings, copy)
    result = vcr_ext_cli("check", cassette)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{copy}:0: (record): duplicate of {embeddings}: "
        "the same test id, request and response under another name"
    ]
    # A request the test really made twice is two recordings (<hash>.json, <hash>.2.json),
    # each answering one request in turn: identical here (the demo server is deterministic),
    # and not a duplicate.
    repeated = tmp_path / "twice"
    record(repeated, twice=True)
    first, second = by_route(repeated)[("/v1/chat/completions", True)]
    assert first.read_bytes() == second.read_bytes()
    again = vcr_ext_cli("check", repeated)
    assert again.returncode == 0, again.stdout


def test_cut_streams_are_reported(cassette: Path) -> None:
    [chat] = by_route(cassette)[("/v1/chat/completions", True)]
    [responses] = by_route(cassette)[("/v1/responses", True)]

    def cut_finish(rec: dict[str, Any]) -> None:
        body = rec["response"]["body"]
        rec["response"]["body"] = [c for c in body if not c["__data__"]["choices"][0]["finish_reason"]]

    edit(chat, cut_finish)
    edit(responses, lambda r: r["response"]["body"].pop())  # the response.completed event
    result = vcr_ext_cli("check", "--json", cassette)
    assert result.returncode == 1
    problems = {p["path"]: p for p in json.loads(result.stdout)}
    assert set(problems) == {str(chat), str(responses)}
    assert {p["kind"] for p in problems.values()} == {"stream"}
    assert problems[str(chat)]["field"].endswith(".__data__.choices[0].finish_reason")
    assert "response.output_item.done" in problems[str(responses)]["problem"]


def test_unreachable_records(cassette: Path) -> None:
    [embeddings] = by_route(cassette)[("/v1/embeddings", False)]
    hidden = cassette / ".hidden.json"
    renamed = cassette / "saved.json.bak"
    shutil.copyfile(embeddings, hidden)
    shutil.copyfile(embeddings, renamed)
    (cassette / "NOTES.md").write_text("not a recording\n")
    result = vcr_ext_cli("check", cassette)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{hidden}:-: (file): unreachable: holds recordings the loader never reads (a dot-file)",
        f"{renamed}:-: (file): unreachable: holds recordings the loader never reads "
        "(its name does not end in .json)",
    ]


def test_whole_llama_stack_corpus(corpus_dir: Path) -> None:
    corpus = corpus_dir / "llama-stack-2025-10"
    if not corpus.is_dir():
        pytest.skip(f"llama-stack corpus not found at {corpus}")
    result = vcr_ext_cli("check", "--json", corpus)
    problems = json.loads(result.stdout)
    assert result.returncode == (1 if problems else 0)
    # Each report, judged against the file apart from the code under test:
    for p in problems:
        rec = json.loads(Path(p["path"]).read_text())
        if p["kind"] == "unreachable":
            # a tool invocation: llama-stack's record of a tool call, no HTTP request to match
            assert "tool_name" in rec["request"] and "method" not in rec["request"]
        elif p["kind"] == "stream":
            # a chat stream (vLLM, Qwen3 tool call) that really ends with no finish_reason
            chunks = [c["__data__"] for c in rec["response"]["body"]]
            assert all(ch["finish_reason"] is None for c in chunks for ch in c["choices"])
        else:
            pytest.fail(f"unexpected report on the corpus: {p}")
    assert sorted(p["kind"] for p in problems) == ["stream", "unreachable"]


def test_exit_codes(tmp_path: Path) -> None:
    assert vcr_ext_cli("check", tmp_path / "missing").returncode == 2
    (tmp_path / "empty").mkdir()
    assert vcr_ext_cli("check", tmp_path / "empty").returncode == 2
    assert vcr_ext_cli("check").returncode == 2


def test_pre_commit_hook() -> None:
    hooks = yaml.safe_load(REPO_HOOKS.read_text())
    [hook] = [h for h in hooks if h["id"] == "vcr-ext-check"]
    assert hook["entry"] == "vcr-ext check" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("cassettes/test_mod/test_x/5a79.json")
    assert not files.search("src/app.py")
