"""What never reaches disk: request headers, and every response header a client does not read.

Response headers are filtered by an allow-list, not a deny-list: a new volatile or
identifying header that a provider starts sending (a cookie, a trace id, an org id) is
dropped by default instead of leaking into every cassette.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# The response headers the openai SDK (and httpx-based clients generally) act on.
KEEP_RESPONSE_HEADERS = frozenset(
    {
        "content-type",  # decides JSON vs text parsing
        "x-request-id",  # exposed as ``_request_id`` and on API errors
        "retry-after",  # retry timing of 429/5xx
        "retry-after-ms",
        "x-should-retry",  # overrides the SDK's retry decision
        "openai-poll-after-ms",  # polling helpers
        "location",
        "content-disposition",  # file downloads
    },
)


def response_headers(
    headers: Mapping[str, Iterable[str] | str],
    keep: Iterable[str] = KEEP_RESPONSE_HEADERS,
) -> dict[str, str]:
    """The kept response headers, lower-cased, in a stable (sorted) order, one value each."""
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
    return dict(sorted(kept.items()))
