"""The credential forms the secret scanner knows: one :class:`Rule` per form, anchored on gitleaks.

Each rule's ``source`` names the gitleaks rule (``config/gitleaks.toml``, or
``cmd/generate/config/rules/*.go``) whose regex it follows, or says that gitleaks has
none. Where a rule departs from gitleaks it says why. The scanner (:mod:`vcr_ext.secrets`)
runs every rule over one text holding every distinct string of a save, with strings
separated by ``"\\x00"``; so no rule's character classes include ``\\x00``, and a rule
that needs to look around its match (a SAS query, a nearby AWS key id) is given the
bounds of the one string the match is in.

Speed matters: a save of 10,000 streamed records runs every rule over several megabytes.
Python's ``re`` finds a pattern quickly only when it starts with a literal (or a small
set of first characters), so patterns here start with their prefix and leave the
"not inside a longer word" test (gitleaks' leading ``\\b``) to :attr:`Rule.boundary`,
checked in Python on the rare candidate; ``re.IGNORECASE`` on a leading letter would
disable that search too, so case variants are spelled out (``(?:Bearer|bearer|BEARER)``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

Span = tuple[int, int]
# (text, match, start of the string holding the match, its end) -> the secret's span, or None to reject.
Check = Callable[[str, "re.Match[str]", int, int], "Span | None"]

SEPARATOR = "\x00"
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character (gitleaks' ``entropy`` threshold)."""
    n = len(text)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


def character_classes(text: str) -> int:
    """How many of lower-case letters, upper-case letters and digits ``text`` has."""
    return any(c.islower() for c in text) + any(c.isupper() for c in text) + any(c.isdigit() for c in text)


@dataclass(frozen=True)
class Rule:
    """One credential form.

    ``pattern`` finds candidates. Its group ``secret``, if any, is the value reported
    (else the whole match); its group ``body``, if any, is the random part
    ``min_entropy`` is measured on (else the secret), so a prefix such as ``sk_live_``
    cannot lift a placeholder (``sk_live_xxxxxxxx``) over the threshold. ``check`` may
    reject a candidate or move the span (the 52 characters before an Azure key's
    signature); ``examples`` are published sample values that are not secrets.

    ``classes`` is the least number of character classes (lower, upper, digit) the body
    has: key material has two or three, while a placeholder such as
    ``glpat-your-personal-token-here`` has one, whatever its entropy. ``digit`` asks for
    a digit and a letter, for forms whose look-alikes are words (``Bearer authentication``).
    """

    id: str
    kind: str
    pattern: re.Pattern[str]
    source: str
    min_entropy: float = 0.0
    boundary: bool = True
    digit: bool = False
    classes: int = 2
    check: Check | None = None
    examples: frozenset[str] = frozenset()

    def accept(self, text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
        """The span of the secret this candidate is, or ``None`` if it is not one."""
        start = m.start()
        if self.boundary and start > lo and text[start - 1] in _WORD:
            return None
        groups = self.pattern.groupindex
        span = m.span("secret") if "secret" in groups and m.group("secret") else m.span()
        if self.check is not None:
            checked = self.check(text, m, lo, hi)
            if checked is None:
                return None
            span = checked
        secret = text[span[0] : span[1]]
        body = m.group("body") if "body" in groups and m.group("body") else secret
        if self.digit and not (_has_digit(body) and any(c.isalpha() for c in body)):
            return None
        if self.classes and character_classes(body) < self.classes:
            return None
        if self.min_entropy and entropy(body) < self.min_entropy:
            return None
        if secret in self.examples:
            return None
        return span


# --- checks ------------------------------------------------------------------------------

_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _azure_openai_key(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # The pattern starts at the signature so that ``re`` can search for it; the key is
    # the 52 alphanumerics before it, and must not continue a longer run.
    start = m.start() - 52
    if start < lo or not all(c in _ALNUM for c in text[start : m.start()]):
        return None
    if start > lo and text[start - 1] in _ALNUM:
        return None
    return start, m.end()


def _not_example_aws(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # gitleaks' allowlist for aws-access-token: AWS documentation ids end in EXAMPLE.
    return None if m.group(0).endswith("EXAMPLE") else m.span()


_AWS_SECRET_VALUE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_NEAR = 400  # characters either side of an access key id searched for its secret


def _looks_like_aws_secret(value: str) -> bool:
    # 40 characters of base64 with both cases and a digit: rules out sha1 hex, words, paths.
    return (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and _has_digit(value)
        and entropy(value) >= 3.0
        and not value.endswith("EXAMPLEKEY")
    )


def _aws_secret_near_key_id(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # gitleaks' aws-secret-access-key is a sub-rule reported with an access key id; here
    # the 40-character secret in the same string as an id, within a few lines of it.
    if m.group(0).endswith("EXAMPLE"):
        return None
    window_lo, window_hi = max(lo, m.start() - _AWS_NEAR), min(hi, m.end() + _AWS_NEAR)
    for s in _AWS_SECRET_VALUE.finditer(text, window_lo, window_hi):
        if _looks_like_aws_secret(s.group(0)):
            return s.span()
    return None


def _aws_secret_assigned(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    return m.span("secret") if _looks_like_aws_secret(m.group("secret")) else None


_SAS_FIELD = re.compile(r"(?:^|[?&\s\"'])(?:sv|se|sp)=[^&\s\"'\x00]")
_SAS_NEAR = 2000


def _azure_sas(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # ``sig=`` is a SAS signature only as a query parameter next to the SAS fields: the
    # signed version (sv), expiry (se) or permissions (sp).
    start = m.start()
    if start > lo and text[start - 1] not in "?&\"' \t\n":
        return None
    window = text[max(lo, start - _SAS_NEAR) : min(hi, m.end() + _SAS_NEAR)]
    return m.span("secret") if _SAS_FIELD.search(window) else None


_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY_MAX = 16_384


def _private_key(text: str, m: re.Match[str], lo: int, hi: int) -> Span:
    # Report the whole block when its end is in the same string, so allow_secrets can
    # name one key; a header alone (a truncated key) is still reported.
    end = _PRIVATE_KEY_END.search(text, m.end(), min(hi, m.end() + _PRIVATE_KEY_MAX))
    return (m.start(), end.end() if end else m.end())


def _gcp_service_account(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # gitleaks' gcp-service-account-key: a private key inside a service-account JSON.
    # The JSON may sit in a string escaped once or more, so look for the names only.
    if text.find("service_account", lo, hi) < 0 or text.find("private_key", lo, hi) < 0:
        return None
    return _private_key(text, m, lo, hi)


_PLACEHOLDER_PASSWORD = re.compile(
    r"(?i)^(?:change(?:it|me)|pass(?:word)?|passwd|pwd|secret|test|token|\*+|x+|\.+)$"
    r"|^<[^>]*>$|^\$\{[^}]*\}$|^\$[A-Za-z_]\w*$|^\{\{[^}]*\}\}$|^%[A-Za-z_]\w*%$"
)


# What recorders and people put where a credential was: "scrubbed" (pydantic-ai's test
# serializer), "[REDACTED]", "<hidden>", "***", ... A word with no digit, not key material.
_PLACEHOLDER_VALUE = re.compile(
    r"(?i)^[\[<({*_-]*(?:scrubbed|redacted|removed|hidden|masked|filtered|omitted|placeholder|dummy|fake"
    r"|sanitized|obfuscated|censored|elided)[\]>)}*_-]*$"
)


def is_placeholder(value: str) -> bool:
    """Whether a credential field's value is only a placeholder for one (``"scrubbed"``, ``"<token>"``)."""
    return bool(_PLACEHOLDER_VALUE.match(value) or _PLACEHOLDER_PASSWORD.search(value))


def _url_credentials(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # gitleaks' curl-auth-user allowlist: placeholders and template variables are not passwords.
    return None if _PLACEHOLDER_PASSWORD.search(m.group("secret")) else m.span("secret")


def _basic_auth(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    value = m.group("secret")
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon or not user or not password or not decoded.isprintable():
        return None
    return None if _PLACEHOLDER_PASSWORD.search(password) else m.span("secret")


def _without_openai_marker(text: str, m: re.Match[str], lo: int, hi: int) -> Span | None:
    # Keys with the OpenAI marker belong to the openai-api-key rule, so that each rule
    # has keys only it catches (and a test that fails when it is removed).
    return None if "T3BlbkFJ" in m.group(0) else m.span()


# --- the rules -----------------------------------------------------------------------------

_END_ALNUM = r"(?![A-Za-z0-9])"
_END_TOKEN = r"(?![A-Za-z0-9_-])"

RULES: tuple[Rule, ...] = (
    # Provider keys with a distinctive prefix come first: where two rules match in the
    # same string the earlier rule names what was found.
    Rule(
        "openai-api-key",
        "an OpenAI API key",
        re.compile(
            r"sk-(?:(?:proj|svcacct|admin)-(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})T3BlbkFJ"
            r"(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})" + _END_TOKEN
        ),
        "gitleaks openai-api-key (the T3BlbkFJ marker)",
        min_entropy=3.0,
    ),
    Rule(
        "openai-project-key",
        "an OpenAI API key",
        re.compile(r"sk-(?:proj|svcacct|admin)-(?P<body>[A-Za-z0-9_-]{20,})"),
        "gitleaks openai-api-key, without its T3BlbkFJ marker and lengths: the sk-proj-/"
        "sk-svcacct-/sk-admin- prefix is specific enough, and a truncated key still leaks",
        min_entropy=3.0,
        digit=True,
    ),
    Rule(
        "sk-api-key",
        "an sk- API key (OpenAI legacy, DeepSeek, LiteLLM, ...)",
        re.compile(r"sk-(?!ant-|proj-|svcacct-|admin-)(?P<body>[A-Za-z0-9]{32,})" + _END_TOKEN),
        "none in gitleaks: the previous scanner's catch-all sk- rule, kept for OpenAI-compatible providers",
        min_entropy=3.5,
        digit=True,
        check=_without_openai_marker,
    ),
    Rule(
        "anthropic-api-key",
        "an Anthropic API key",
        re.compile(r"sk-ant-(?:api|admin|oat|ort)\d\d-(?P<body>[A-Za-z0-9_-]{20,})"),
        "gitleaks anthropic-api-key, anthropic-admin-api-key, anthropic-oauth-token "
        "(any length from 20: a truncated key still leaks)",
        min_entropy=3.0,
    ),
    Rule(
        "azure-openai-key",
        "an Azure OpenAI key",
        re.compile(r"JQQJ99[A-Za-z0-9]{26}" + _END_ALNUM),
        "none in gitleaks: the JQQJ99 signature at character 52 of Azure AI services' 84-character keys",
        boundary=False,
        check=_azure_openai_key,
        min_entropy=3.0,
    ),
    Rule(
        "aws-secret-near-key-id",
        "an AWS secret access key",
        re.compile(r"A(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)[A-Z2-7]{16}(?![A-Za-z0-9_])"),
        "gitleaks aws-secret-access-key (a sub-rule: 40 base64 characters, entropy 3) "
        "next to an aws-access-token",
        check=_aws_secret_near_key_id,
        classes=0,
    ),
    Rule(
        "aws-secret-assigned",
        "an AWS secret access key",
        re.compile(
            r"[Aa](?i:ws)[A-Za-z0-9_.-]{0,20}?(?i:secret)[A-Za-z0-9_.-]{0,20}?[\"'\\]{0,3}[ \t]*"
            r"(?:=>|:=|[:=])[ \t]*[\"'\\]{0,3}(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        "gitleaks aws-secret-access-key, in context: assigned to a name with aws and secret in it",
        check=_aws_secret_assigned,
        classes=0,
    ),
    Rule(
        "aws-secret-field",
        "an AWS secret access key",
        re.compile(
            r"[Ss](?i:ecret)[_-]?(?i:access)[_-]?(?i:key)[\"'\\]{0,3}[ \t]*(?:=>|:=|[:=])[ \t]*"
            r"[\"'\\]{0,3}(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        "gitleaks aws-secret-access-key, in context: SecretAccessKey / secret_access_key (STS, boto)",
        check=_aws_secret_assigned,
        classes=0,
    ),
    Rule(
        "aws-access-token",
        "an AWS access key id",
        re.compile(r"A(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)[A-Z2-7]{16}(?![A-Za-z0-9_])"),
        "gitleaks aws-access-token (AKIA/ASIA/ABIA/ACCA/A3T, entropy 3, ids ending EXAMPLE allowed)",
        min_entropy=3.0,
        check=_not_example_aws,
    ),
    Rule(
        "github-pat",
        "a GitHub token",
        re.compile(r"gh[pousr]_(?P<body>[A-Za-z0-9]{36,255})" + _END_ALNUM),
        "gitleaks github-pat, github-oauth, github-app-token, github-refresh-token",
        min_entropy=3.0,
    ),
    Rule(
        "github-fine-grained-pat",
        "a GitHub token",
        re.compile(r"github_pat_(?P<body>[A-Za-z0-9_]{82,})"),
        "gitleaks github-fine-grained-pat",
        min_entropy=3.0,
    ),
    Rule(
        "gitlab-token",
        "a GitLab token",
        re.compile(r"gl(?:pat|dt|ptt|rt|ft|cbt|oas|soat|imt|agent|ffct)-(?P<body>[0-9A-Za-z_.-]{20,})"),
        "gitleaks gitlab-pat (and -pat-routable, -deploy-token, -ptt, -runner-authentication-token, ...)",
        min_entropy=3.0,
    ),
    Rule(
        "gcp-api-key",
        "a Google API key",
        re.compile(r"AIza(?P<body>[A-Za-z0-9_-]{35})" + _END_TOKEN),
        "gitleaks gcp-api-key (entropy 4)",
        min_entropy=4.0,
    ),
    Rule(
        "google-oauth-access-token",
        "a Google OAuth access token",
        re.compile(r"ya29\.(?P<body>[0-9A-Za-z_-]{20,})"),
        "none in gitleaks: Google's ya29. access-token prefix",
        min_entropy=3.0,
    ),
    Rule(
        "google-oauth-client-secret",
        "a Google OAuth client secret",
        re.compile(r"GOCSPX-(?P<body>[A-Za-z0-9_-]{28})" + _END_TOKEN),
        "none in gitleaks: Google's GOCSPX- client-secret prefix",
        min_entropy=3.0,
    ),
    Rule(
        "gcp-service-account-key",
        "a GCP service-account key",
        re.compile(r"-----BEGIN PRIVATE KEY-----"),
        "gitleaks gcp-service-account-key (a private key in a JSON with type service_account)",
        boundary=False,
        check=_gcp_service_account,
        classes=0,
    ),
    Rule(
        "private-key",
        "a private key",
        _PRIVATE_KEY_BEGIN,
        "gitleaks private-key (the BEGIN line is enough: a truncated key still leaks)",
        boundary=False,
        check=_private_key,
        classes=0,
    ),
    Rule(
        "huggingface-access-token",
        "a Hugging Face token",
        re.compile(r"hf_(?P<body>[A-Za-z]{34})(?![A-Za-z0-9_])"),
        "gitleaks huggingface-access-token",
        min_entropy=2.0,
    ),
    Rule(
        "huggingface-organization-api-token",
        "a Hugging Face token",
        re.compile(r"api_org_(?P<body>[A-Za-z]{34})(?![A-Za-z0-9_])"),
        "gitleaks huggingface-organization-api-token",
        min_entropy=2.0,
    ),
    Rule(
        "groq-api-key",
        "a Groq API key",
        re.compile(r"gsk_(?P<body>[A-Za-z0-9]{48})" + _END_ALNUM),
        "gitleaks groq-api-key (entropy 4)",
        min_entropy=4.0,
    ),
    Rule(
        "replicate-api-token",
        "a Replicate API token",
        re.compile(r"r8_(?P<body>[A-Za-z0-9]{40})" + _END_ALNUM),
        "gitleaks replicate-api-token",
        min_entropy=2.0,
    ),
    Rule(
        "perplexity-api-key",
        "a Perplexity API key",
        re.compile(r"pplx-(?P<body>[A-Za-z0-9]{48})" + _END_ALNUM),
        "gitleaks perplexity-api-key (entropy 4)",
        min_entropy=4.0,
    ),
    Rule(
        "xai-api-key",
        "an xAI API key",
        re.compile(r"xai-(?P<body>[A-Za-z0-9]{80})" + _END_ALNUM),
        "gitleaks xai-api-key (entropy 4)",
        min_entropy=4.0,
    ),
    Rule(
        "stripe-access-token",
        "a Stripe secret key",
        re.compile(r"(?:sk|rk)_(?:test|live|prod)_(?P<body>[A-Za-z0-9]{10,99})" + _END_ALNUM),
        "gitleaks stripe-access-token (entropy on the random part, not the prefix)",
        min_entropy=3.0,
    ),
    Rule(
        "npm-access-token",
        "an npm access token",
        re.compile(r"npm_(?P<body>[A-Za-z0-9]{36})" + _END_ALNUM),
        "gitleaks npm-access-token",
        min_entropy=3.0,
    ),
    Rule(
        "pypi-upload-token",
        "a PyPI upload token",
        re.compile(r"pypi-AgEIcHlwaS5vcmc(?P<body>[A-Za-z0-9_-]{50,1000})"),
        "gitleaks pypi-upload-token",
        min_entropy=3.0,
    ),
    Rule(
        "sendgrid-api-token",
        "a SendGrid API key",
        re.compile(r"SG\.(?P<body>[A-Za-z0-9=_.-]{66})(?![A-Za-z0-9=_.-])"),
        "gitleaks sendgrid-api-token",
        min_entropy=3.0,
    ),
    Rule(
        "databricks-api-token",
        "a Databricks token",
        re.compile(r"dapi(?P<body>[a-f0-9]{32})(?:-\d)?" + _END_ALNUM),
        "gitleaks databricks-api-token (entropy 3)",
        min_entropy=3.0,
    ),
    Rule(
        "slack-token",
        "a Slack token",
        re.compile(r"xox(?:[bpeos]-\d+-(?P<body>[0-9A-Za-z-]{8,})|[ar]-(?:\d-)?[0-9A-Za-z]{8,48})"),
        "gitleaks slack-bot-token, -user-token, -legacy-token, -legacy-workspace-token, -config-*-token, "
        "in one: a numeric id after the prefix (or a workspace token)",
        min_entropy=2.0,
    ),
    Rule(
        "slack-app-token",
        "a Slack token",
        re.compile(r"xapp-\d-[A-Z0-9]+-\d+-(?P<body>[a-z0-9]+)"),
        "gitleaks slack-app-token",
        min_entropy=2.0,
    ),
    Rule(
        "slack-webhook-url",
        "a Slack webhook URL",
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<body>[A-Za-z0-9+/]{43,56})"),
        "gitleaks slack-webhook-url (plus entropy 3, so the documentation's T000/B000/XXXX passes)",
        boundary=False,
        min_entropy=3.0,
    ),
    Rule(
        "azure-sas-signature",
        "an Azure SAS signature",
        re.compile(r"sig=(?P<secret>[A-Za-z0-9%+/=_-]{16,})"),
        "none in gitleaks: sig= of an Azure shared-access-signature query (with sv=, se= or sp=)",
        boundary=False,
        min_entropy=3.0,
        check=_azure_sas,
    ),
    Rule(
        "azure-storage-account-key",
        "an Azure storage account key",
        re.compile(r"(?:AccountKey|SharedAccessKey)=(?P<secret>[A-Za-z0-9+/]{40,88}={0,2})"),
        "none in gitleaks: AccountKey= / SharedAccessKey= of an Azure connection string",
        min_entropy=4.0,
        # The storage emulator's published, well-known account key.
        examples=frozenset(
            {"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="}
        ),
    ),
    # Generic forms last: a provider rule that matches the same string names it better.
    Rule(
        "jwt",
        "a JSON Web Token",
        re.compile(r"ey[A-Za-z0-9_-]{17,}\.ey[A-Za-z0-9_/-]{17,}\.(?:[A-Za-z0-9_/-]{10,}={0,2})?"),
        "gitleaks jwt (entropy 3)",
        min_entropy=3.0,
    ),
    Rule(
        "bearer-token",
        "a bearer token",
        re.compile(r"(?:Bearer|bearer|BEARER)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)"),
        "gitleaks curl-auth-header (its Bearer branch, outside curl; a digit and entropy 3 keep prose out)",
        min_entropy=3.0,
        digit=True,
    ),
    Rule(
        "basic-auth",
        "basic-auth credentials",
        re.compile(r"(?:Basic|basic|BASIC)[ \t]+(?P<secret>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])"),
        "gitleaks curl-auth-header (its Basic branch, outside curl): base64 of user:password",
        check=_basic_auth,
        classes=0,
    ),
    Rule(
        "url-credentials",
        "credentials in a URL (user:password@)",
        re.compile(r"://[^\s:@/?#\x00\"'<>\\]{0,64}:(?P<secret>[^\s:@/?#\x00\"'<>\\]{3,128})@"),
        "gitleaks curl-auth-user (user:password, with its allowlist of placeholders), in any URL",
        boundary=False,
        check=_url_credentials,
        classes=0,
    ),
)

# Keys whose value is a credential whatever it looks like (an Azure ``api-key`` is 32 hex
# characters, indistinguishable from a request id by its text alone).
SECRET_KEYS = re.compile(
    r"^(?:api[-_]?key|x-api-key|subscription[-_]?key|ocp-apim-subscription-key|authorization|"
    r"client[-_]secret|secret[-_]?key|(?:aws[-_]?)?secret[-_]?access[-_]?key|password|"
    r"access[-_]token|refresh[-_]token)$",
    re.IGNORECASE,
)
AWS_SECRET_KEYS = re.compile(r"^(?:aws[-_]?)?secret[-_]?access[-_]?key$", re.IGNORECASE)
MIN_FIELD_SECRET = 8
GCP_SERVICE_ACCOUNT = next(rule for rule in RULES if rule.id == "gcp-service-account-key")

# Base64 or base64url text worth decoding: long enough to hold a credential, short enough
# that an embedding (a 1536-float vector is 8,192 characters) is never decoded.
B64_MIN, B64_MAX = 20, 4096
B64_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9+/_=-])(?:[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_-]{20,}={0,2})(?![A-Za-z0-9+/_=-])"
)


def looks_like_aws_secret(value: str) -> bool:
    """Whether a field value has the shape of an AWS secret access key (for named fields)."""
    return bool(_AWS_SECRET_VALUE.fullmatch(value)) and _looks_like_aws_secret(value)


def private_key_block(text: str) -> str | None:
    """The private-key block in a string (BEGIN line to END line, or the BEGIN line alone)."""
    m = _PRIVATE_KEY_BEGIN.search(text)
    if m is None:
        return None
    start, end = _private_key(text, m, 0, len(text))
    return text[start:end]


def decode_base64(text: str) -> str | None:
    """The printable text a base64/base64url string encodes, or ``None`` if it encodes none."""
    if not B64_MIN <= len(text) <= B64_MAX + 2:
        return None
    core = text.rstrip("=")
    if len(core) % 4 == 1:  # no base64 text has this length
        return None
    padded = core + "=" * (-len(core) % 4)
    try:
        if "-" in core or "_" in core:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # Random bytes (an id, a hash, a float vector) are almost never UTF-8 text, let alone printable.
    if not decoded.replace("\n", " ").replace("\t", " ").replace("\r", " ").isprintable():
        return None
    return decoded
