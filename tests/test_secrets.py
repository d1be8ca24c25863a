"""Secrets never reach disk: headers and query strings are scrubbed, and the scanner refuses the rest."""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

import httpx
import openai
import pytest

import vcr_ext
from vcr_ext import scrub
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.secrets import SecretFoundError, SecretScanner


def _fake(seed: str, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


# Fake credentials, one of each kind the scanner knew first. Generated, so that the
# repository's own secret check does not mistake this file for a leak; random-looking,
# because the scanner ignores low-entropy placeholders (ghp_AAAA...). Every form there is
# has a case in test_secret_forms.py.
FAKES = {
    "an OpenAI API key": "sk-" + "proj-" + _fake("openai", 40),
    "an Anthropic API key": "sk-" + "ant-api03-" + _fake("anthropic", 60),
    "an Azure OpenAI key": _fake("azure1", 52) + "JQQJ99" + _fake("azure2", 26),
    "a bearer token": "Bearer " + "eyJhbGciOiJIUzI1NiJ9." + _fake("bearer", 16),
    "an AWS access key id": "AKIA" + _fake("aws", 16, string.ascii_uppercase + "234567"),
    "a GitHub token": "ghp_" + _fake("github", 36),
    "a Google API key": "AIza" + _fake("google", 35),
    "a Hugging Face token": "hf_" + _fake("hf", 34, string.ascii_letters),
    "a Slack token": "xoxb-" + "1234567890-" + _fake("slack", 24),
    "a private key": "-----BEGIN " + "RSA PRIVATE KEY-----",
}
ENV_KEY = "vcr-ext-env-secret-" + "1234567890"


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


def test_the_url_and_kept_response_headers_are_scanned() -> None:
    token = FAKES["a GitHub token"]
    for record, where in [
        ({"request": {"url": f"https://h/v1/x?t={token}"}}, "request.url"),
        (
            {"response": {"body": {}, "headers": {"content-disposition": f"attachment; filename={token}"}}},
            "response.headers.content-disposition",
        ),
    ]:
        hit = SecretScanner().find(record)
        assert hit is not None and hit[0] == where


def test_allow_secrets_lets_a_known_false_positive_through() -> None:
    record = {"request": {"body": {"content": FAKES["an OpenAI API key"]}}}
    assert SecretScanner(allow=[FAKES["an OpenAI API key"]]).find(record) is None
    assert SecretScanner(allow=[re.compile(r"sk-proj-\w+")]).find(record) is None
    assert SecretScanner(allow=["something else"]).find(record) is not None


def test_extra_patterns_add_a_form() -> None:
    record = {"request": {"body": {"content": "internal token ACME-1234-5678"}}}
    assert SecretScanner().find(record) is None
    hit = SecretScanner(extra_patterns={"an ACME token": re.compile(r"ACME-\d{4}-\d{4}")}).find(record)
    assert hit == ("request.body.content", "what looks like an ACME token", "ACME-1234-5678")


def test_the_first_file_with_a_secret_is_named() -> None:
    planned = [
        (Path("a.json"), {"request": {"body": {"content": "nothing here"}}}),
        (Path("b.json"), {"request": {"body": {"content": FAKES["a GitHub token"]}}}),
        (Path("c.json"), {"request": {"body": {"content": FAKES["an OpenAI API key"]}}}),
    ]
    with pytest.raises(SecretFoundError) as err:
        SecretScanner(environ={})(planned)
    assert err.value.file == "b.json" and err.value.kind == "what looks like a GitHub token"


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


def test_a_key_split_across_stream_chunks_stops_the_save(tmp_path: Path) -> None:
    key = FAKES["an OpenAI API key"]
    pieces = ["Your key: ", key[:6], key[6:20], key[20:], "."]
    events = [
        "data: "
        + json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
        )
        + "\n\n"
        for piece in pieces
    ]
    body = [e.encode() for e in [*events, "data: [DONE]\n\n"]]
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server:
        server.enqueue(
            "POST", "/v1/chat/completions", headers=[("content-type", "text/event-stream")], body=body
        )
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with pytest.raises(SecretFoundError) as err, vcr_ext.VCR().use_cassette(str(cassette)):
            stream = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "my key?"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream) == "".join(pieces)
    # Every piece is harmless on its own: only the joined text holds the key.
    assert err.value.json_path == "response.body[1].__data__.choices[0].delta.content"
    assert err.value.detail == "reassembled across stream chunks 1..3"
    assert "reassembled across stream chunks 1..3" in str(err.value) and key not in str(err.value)
    assert not cassette.exists() or not any(cassette.iterdir())


def test_url_valued_response_headers_lose_their_credentials() -> None:
    sas = "https://acct.blob.core.windows.net/c/file.pdf?sv=2022-11-02&se=2030-01-01&sp=r&sig=" + _fake(
        "sig", 44
    )
    kept = scrub.response_headers(
        {"Location": sas, "Content-Location": "https://u:pw@h/x?api_key=k&page=2", "X-Other": sas},
        scrub.KEEP_RESPONSE_HEADERS | {"content-location"},
    )
    assert kept == {
        "content-location": "https://h/x?page=2",
        "location": "https://acct.blob.core.windows.net/c/file.pdf?sv=2022-11-02&se=2030-01-01&sp=r",
    }
    # A relative or credential-free location is kept as it was.
    assert scrub.response_headers({"location": "/v1/files/file-abc?limit=2"}) == {
        "location": "/v1/files/file-abc?limit=2"
    }


def test_a_sas_signature_in_a_location_header_is_scrubbed_before_the_scanner_sees_it(tmp_path: Path) -> None:
    signature = _fake("sas-signature", 44)
    location = (
        f"https://acct.blob.core.windows.net/c/file.pdf?sv=2022-11-02&se=2030-01-01&sp=r&sig={signature}"
    )
    assert SecretScanner().find({"response": {"body": {}, "headers": {"location": location}}}) is not None
    cassette = tmp_path / "cas"
    with FakeOpenAIServer() as server:
        server.enqueue(
            "GET",
            "/v1/files/file-abc/content",
            status=302,
            headers=[("location", location), ("content-length", "0")],
        )
        with vcr_ext.VCR().use_cassette(str(cassette)):
            response = httpx.get(f"{server.base_url}/files/file-abc/content")
        assert response.status_code == 302
    (written,) = cassette.iterdir()
    rec = json.loads(written.read_text())
    assert rec["response"]["headers"]["location"] == location.split("&sig=")[0]
    assert signature not in written.read_text()
