"""What never reaches disk: request headers, response headers a client does not read, credentials in
URLs, and what the user's redaction rules name.

Response headers are filtered by an allow-list, not a deny-list: a new volatile or
identifying header that a provider starts sending (a cookie, a trace id, an org id) is
dropped by default instead of leaking into every cassette.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import canonical
from .json_values import map_strings
from .providers import bedrock

# The response headers the openai, anthropic and google-genai SDKs (and httpx-based clients generally) act on.
KEEP_RESPONSE_HEADERS = frozenset(
    {
        "content-type",  # decides JSON vs text parsing
        "x-request-id",  # exposed as ``_request_id`` and on API errors
        "request-id",  # Anthropic's: the anthropic SDK's ``_request_id``
        "retry-after",  # retry timing of 429/5xx
        "retry-after-ms",
        "x-should-retry",  # overrides the SDK's retry decision
        "openai-poll-after-ms",  # polling helpers
        "location",
        "content-disposition",  # file downloads
        *bedrock.RESPONSE_HEADERS,  # what botocore reads of Bedrock's: request id, error type, retry hint
        "x-goog-upload-url",  # google-genai uploads a file to the URL this gives
        "x-goog-upload-status",  # and reads whether the upload is active or final
    },
)
# Kept response headers whose value is a URL: they get the credential scrubbing the
# recorded request URL gets (a redirect to blob storage carries a SAS ``sig=``).
URL_RESPONSE_HEADERS = frozenset({"location", "content-location", "x-goog-upload-url"})


def response_headers(
    headers: Mapping[str, Iterable[str] | str],
    keep: Iterable[str] = KEEP_RESPONSE_HEADERS,
) -> dict[str, str]:
    """The kept response headers, lower-cased, in a stable (sorted) order, one value each.

    A URL-valued header (:data:`URL_RESPONSE_HEADERS`) is kept without the credentials
    :func:`scrub_url` removes.
    """
    allowed = {name.lower() for name in keep}
    kept: dict[str, str] = {}
    for name, values in headers.items():
        lname = name.lower()
        if lname not in allowed:
            continue
        if isinstance(values, str):
            kept[lname] = values
        else:
            listed = list(values)
            if listed:
                kept[lname] = ", ".join(listed)
        if lname in URL_RESPONSE_HEADERS and lname in kept:
            kept[lname] = scrub_url(kept[lname])
    return dict(sorted(kept.items()))


def scrub_url(url: str) -> str:
    """The URL without credentials: user info and secret query parameters (``api_key``, ``sig``) removed."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not canonical.is_secret_parameter(k)]
    query = urlencode(kept) if len(kept) != len(pairs) else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


REDACTED = "<REDACTED>"
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\*|\d+)\]")


def parse_path(path: str) -> list[str | int | None]:
    """``$.response.body[*].__data__.id`` -> ``["response", "body", None, "__data__", "id"]``.

    ``None`` stands for every key or item (``*`` and ``[*]``).
    """
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with '$': {path!r}")
    tokens: list[str | int | None] = []
    at = 1
    while at < len(path):
        m = _PATH_TOKEN.match(path, at)
        if m is None:
            raise ValueError(f"cannot read JSON path {path!r} at {path[at:]!r}")
        name, index = m.groups()
        if name is not None:
            tokens.append(None if name == "*" else name)
        else:
            tokens.append(None if index == "*" else int(index))
        at = m.end()
    return tokens


def _set_path(value: Any, tokens: list[str | int | None]) -> None:
    if not tokens:
        return
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict):
        keys = list(value) if head is None else [head] if head in value else []
    elif isinstance(value, list):
        keys = (
            list(range(len(value)))
            if head is None
            else [head]
            if isinstance(head, int) and head < len(value)
            else []
        )
    else:
        return
    for key in keys:
        if rest:
            _set_path(value[key], rest)
        else:
            value[key] = REDACTED


def _sub_strings(value: Any, patterns: Sequence[re.Pattern[str]]) -> Any:
    def redact(text: str) -> str:
        for pattern in patterns:
            text = pattern.sub(REDACTED, text)
        return text

    return map_strings(value, redact)


@dataclass(frozen=True)
class Redactions:
    """User rules for what else never reaches disk, from ``redact=[...]``.

    Each rule is a compiled regex (every match in request and response bodies and URLs
    becomes ``<REDACTED>``), a JSON path into the record starting with ``$``
    (``$.request.body.user``, ``$.response.body[*].__data__.system_fingerprint``; ``*``
    and ``[*]`` match every key or item), or a response header name (dropped even if
    it is kept by default or by ``keep_response_headers``).
    """

    patterns: tuple[re.Pattern[str], ...] = ()
    paths: tuple[tuple[str | int | None, ...], ...] = ()
    headers: frozenset[str] = frozenset()

    @classmethod
    def from_rules(cls, rules: Iterable[str | re.Pattern[str]]) -> Redactions:
        patterns, paths, headers = [], [], set()
        for rule in rules:
            if isinstance(rule, re.Pattern):
                patterns.append(rule)
            elif rule.startswith("$"):
                paths.append(tuple(parse_path(rule)))
            else:
                headers.add(rule.lower())
        return cls(tuple(patterns), tuple(paths), frozenset(headers))

    def __bool__(self) -> bool:
        return bool(self.patterns or self.paths or self.headers)

    def request_body(self, body: Any) -> Any:
        """A request body (parsed JSON) with the rules that reach into requests applied."""
        body = _sub_strings(body, self.patterns)
        wrapper = {"request": {"body": body}}
        for tokens in self.paths:
            if tokens[:2] in (("request", "body"), (None, "body")) or tokens[:1] == (None,):
                _set_path(wrapper, list(tokens))
        return wrapper["request"]["body"]

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record with every rule applied (a new object; the input is not changed)."""
        out: dict[str, Any] = _sub_strings(record, self.patterns)
        for tokens in self.paths:
            _set_path(out, list(tokens))
        headers = out.get("response", {}).get("headers")
        if isinstance(headers, dict) and self.headers:
            out["response"]["headers"] = {k: v for k, v in headers.items() if k.lower() not in self.headers}
            if not out["response"]["headers"]:
                del out["response"]["headers"]
        return out
