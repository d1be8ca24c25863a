"""Every credential form the scanner knows, each with a true positive and a look-alike that must pass.

The fake credentials are generated (seeded, so every run sees the same ones) rather than
written out, so that no secret scanner mistakes this file for a leak. Each true positive
is checked three ways: it is found, with its kind, JSON path and value; it is let through
by ``allow_secrets=[its value]``; and, for a form that is one rule of
:data:`vcr_ext.secret_rules.RULES`, it is no longer found as that form when the rule is
removed, so that no case passes by accident through another rule.
"""

from __future__ import annotations

import base64
import json
import random
import string
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import vcr_ext
import vcr_ext.secrets
from vcr_ext.demo.server import FakeOpenAIServer
from vcr_ext.secret_rules import RULES
from vcr_ext.secrets import SecretFoundError, SecretScanner

ALNUM = string.ascii_letters + string.digits
TOKEN = ALNUM + "_-"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
UPPER27 = string.ascii_uppercase + "234567"


def fake(seed: str, n: int, alphabet: str = ALNUM) -> str:
    """``n`` random characters, the same every run for the same seed."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def message(text: str) -> dict[str, Any]:
    """A record whose only string of note is a user message."""
    return {"request": {"method": "POST", "body": {"messages": [{"role": "user", "content": text}]}}}


MESSAGE = "request.body.messages[0].content"


def chat_stream(pieces: list[str], *, field: str = "content") -> dict[str, Any]:
    """A streamed chat record whose chunks carry ``pieces`` (in ``delta.content`` or tool-call arguments)."""
    chunks = []
    for i, piece in enumerate(pieces):
        delta: dict[str, Any] = (
            {"content": piece}
            if field == "content"
            else {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        )
        chunks.append(
            {
                "__type__": "openai.types.chat.chat_completion_chunk.ChatCompletionChunk",
                "__data__": {
                    "id": "rec-5a7907387508",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "gpt-4o-mini-2024-08-06",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    "obfuscation": fake(f"obfuscation{i}", 10 + i % 7),
                },
            }
        )
    return {
        "request": {"method": "POST", "body": {"stream": True}},
        "response": {"body": chunks, "is_streaming": True},
    }


def responses_stream(pieces: list[str]) -> dict[str, Any]:
    """A streamed Responses API record: ``response.output_text.delta`` events carrying ``pieces``."""
    events = [
        {
            "__type__": "openai.types.responses.response_text_delta_event.ResponseTextDeltaEvent",
            "__data__": {
                "type": "response.output_text.delta",
                "sequence_number": i + 4,
                "item_id": "msg_5e4371b8754f565de1689ded27e8a0aa2d83b32fa320320001",
                "delta": piece,
                "obfuscation": fake(f"responses-obfuscation{i}", 12),
            },
        }
        for i, piece in enumerate(pieces)
    ]
    return {
        "request": {"method": "POST", "body": {"stream": True}},
        "response": {"body": events, "is_streaming": True},
    }


def split(secret: str, *cuts: int) -> list[str]:
    """``secret`` cut at ``cuts``, between some prose."""
    parts, at = [], 0
    for cut in cuts:
        parts.append(secret[at:cut])
        at = cut
    return ["Sure, the key is ", *parts, secret[at:], " and that is all."]


# --- fake credentials -------------------------------------------------------------------

OPENAI_CLASSIC = "sk-" + fake("openai1", 20) + "T3BlbkFJ" + fake("openai2", 20)
OPENAI_PROJECT = (
    "sk-" + "proj-" + fake("openai-proj", 120, TOKEN) + "T3BlbkFJ" + fake("openai-proj2", 40, TOKEN)
)
OPENAI_PROJECT_UNMARKED = "sk-" + "proj-" + fake("openai-proj3", 48, TOKEN)
OPENAI_SVCACCT = "sk-" + "svcacct-" + fake("openai-svc", 48, TOKEN)
OPENAI_ADMIN = "sk-" + "admin-" + fake("openai-admin", 48, TOKEN)
SK_HEX = "sk-" + fake("deepseek", 32, HEX)
ANTHROPIC = "sk-" + "ant-api03-" + fake("anthropic", 93, TOKEN) + "AA"
ANTHROPIC_ADMIN = "sk-" + "ant-admin01-" + fake("anthropic-admin", 93, TOKEN) + "AA"
AZURE_OPENAI = fake("azure1", 52) + "JQQJ99" + fake("azure2", 26)
AWS_ID = "AKIA" + fake("aws-id", 16, UPPER27)
AWS_SECRET = fake("aws-secret", 40, B64)
GITHUB = "ghp_" + fake("github", 36)
GITHUB_FINE = "github_pat_" + fake("github-fine1", 22) + "_" + fake("github-fine2", 59)
GITLAB = "glpat-" + fake("gitlab", 20, TOKEN)
GOOGLE = "AIza" + fake("google", 35, TOKEN)
YA29 = "ya29." + fake("ya29", 120, TOKEN)
GOCSPX = "GOCSPX-" + fake("gocspx", 28, TOKEN)
PEM_BODY = "\n".join(fake(f"pem{i}", 64, B64) for i in range(6))
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
GCP_KEY = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
HF = "hf_" + fake("hf", 34, string.ascii_letters)
HF_ORG = "api_org_" + fake("hf-org", 34, string.ascii_letters)
GROQ = "gsk_" + fake("groq", 48)
REPLICATE = "r8_" + fake("replicate", 40)
PERPLEXITY = "pplx-" + fake("pplx", 48)
XAI = "xai-" + fake("xai", 80)
STRIPE = "sk_" + "live_" + fake("stripe", 24)
STRIPE_RESTRICTED = "rk_" + "live_" + fake("stripe-rk", 24)
NPM = "npm_" + fake("npm", 36)
PYPI = "pypi-" + "AgEIcHlwaS5vcmc" + fake("pypi", 70, TOKEN)
SENDGRID = "SG." + fake("sendgrid1", 22, TOKEN) + "." + fake("sendgrid2", 43, TOKEN)
DATABRICKS = "dapi" + fake("databricks", 32, HEX)
SLACK = (
    "xoxb-"
    + fake("slack1", 12, string.digits)
    + "-"
    + fake("slack2", 13, string.digits)
    + "-"
    + fake("slack3", 24)
)
SLACK_APP = "xapp-1-A" + fake("slack-app1", 10, UPPER27) + "-" + fake("slack-app2", 13, string.digits) + "-"
SLACK_APP += fake("slack-app3", 64, HEX)
SLACK_HOOK = (
    "https://hooks.slack.com/services/T" + fake("hook1", 8, UPPER27) + "/B" + fake("hook2", 10, UPPER27)
)
SLACK_HOOK += "/" + fake("hook3", 24)
SAS_SIG = fake("sas", 40, ALNUM) + "%2B" + fake("sas2", 3) + "%3D"
SAS_URL = (
    f"https://acct.blob.core.windows.net/files/report.pdf?sv=2022-11-02&se=2030-01-01&sr=b&sp=r&sig={SAS_SIG}"
)
ACCOUNT_KEY = fake("account-key", 86, B64) + "=="
JWT = (
    b64url('{"alg":"HS256","typ":"JWT"}')
    + "."
    + b64url('{"sub":"1234567890","name":"Alice","iat":1516239022}')
    + "."
    + fake("jwt-sig", 43, TOKEN)
)
BEARER = fake("bearer", 40, TOKEN)
BASIC = base64.b64encode(("alice:" + fake("basic", 16)).encode()).decode()
URL_PASSWORD = fake("url-password", 16)
API_KEY_VALUE = fake("api-key-field", 32, HEX)
ENV_VALUE = "env-" + fake("env", 24)


@dataclass(frozen=True)
class Form:
    """One true positive and one look-alike of a credential form."""

    name: str  # the rule id, or the form's name when it is not one rule
    record: dict[str, Any]
    path: str
    kind: str
    secret: str
    look_alike: dict[str, Any]
    detail: str | None = None
    also_allow: tuple[str, ...] = ()  # other secrets in the true positive
    environ: dict[str, str] | None = None
    rule: str | None = None  # the rule the true positive needs, if it is one rule


def form(
    name: str,
    text: str,
    secret: str,
    look_alike: str,
    kind: str,
    *,
    rule: str | None = "",
    also_allow: tuple[str, ...] = (),
) -> Form:
    """A form found in a chat message (``rule`` defaults to ``name``)."""
    return Form(
        name,
        message(text),
        MESSAGE,
        kind,
        secret,
        message(look_alike),
        also_allow=also_allow,
        rule=name if rule == "" else rule,
    )


SA_JSON = {
    "type": "service_account",
    "project_id": "vcr-ext-test",
    "private_key_id": fake("sa-key-id", 40, HEX),
    "private_key": GCP_KEY,
    "client_email": "recorder@vcr-ext-test.iam.gserviceaccount.com",
    "client_id": fake("sa-client", 21, string.digits),
}
SA_WITHOUT_KEY = {k: v for k, v in SA_JSON.items() if k != "private_key"}
EMBEDDING_1536 = base64.b64encode(struct.pack("<1536f", *(i / 1536 for i in range(1536)))).decode()
EMBEDDING_256 = base64.b64encode(struct.pack("<256f", *(i / 256 - 0.5 for i in range(256)))).decode()

FORMS: list[Form] = [
    form(
        "openai-api-key",
        f"my key is {OPENAI_CLASSIC}",
        OPENAI_CLASSIC,
        "sk-" + "x" * 20 + "T3BlbkFJ" + "x" * 20,
        "an OpenAI API key",
    ),
    form(
        "openai-project-key",
        f"key={OPENAI_PROJECT_UNMARKED}",
        OPENAI_PROJECT_UNMARKED,
        "set OPENAI_API_KEY=sk-" + "proj-your-project-key-goes-here",
        "an OpenAI API key",
    ),
    form(
        "openai-project-key[marked]",
        OPENAI_PROJECT,
        OPENAI_PROJECT,
        "sk-test",
        "an OpenAI API key",
        rule=None,
    ),
    form(
        "openai-project-key[svcacct]",
        OPENAI_SVCACCT,
        OPENAI_SVCACCT,
        "sk-" + "svcacct-",
        "an OpenAI API key",
        rule="openai-project-key",
    ),
    form(
        "openai-project-key[admin]",
        OPENAI_ADMIN,
        OPENAI_ADMIN,
        "sk-" + "admin-key rotation is in the dashboard",
        "an OpenAI API key",
        rule="openai-project-key",
    ),
    form(
        "sk-api-key",
        f"DEEPSEEK_API_KEY={SK_HEX}",
        SK_HEX,
        "sk-" + "learnCompatibleEstimatorsAndPipelines",
        "an sk- API key (OpenAI legacy, DeepSeek, LiteLLM, ...)",
    ),
    form(
        "anthropic-api-key",
        f"x-api-key: {ANTHROPIC}",
        ANTHROPIC,
        "sk-" + "ant-api03-" + "x" * 40,
        "an Anthropic API key",
    ),
    form(
        "anthropic-api-key[admin]",
        ANTHROPIC_ADMIN,
        ANTHROPIC_ADMIN,
        "sk-" + "ant-admin01-...",
        "an Anthropic API key",
        rule="anthropic-api-key",
    ),
    form(
        "azure-openai-key",
        f"api-key: {AZURE_OPENAI}",
        AZURE_OPENAI,
        "build JQQJ99" + fake("azure3", 26),
        "an Azure OpenAI key",
    ),
    form(
        "aws-secret-near-key-id",
        f"id {AWS_ID} key {AWS_SECRET}",
        AWS_SECRET,
        # The documentation's example id, and a sha1 beside it.
        "AKIAIOSFODNN7EXAMPLE 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        "an AWS secret access key",
        also_allow=(AWS_ID,),  # the id is a secret of its own, found when the secret is allowed
    ),
    form(
        "aws-secret-assigned",
        f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        AWS_SECRET,
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "an AWS secret access key",
    ),
    form(
        "aws-secret-field",
        f'{{"AccessKeyId": "temporary", "SecretAccessKey": "{AWS_SECRET}"}}',
        AWS_SECRET,
        '{"SecretAccessKey": "' + fake("aws-hex", 40, HEX) + '"}',
        "an AWS secret access key",
    ),
    Form(
        "aws-secret-access-key[json field]",
        {"request": {"body": {"aws_secret_access_key": AWS_SECRET}}},
        "request.body.aws_secret_access_key",
        "an AWS secret access key",
        AWS_SECRET,
        {"request": {"body": {"aws_secret_access_key": "<REDACTED>"}}},
    ),
    form(
        "aws-access-token",
        f"AWS_ACCESS_KEY_ID={AWS_ID}",
        AWS_ID,
        "AKIAIOSFODNN7EXAMPLE",
        "an AWS access key id",
    ),
    form(
        "aws-access-token[ASIA]",
        "ASIA" + fake("asia", 16, UPPER27),
        "ASIA" + fake("asia", 16, UPPER27),
        "AKIA" + "X" * 16,
        "an AWS access key id",
        rule="aws-access-token",
    ),
    form("github-pat", f"token {GITHUB}", GITHUB, "ghp_" + "x" * 36, "a GitHub token"),
    form(
        "github-pat[gho_]",
        "gho_" + fake("gho", 36),
        "gho_" + fake("gho", 36),
        "ghp_short",
        "a GitHub token",
        rule="github-pat",
    ),
    form("github-fine-grained-pat", GITHUB_FINE, GITHUB_FINE, "github_pat_" + "11ABCDEFG", "a GitHub token"),
    form(
        "gitlab-token",
        f"PRIVATE-TOKEN: {GITLAB}",
        GITLAB,
        "glpat-" + "x" * 20 + " glpat-" + "your-personal-token-here",
        "a GitLab token",
    ),
    form("gcp-api-key", f"?key={GOOGLE}", GOOGLE, "AIza" + "a" * 35, "a Google API key"),
    form(
        "google-oauth-access-token",
        f"Authorization: OAuth {YA29}",
        YA29,
        "ya29.example",
        "a Google OAuth access token",
    ),
    form(
        "google-oauth-client-secret",
        f'"client_secret_value": "{GOCSPX}"',
        GOCSPX,
        "Client Secret (looks like: GOCSPX-xxx)",
        "a Google OAuth client secret",
    ),
    form(
        "gcp-service-account-key",
        json.dumps(SA_JSON, indent=2),
        json.dumps(GCP_KEY.rstrip("\n"))[1:-1],  # as it is in the JSON text: newlines escaped
        json.dumps(SA_WITHOUT_KEY, indent=2),
        "a GCP service-account key",
    ),
    Form(
        "gcp-service-account-key[parsed]",
        {"request": {"body": {"credentials": SA_JSON}}},
        "request.body.credentials.private_key",
        "a GCP service-account key",
        GCP_KEY.rstrip("\n"),
        {"request": {"body": {"credentials": SA_WITHOUT_KEY}}},
    ),
    form(
        "private-key",
        f"deploy key:\n{PRIVATE_KEY}\n",
        PRIVATE_KEY,
        "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----",
        "a private key",
    ),
    form(
        "huggingface-access-token",
        f"HF_TOKEN={HF}",
        HF,
        "call hf_hub_download(repo_id=...)",
        "a Hugging Face token",
    ),
    form(
        "huggingface-organization-api-token",
        HF_ORG,
        HF_ORG,
        "api_org_" + "ids are listed below",
        "a Hugging Face token",
    ),
    form("groq-api-key", f"GROQ_API_KEY={GROQ}", GROQ, "GROQ_API_KEY=gsk_" + "x" * 48, "a Groq API key"),
    form(
        "replicate-api-token", f"r8 token {REPLICATE}", REPLICATE, "r8_" + "x" * 40, "a Replicate API token"
    ),
    form("perplexity-api-key", PERPLEXITY, PERPLEXITY, "model: pplx-70b-online", "a Perplexity API key"),
    form("xai-api-key", XAI, XAI, "see github.com/xai-org/grok-1", "an xAI API key"),
    form("stripe-access-token", STRIPE, STRIPE, "sk_" + "live_" + "x" * 24, "a Stripe secret key"),
    form(
        "stripe-access-token[rk_live_]",
        STRIPE_RESTRICTED,
        STRIPE_RESTRICTED,
        "rk_" + "live_",
        "a Stripe secret key",
        rule="stripe-access-token",
    ),
    form(
        "npm-access-token",
        f"//registry.npmjs.org/:_authToken={NPM}",
        NPM,
        "npm_config_registry",
        "an npm access token",
    ),
    form(
        "pypi-upload-token", f"password = {PYPI}", PYPI, "pypi-" + "AgEIcHlwaS5vcmc...", "a PyPI upload token"
    ),
    form("sendgrid-api-token", SENDGRID, SENDGRID, "SG.Singapore is a region", "a SendGrid API key"),
    form("databricks-api-token", DATABRICKS, DATABRICKS, "dapi" + "0" * 32, "a Databricks token"),
    form(
        "slack-token",
        SLACK,
        SLACK,
        "xoxo-kisses-and-hugs-everyone, xoxb-" + "your-token-here-123",
        "a Slack token",
    ),
    form("slack-app-token", SLACK_APP, SLACK_APP, "xapp-", "a Slack token"),
    form(
        "slack-webhook-url",
        f"post to {SLACK_HOOK}",
        SLACK_HOOK.removeprefix("https://"),
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "a Slack webhook URL",
    ),
    Form(
        "azure-sas-signature",
        {"request": {"method": "GET", "url": SAS_URL}},
        "request.url",
        "an Azure SAS signature",
        SAS_SIG,
        # A sig= that is no SAS: a webhook signature with no sv=/se=/sp= beside it.
        {"request": {"method": "GET", "url": "https://example.com/hook?sig=" + fake("webhook", 44)}},
        rule="azure-sas-signature",
    ),
    Form(
        "azure-sas-signature[location header]",
        {"response": {"body": {}, "headers": {"location": SAS_URL}}},
        "response.headers.location",
        "an Azure SAS signature",
        SAS_SIG,
        {"response": {"body": {}, "headers": {"location": SAS_URL.split("&sig=")[0]}}},
        rule="azure-sas-signature",
    ),
    Form(
        "azure-sas-signature[body]",
        {"response": {"body": {"data": [{"download_url": SAS_URL}]}}},
        "response.body.data[0].download_url",
        "an Azure SAS signature",
        SAS_SIG,
        {"response": {"body": {"data": [{"signature": "sig=" + fake("sig-prose", 44)}]}}},
        rule="azure-sas-signature",
    ),
    form(
        "azure-storage-account-key",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        ACCOUNT_KEY,
        # The storage emulator's published key, and a placeholder.
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        " AccountKey=<your-account-key>",
        "an Azure storage account key",
    ),
    form("jwt", f"id_token: {JWT}", JWT, "header eyJhbGciOiJIUzI1NiJ9 only", "a JSON Web Token"),
    form(
        "bearer-token",
        f"Authorization: Bearer {BEARER}",
        BEARER,
        "Send the Bearer token in the Authorization header: Bearer <token>",
        "a bearer token",
    ),
    form(
        "basic-auth",
        f"Authorization: Basic {BASIC}",
        BASIC,
        "Basic authentication; Basic dXNlcm5hbWU= is just 'username'",
        "basic-auth credentials",
    ),
    form(
        "url-credentials",
        f"DATABASE_URL=postgres://app:{URL_PASSWORD}@db.internal:5432/prod",
        URL_PASSWORD,
        "postgres://user:password@localhost:5432/db and http://[::1]:8000/v1",
        "credentials in a URL (user:password@)",
    ),
    Form(
        "credential-named field",
        {"request": {"body": {"model": "m", "api_key": API_KEY_VALUE}}},
        "request.body.api_key",
        "a value of a 'api_key' field",
        API_KEY_VALUE,
        {"request": {"body": {"api_key": "<REDACTED>", "api_key_id": API_KEY_VALUE, "password": "short"}}},
    ),
    Form(
        "environment value",
        message(f"echo {ENV_VALUE}"),
        MESSAGE,
        "the value of an API-key environment variable",
        ENV_VALUE,
        message("echo short-value"),
        environ={"MY_SERVICE_API_KEY": ENV_VALUE, "SHORT_TOKEN": "short-value"},
    ),
    Form(
        "split across stream chunks",
        chat_stream(split(OPENAI_PROJECT_UNMARKED, 5, 20, 40)),
        "response.body[1].__data__.choices[0].delta.content",
        "an OpenAI API key",
        OPENAI_PROJECT_UNMARKED,
        chat_stream(["Cassettes ", "record ", "every ", "chunk ", "of ", "a ", "stream."]),
        detail="reassembled across stream chunks 1..4",
    ),
    Form(
        "split across tool-call argument chunks",
        chat_stream(['{"token": "', GITHUB[:10], GITHUB[10:], '"}'], field="arguments"),
        "response.body[1].__data__.choices[0].delta.tool_calls[0].function.arguments",
        "a GitHub token",
        GITHUB,
        chat_stream(['{"city": "', "Par", "is", '"}'], field="arguments"),
        detail="reassembled across stream chunks 1..2",
    ),
    Form(
        "split across Responses API deltas",
        responses_stream(split(GROQ, 3, 30)),
        "response.body[1].__data__.delta",
        "a Groq API key",
        GROQ,
        responses_stream(["The ", "gsk_", " prefix ", "marks ", "Groq ", "keys."]),
        detail="reassembled across stream chunks 1..3",
    ),
    Form(
        "base64 of a credential",
        {
            "response": {
                "body": {"data": [{"b64_json": base64.b64encode(f"token={GITHUB}\n".encode()).decode()}]}
            }
        },
        "response.body.data[0].b64_json",
        "a GitHub token",
        GITHUB,
        # Embeddings: one too long to be decoded, one that decodes to bytes that are not text.
        {"response": {"body": {"data": [{"embedding": EMBEDDING_1536}, {"embedding": EMBEDDING_256}]}}},
        detail="base64-decoded",
    ),
    Form(
        "base64 split across stream chunks",
        chat_stream(split(base64.b64encode(f"key {GITHUB}".encode()).decode(), 8, 30)),
        "response.body[1].__data__.choices[0].delta.content",
        "a GitHub token",
        GITHUB,
        chat_stream(split(EMBEDDING_256, 400, 900)),
        detail="base64-decoded; reassembled across stream chunks 1..3",
    ),
]


def _found(f: Form, scanner: SecretScanner | None = None) -> vcr_ext.secrets.SecretHit | None:
    scanner = scanner or SecretScanner(environ=f.environ or {})
    return scanner.find_hit(f.record)


@pytest.mark.parametrize("f", FORMS, ids=lambda f: f.name)
def test_true_positive_is_found_with_its_kind_path_and_value(f: Form) -> None:
    hit = _found(f)
    assert hit is not None
    assert hit.kind in (f.kind, f"what looks like {f.kind}")
    assert hit.json_path == f.path
    assert hit.value == f.secret
    assert hit.detail == f.detail


@pytest.mark.parametrize("f", FORMS, ids=lambda f: f.name)
def test_look_alike_is_not_a_secret(f: Form) -> None:
    assert SecretScanner(environ=f.environ or {}).find_hit(f.look_alike) is None


@pytest.mark.parametrize("f", FORMS, ids=lambda f: f.name)
def test_allow_secrets_lets_each_form_through(f: Form) -> None:
    assert SecretScanner(allow=[f.secret, *f.also_allow], environ=f.environ or {}).find_hit(f.record) is None


@pytest.mark.parametrize("f", [f for f in FORMS if f.rule], ids=lambda f: f.name)
def test_each_true_positive_needs_its_rule(f: Form, monkeypatch: pytest.MonkeyPatch) -> None:
    without = tuple(rule for rule in RULES if rule.id != f.rule)
    assert len(without) == len(RULES) - 1
    monkeypatch.setattr(vcr_ext.secrets, "RULES", without)
    hit = _found(f)
    assert hit is None or (hit.kind, hit.value) != (f"what looks like {f.kind}", f.secret)


def test_every_rule_has_a_true_positive() -> None:
    assert {rule.id for rule in RULES} <= {f.rule for f in FORMS}
    assert len({f.kind for f in FORMS}) >= 20


# --- look-alikes in the shape of real recordings -------------------------------------------

BENIGN_TEXTS = [
    "Cassettes record HTTP interactions so tests can replay them without a network.",
    "123e4567-e89b-12d3-a456-426614174000",
    "chatcmpl-" + fake("chatcmpl", 29),
    "resp_" + fake("resp", 50, HEX),
    "call_" + fake("call", 24),
    "rec-5a7907387508",
    "req_" + fake("req", 32, HEX),
    fake("sha256", 64, HEX),
    "sk-test",
    "sk-...",
    "Bearer",
    "Bearer $OPENAI_API_KEY",
    "Authorization: Bearer <token>",
    "the bearer of bad news sent 3 letters",
    "x-api-key header",
    "AKIA",
    "eyJhbGciOiJIUzI1NiJ9",
    "https://api.openai.com/v1/chat/completions?api-version=2024-06-01",
    "https://example.blob.core.windows.net/container/file.txt",
    "fp_71b6c00d5b",
    "msg_" + fake("msg", 48, HEX),
    "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 4).decode(),
]


@pytest.mark.parametrize("text", BENIGN_TEXTS)
def test_ordinary_strings_are_not_secrets(text: str) -> None:
    record = {
        "request": {"body": {"input": text}},
        "response": {"body": {"output": text}, "headers": {"x": text}},
    }
    assert SecretScanner(environ={}).find_hit(record) is None


def test_a_stream_of_obfuscated_chunks_is_not_a_secret() -> None:
    # OpenAI pads every event with a random ``obfuscation`` string; joined they would be
    # one long random string, so they are never reassembled.
    pieces = [fake(f"piece{i}", 3, string.ascii_lowercase) + " " for i in range(400)]
    record = chat_stream(pieces)
    for i, chunk in enumerate(record["response"]["body"]):
        chunk["__data__"]["obfuscation"] = fake(f"pad{i}", 16)
    assert SecretScanner(environ={}).find_hit(record) is None


# -- bodies that are not text (stored as vcr_ext.raw.Base64) ------------------------------

BINARY_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def _record_binary(tmp_path: Path, *, body: bytes, upload: bool) -> Path:
    cassette = tmp_path / "c"
    with FakeOpenAIServer() as server, vcr_ext.VCR(record_mode="once").use_cassette(str(cassette)):
        if upload:
            created = b'{"id":"file-1","object":"file","bytes":1,"created_at":1,"filename":"a.bin",'
            created += b'"purpose":"assistants","status":"processed"}'
            server.enqueue("POST", "/v1/files", headers=[("content-type", "application/json")], body=created)
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
            client.files.create(file=("a.bin", body), purpose="assistants")
        else:
            binary = [("content-type", "application/octet-stream")]
            server.enqueue("GET", "/v1/files/file-1/content", headers=binary, body=body)
            httpx.get(server.base_url + "/files/file-1/content", timeout=10)
    return cassette


@pytest.mark.parametrize("upload", [False, True], ids=["download", "upload"])
@pytest.mark.parametrize("padding", [0, 20_000], ids=["small", "large"])
def test_a_key_inside_a_binary_body_stops_the_save(tmp_path: Path, upload: bool, padding: int) -> None:
    noise = bytes(range(256)) * (padding // 256)
    body = b"\x89PNG\r\n\x1a\n\xff\xfe\x00" + noise + b" key=" + BINARY_KEY.encode()
    with pytest.raises(SecretFoundError, match=r"OpenAI API key .*\(base64-decoded\)"):
        _record_binary(tmp_path, body=body, upload=upload)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("upload", [False, True], ids=["download", "upload"])
def test_a_binary_body_without_a_key_is_saved(tmp_path: Path, upload: bool) -> None:
    # Bytes of every value, printable runs included ("ordinary text between binary"), but no key.
    body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 80 + b"IHDR chunk of an ordinary image\x00\xff"
    cassette = _record_binary(tmp_path, body=body, upload=upload)
    assert any(cassette.glob("*.json"))


@pytest.mark.parametrize(
    "placeholder",
    ["scrubbed", "[REDACTED]", "<hidden>", "********", "xxxxxxxxxxxx", "changeme", "__removed__"],
)
def test_a_placeholder_in_a_credential_field_is_not_a_secret(placeholder: str) -> None:
    # pydantic-ai's test serializer writes "access_token": "scrubbed" into its cassettes.
    record = {"response": {"body": {"access_token": placeholder, "token_type": "Bearer"}}}
    assert SecretScanner().find([record]) is None


def test_a_real_looking_value_in_a_credential_field_still_is() -> None:
    record = {"response": {"body": {"access_token": "ya29.scrubbed0Zq8vT3kP1mX7nB2"}}}
    assert SecretScanner().find([record]) is not None
