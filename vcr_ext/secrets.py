"""The credential scanner: before a cassette is written, refuse to write one that holds a secret.

It looks at every string about to be written (request and response bodies, URLs,
headers) for credential patterns and for the value of any ``*_API_KEY`` (and
``*_TOKEN``, ``*_SECRET``) environment variable that is set. A hit raises
:class:`SecretFoundError` before anything is written, naming the cassette file and the
JSON path of the value. A known false positive is allowed explicitly with
``allow_secrets=[...]`` (exact strings or compiled patterns).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import VcrExtError

# What was found -> its pattern. The names appear in errors, so a person knows what to look for.
PATTERNS: dict[str, re.Pattern[str]] = {
    "an OpenAI API key": re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "an Anthropic API key": re.compile(r"\bsk-ant-[a-z0-9]+-[A-Za-z0-9_-]{20,}"),
    "an Azure OpenAI key": re.compile(r"\b[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{26}\b"),
    "a bearer token": re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*", re.IGNORECASE),
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    "a Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "a Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "a Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "a private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
}
# Keys whose value is a credential whatever it looks like (an Azure ``api-key`` is 32 hex
# characters, indistinguishable from a request id by its text alone).
SECRET_KEYS = re.compile(
    r"^(?:api[-_]?key|x-api-key|subscription[-_]?key|ocp-apim-subscription-key|authorization|"
    r"client[-_]secret|secret[-_]?key|aws[-_]secret[-_]access[-_]key|password|access[-_]token|refresh[-_]token)$",
    re.IGNORECASE,
)
ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY")
MIN_ENV_SECRET = 12


class SecretFoundError(VcrExtError):
    """A credential was about to be written to a cassette; nothing was written."""

    def __init__(self, file: str | os.PathLike[str], json_path: str, kind: str, value: str) -> None:
        self.file = os.fspath(file)
        self.json_path = json_path
        self.kind = kind
        super().__init__(
            f"refusing to write cassette file {self.file}: it would hold {kind} ({mask(value)}) at "
            f"{json_path}. Nothing was written; the cassette on disk is unchanged. Remove the secret "
            "(scrub it with redact=[...]), or if this is a known false positive allow it with "
            "allow_secrets=[...]."
        )


def mask(value: str) -> str:
    """Enough of a secret to recognise it, not enough to use it."""
    return f"{value[:6]}…{value[-3:]}" if len(value) > 12 else "…"


def environment_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """Values of set ``*_API_KEY``-like environment variables long enough to be credentials."""
    env = os.environ if environ is None else environ
    return sorted(
        {v for k, v in env.items() if k.upper().endswith(ENV_SUFFIXES) and len(v.strip()) >= MIN_ENV_SECRET},
    )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str, str | None]]:
    """Every string in a JSON value with its path, and the key it is the value of."""
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            yield where, str(k), None
            if isinstance(v, str):
                yield where, v, str(k)
            else:
                yield from _strings(v, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield f"{path}[{i}]", v, None
            else:
                yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value, None


@dataclass
class SecretScanner:
    """A persister save check: raises :class:`SecretFoundError` for the first secret about to be written."""

    allow: Sequence[str | re.Pattern[str]] = ()
    environ: dict[str, str] | None = None
    extra_patterns: dict[str, re.Pattern[str]] = field(default_factory=dict)

    def _allowed(self, found: str) -> bool:
        for rule in self.allow:
            if isinstance(rule, re.Pattern):
                if rule.fullmatch(found) or rule.search(found):
                    return True
            elif found == rule or rule in found:
                return True
        return False

    def find(
        self, value: Any, path: str = "", env_values: Sequence[str] | None = None
    ) -> tuple[str, str, str] | None:
        """The first ``(json_path, kind, secret)`` in a JSON value, or ``None``."""
        if env_values is None:
            env_values = environment_secrets(self.environ)
        patterns = {**PATTERNS, **self.extra_patterns}
        for where, text, key in _strings(value, path):
            if key is not None and SECRET_KEYS.match(key) and len(text) >= 8 and not self._allowed(text):
                return where, f"a value of a '{key}' field", text
            for kind, pattern in patterns.items():
                for m in pattern.finditer(text):
                    if not self._allowed(m.group(0)):
                        return where, f"what looks like {kind}", m.group(0)
            for secret in env_values:
                if secret in text and not self._allowed(secret):
                    return where, "the value of an API-key environment variable", secret
        return None

    def __call__(self, planned: Iterable[tuple[Path, dict[str, Any]]]) -> None:
        env_values = environment_secrets(self.environ)
        for file, record in planned:
            hit = self.find(record, env_values=env_values)
            if hit is not None:
                where, kind, secret = hit
                raise SecretFoundError(file, where, kind, secret)
