"""Secrets never reach disk: headers and query strings are scrubbed, and the scanner refuses the rest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import openai
import pytest

import vcr_ext
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.secrets import PATTERNS, SecretFoundError, SecretScanner

# Fake credentials, one of each kind the scanner knows. Built by concatenation so the
# repository's own secret check does not mistake this file for a leak.
FAKES = {
    "an OpenAI API key": "sk-" + "proj-" + "Abcdefghij0123456789KLMNOPqrst",
    "an Anthropic API key": "sk-" + "ant-api03-" + "Abcdefghij0123456789KLMNOPqrst",
    "an Azure OpenAI key": "A" * 52 + "JQQJ99" + "B" * 26,
    "a bearer token": "Bearer " + "eyJhbGciOiJIUzI1NiJ9.abcdefghijkl",
    "an AWS access key id": "AKIA" + "ABCDEFGHIJKLMNOP",
    "a GitHub token": "ghp_" + "A" * 36,
    "a Google API key": "AIza" + "B" * 35,
    "a Hugging Face token": "hf_" + "C" * 34,
    "a Slack token": "xoxb-" + "1234567890-abcdef",
    "a private key": "-----BEGIN " + "RSA PRIVATE KEY-----",
}
ENV_KEY = "vcr-ext-env-secret-" + "1234567890"


def test_every_pattern_has_a_fake() -> None:
    assert set(FAKES) == set(PATTERNS)


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_scanner_finds_each_kind_with_its_json_path(kind: str) -> None:
    record = {"request": {"body": {"messages": [{"content": f"here: {FAKES[kind]} ok"}]}}}
    hit = SecretScanner().find(record)
    assert hit is not None
    path, found_kind, _ = hit
    assert path == "request.body.messages[0].content"
    assert found_kind == f"what looks like {kind}"


def test_scanner_finds_credential_named_fields_and_environment_values() -> None:
    assert SecretScanner().find({"response": {"body": {"api_key": "0123456789abcdef"}}}) is not None
    scanner = SecretScanner(environ={"MY_SERVICE_API_KEY": ENV_KEY})
    hit = scanner.find({"response": {"body": [{"__data__": {"text": f"echo {ENV_KEY}"}}]}})
    assert hit is not None and hit[0] == "response.body[0].__data__.text"


def test_allow_secrets_lets_a_known_false_positive_through() -> None:
    record = {"request": {"body": {"content": FAKES["an OpenAI API key"]}}}
    assert SecretScanner(allow=[FAKES["an OpenAI API key"]]).find(record) is None
    assert SecretScanner(allow=[re.compile(r"sk-proj-Abc\w+")]).find(record) is None
    assert SecretScanner(allow=["something else"]).find(record) is not None


def test_committed_cassettes_hold_no_false_positive() -> None:
    cassettes = Path(__file__).resolve().parent.parent / "cassettes"
    for f in cassettes.rglob("*.json"):
        assert SecretScanner().find(json.loads(f.read_text())) is None, f


def _written(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_leaks_through_headers_and_query_strings_reach_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK_TEST_API_KEY", ENV_KEY)
    secrets = [*FAKES.values(), ENV_KEY]
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server:
        for value in secrets:  # the server echoes none of these: they travel in headers only
            server.enqueue(
                "POST",
                "/v1/chat/completions",
                headers=[
                    ("content-type", "application/json"),
                    ("set-cookie", f"session={value}"),
                    ("openai-organization", "org-leaky"),
                    ("openai-project", "proj_leaky"),
                    ("x-api-key", value),
                ],
                body=b'{"object":"chat.completion","choices":[]}',
            )
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            for value in secrets:
                headers = {
                    "authorization": f"Bearer {value}",
                    "api-key": value,
                    "x-api-key": value,
                    "openai-organization": "org-leaky",
                    "openai-project": "proj_leaky",
                    "cookie": f"session={value}",
                }
                params = {"api_key": value, "key": value, "token": value, "sig": value, "api-version": "1"}
                url = server.base_url.replace("http://", f"http://user:{value.replace('/', '')}@")
                httpx.post(
                    f"{url}/chat/completions",
                    json={"model": "m", "messages": []},
                    headers=headers,
                    params=params,
                )
    data = _written(cassette)
    assert data  # something was recorded
    for value in [*secrets, "org-leaky", "proj_leaky", "session="]:
        assert value.encode() not in data, value


def test_a_secret_in_a_message_body_stops_the_save_and_keeps_the_old_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
        before = {p.name: p.read_bytes() for p in cassette.iterdir()}
        with (
            pytest.raises(SecretFoundError) as err,
            vcr_ext.VCR(record_mode="new_episodes").use_cassette(str(cassette)),
        ):
            message = f"my key is {FAKES['an OpenAI API key']}"
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": message}])
    assert err.value.json_path == "request.body.messages[0].content"
    assert str(cassette) in err.value.file and err.value.file.endswith(".json")
    assert FAKES["an OpenAI API key"] not in str(err.value)  # the error does not print it either
    assert {p.name: p.read_bytes() for p in cassette.iterdir()} == before


def test_redaction_rules_keep_values_off_disk_and_still_match(tmp_path: Path) -> None:
    rules = [re.compile(r"sk-proj-\w+"), "$.request.body.user", "x-request-id"]
    cassette = str(tmp_path / "cas")
    message = [{"role": "user", "content": f"my key is {FAKES['an OpenAI API key']}"}]
    with FakeOpenAIServer() as server, vcr_ext.VCR(redact=rules).use_cassette(cassette):
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        live = client.chat.completions.create(model="gpt-4o", messages=message, user="alice@example.com")  # type: ignore[arg-type]
    (written,) = Path(cassette).iterdir()
    rec = json.loads(written.read_text())
    assert rec["request"]["body"]["user"] == "<REDACTED>"
    assert "<REDACTED>" in rec["request"]["body"]["messages"][0]["content"]
    assert "x-request-id" not in rec["response"]["headers"]
    assert FAKES["an OpenAI API key"] not in written.read_text() and "alice@" not in written.read_text()
    replay_client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    with vcr_ext.VCR(record_mode="none", redact=rules).use_cassette(cassette):
        replayed = replay_client.chat.completions.create(
            model="gpt-4o", messages=message, user="alice@example.com"
        )  # type: ignore[arg-type]
    assert replayed.choices[0].message.content == live.choices[0].message.content.replace(  # type: ignore[union-attr]
        FAKES["an OpenAI API key"], "<REDACTED>"
    )
