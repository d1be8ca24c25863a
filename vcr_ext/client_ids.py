"""The ``client-ids`` matching rule: ids a client makes up compare by where they first appear.

A tool loop sends ids back to the API to tie each tool result to its call. When the
API made the id (OpenAI's ``call_…``, Anthropic's ``toolu_…``), replay hands the client
the recorded one, and a request that sends back another is asking something else.
When the client made it up (pydantic-ai's ``pyd_ai_<uuid>`` for Gemini, which sends
none), every run sends a new one, and only its pattern means anything: which call a
result answers, which ids are the same. So in the canonical body an id no recorded
response of the cassette holds becomes ``<client id #n>``, ``n`` counting the distinct
such ids in the order they first appear in the request.

The id fields (:func:`slots`) are named one by one, by API: a field of another name
keeps its value, because most other ids (``previous_response_id``, ``file_id``, a
stored prompt's ``id``) name something on the server, chosen, not invented.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

WHY = (
    "Ids that tie a tool result to its call are compared by value when a recorded response of the "
    "cassette holds them (sending back another call's id is a miss), and otherwise, ids the client made "
    "up (pydantic-ai's `pyd_ai_…` for Gemini, a framework's own call ids), by where they first appear "
    "in the request: a fresh id each run matches, two invented ids swapped or made equal do not. "
    "The fields: `messages[].tool_calls[].id` and `messages[].tool_call_id` (OpenAI chat and the APIs "
    "that copy it), `messages[].content[]` `*tool_use` block `id` and any block's `tool_use_id` "
    "(Anthropic), `toolUse.toolUseId` and `toolResult.toolUseId` (Bedrock Converse), `input[].id` and "
    "`input[].call_id` (Responses), `contents[].parts[].functionCall.id` and `functionResponse.id` "
    "(Gemini). Other ids (`previous_response_id`, `file_id`, a stored prompt's `id`) name something "
    "on the server and are compared by value. Request headers, idempotency keys among them, are not "
    "matched at all: recordings do not keep them."
)
"""The rule's row in the README's rules table (see :func:`vcr_ext.canonical.rules_table`)."""

_PLACEHOLDER = re.compile(r"<client id #\d+>\Z")

# Any JSON string under a key that names an id (``id``, ``*_id``, ``*Id``), wherever it
# sits in a response body: a JSON document, SSE ``data:`` lines, the JSON payloads of an
# AWS event stream. Two patterns with a literal start, which the regex engine looks for
# fast: one pattern for the three key forms scanned ~4 times slower.
_STRING = rb'\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"'
_LOWER_ID = re.compile(rb'id"' + _STRING)
_CAMEL_ID = re.compile(rb'Id"' + _STRING)
_BEFORE_LOWER_ID = frozenset({b'"', b"_"})

Slot = tuple[dict[str, Any], str, tuple[str | int, ...]]
"""Where an id sits: the object holding it, its key, and its path (keys and list positions)."""

TAG = "_vcr_ext_response_ids"
_CALL_PARTS = ("functionCall", "function_call", "functionResponse", "function_response")


def slots(body: Any) -> list[Slot]:
    """The id fields of a request body, in document order (list order; fixed key order within an item).

    Only the fields of the rule's table are visited, so the cost is one step per
    message, part and call, whatever the size of the rest of the body. Written as
    plain loops: this runs for every body the matcher keys.
    """
    found: list[Slot] = []
    if not isinstance(body, dict):
        return found
    messages = body.get("messages")
    for m, message in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(message, dict):
            continue
        calls = message.get("tool_calls")
        for c, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                found.append((call, "id", ("messages", m, "tool_calls", c, "id")))
        if isinstance(message.get("tool_call_id"), str):
            found.append((message, "tool_call_id", ("messages", m, "tool_call_id")))
        content = message.get("content")
        for b, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if isinstance(kind, str) and kind.endswith("tool_use") and isinstance(block.get("id"), str):
                found.append((block, "id", ("messages", m, "content", b, "id")))
            if isinstance(block.get("tool_use_id"), str):
                found.append((block, "tool_use_id", ("messages", m, "content", b, "tool_use_id")))
            for key in ("toolUse", "toolResult"):
                inner = block.get(key)
                if isinstance(inner, dict) and isinstance(inner.get("toolUseId"), str):
                    found.append((inner, "toolUseId", ("messages", m, "content", b, key, "toolUseId")))
    items = body.get("input")
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, dict):
            for key in ("id", "call_id"):
                if isinstance(item.get(key), str):
                    found.append((item, key, ("input", i, key)))
    contents = body.get("contents")
    for c, turn in enumerate(contents if isinstance(contents, list) else ()):
        parts = turn.get("parts") if isinstance(turn, dict) else None
        for p, part in enumerate(parts if isinstance(parts, list) else ()):
            if not isinstance(part, dict):
                continue
            # google-genai writes camelCase; the API accepts the proto's snake_case names too.
            for key in _CALL_PARTS:
                inner = part.get(key)
                if isinstance(inner, dict) and isinstance(inner.get("id"), str):
                    found.append((inner, "id", ("contents", c, "parts", p, key, "id")))
    return found


def path_text(path: tuple[str | int, ...]) -> str:
    """A slot's path as miss explanations write it: ``messages[2].tool_call_id``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def replace(body: Any, produced: Container[str]) -> None:
    """Replace, in place, every id of ``body`` that ``produced`` lacks by its placeholder."""
    invented: dict[str, str] = {}
    for owner, key, _ in slots(body):
        value = owner[key]
        if value not in produced:
            placeholder = invented.get(value)
            if placeholder is None:
                placeholder = invented[value] = f"<client id #{len(invented) + 1}>"
            owner[key] = placeholder


def is_placeholder(value: Any) -> bool:
    """Whether a canonical value is the placeholder of an invented id."""
    return isinstance(value, str) and _PLACEHOLDER.match(value) is not None


def explain_change(
    path: str, recorded: Any, request: Any, recorded_body: Any, produced: Container[str]
) -> str | None:
    """What a miss explanation should add when the value at ``path`` is an id; ``None`` if it is not."""
    if (
        isinstance(recorded, str)
        and recorded in produced
        and path in {path_text(p) for _, _, p in slots(recorded_body)}
    ):
        return "(the recorded id came from a recorded response: the request must send it back as it is)"
    if is_placeholder(recorded) or is_placeholder(request):
        return (
            "(ids no recorded response holds are compared by where they first appear in the request: "
            "here the request has another id than the recording)"
        )
    return None


def _response_body(response: Mapping[str, Any]) -> bytes:
    try:
        body = response["body"]["string"]
    except (KeyError, TypeError):
        return b""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return body if isinstance(body, bytes) else b""


def ids_in(raw: bytes) -> set[str]:
    """The strings under id-named keys (``id``, ``*_id``, ``*Id``) anywhere in a response body's bytes."""
    tokens = {
        m.group(1) for m in _LOWER_ID.finditer(raw) if raw[m.start() - 1 : m.start()] in _BEFORE_LOWER_ID
    }
    tokens.update(_CAMEL_ID.findall(raw))
    found: set[str] = set()
    for token in tokens:
        try:
            found.add(json.loads(b'"' + token + b'"') if b"\\" in token else token.decode("utf-8"))
        except ValueError:
            continue
    return found


class ResponseIds(Container[str]):
    """The ids a cassette's recorded responses hold, as replay serves them.

    Read from the response bytes the first time a request with an id field asks
    (a cassette whose requests carry none never pays for it), then kept up to date as
    responses are added. ``version`` changes when an added response holds an id that an
    earlier question found missing: match keys computed before then are stale.
    """

    def __init__(self, responses: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self._responses = responses
        self._ids: set[str] | None = None
        self._missing: set[str] = set()
        self._lock = threading.Lock()
        self.version = 0

    def _known(self) -> set[str]:
        with self._lock:
            if self._ids is None:
                ids: set[str] = set()
                for response in self._responses():
                    ids |= ids_in(_response_body(response))
                self._ids = ids
            return self._ids

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        known = self._ids if self._ids is not None else self._known()
        if value in known:
            return True
        self._missing.add(value)
        return False

    def add(self, response: Mapping[str, Any]) -> bool:
        """Take in a response just added to the cassette; ``True`` if keys computed before are now stale."""
        with self._lock:
            if self._ids is None:
                return False  # read with all the others when first needed
            new = ids_in(_response_body(response)) - self._ids
            self._ids |= new
            stale = not self._missing.isdisjoint(new)
            if stale:
                self.version += 1
                self._missing -= new
            return stale

    def __deepcopy__(self, memo: dict[int, Any]) -> ResponseIds:
        # Belongs to its cassette: vcrpy's copies of a tagged request share it.
        return self


def tag(request: Any, ids: ResponseIds) -> None:
    """Tell the ``canonical_body`` matcher which cassette's response ids ``request`` is matched against."""
    request.__dict__[TAG] = ids


def tag_of(request: Any) -> ResponseIds | None:
    """The response ids a request was tagged with, if any."""
    ids = request.__dict__.get(TAG)
    return ids if isinstance(ids, ResponseIds) else None
