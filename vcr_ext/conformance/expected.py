"""What the SDK should give for a recording, and where a replayed result first differs from it."""

from __future__ import annotations

import base64
import struct
from typing import Any

from .. import explain, sdk_types


def rebuild(item: Any) -> Any:
    """A recorded ``{"__type__", "__data__"}`` value rebuilt as the SDK builds it from the wire, dumped.

    openai objects are built without validation (``construct_type``), as the SDK does
    with a response body; ollama objects with ``Cls(**data)``, as the ollama client does.
    """
    if not (isinstance(item, dict) and "__type__" in item and "__data__" in item):
        return item
    type_name, data = item["__type__"], item["__data__"]
    if not isinstance(type_name, str) or type_name.startswith("vcr_ext."):
        return data
    return dump(sdk_types.build(type_name, data))


def dump(obj: Any) -> Any:
    """A parsed SDK object as JSON-like values (``model_dump(mode="json")``), embeddings as float lists."""
    value = obj.model_dump(mode="json", warnings=False) if hasattr(obj, "model_dump") else obj
    return _float_embeddings(value)


def _float_embeddings(value: Any) -> Any:
    data = value.get("data") if isinstance(value, dict) and value.get("object") == "list" else None
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("embedding"), str):
                raw = base64.b64decode(item["embedding"])
                item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return value


def expected(record: dict[str, Any]) -> Any:
    """What the SDK should give for the record's response: a list for streams and model lists."""
    body = record["response"]["body"]
    if isinstance(body, list):
        return [rebuild(item) for item in body]
    return rebuild(body)


def expected_tool_calls(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a recorded chat stream, its deltas accumulated as the SDK accumulates the wire.

    Strings (``id``, ``function.name``, ``function.arguments``) are concatenated and
    absent or ``null`` values skipped, exactly as ``chat.completions.stream()`` does with
    the deltas the live API sent (the wire never carries llama-stack's explicit nulls).
    One ``{"choice", "id", "name", "arguments"}`` per call, by choice then call index.
    """
    calls: dict[tuple[int, int], dict[str, Any]] = {}
    for item in record["response"]["body"]:
        data = item.get("__data__") if isinstance(item, dict) else None
        for choice in (data or {}).get("choices") or []:
            delta = choice.get("delta") or {}
            for tc in delta.get("tool_calls") or []:
                key = (choice.get("index", 0), tc.get("index", 0))
                acc = calls.setdefault(key, {"choice": key[0], "id": None, "name": None, "arguments": None})
                function = tc.get("function") or {}
                _concat(acc, "id", tc.get("id"))
                _concat(acc, "name", function.get("name"))
                _concat(acc, "arguments", function.get("arguments"))
    return [calls[key] for key in sorted(calls)]


def _concat(acc: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        return
    acc[key] = acc[key] + value if isinstance(acc.get(key), str) and isinstance(value, str) else value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_difference(recorded: Any, replayed: Any, path: str = "response") -> str | None:
    """Where two JSON-like values first differ (``response[3].choices[0].delta.content: ...``), or ``None``.

    Exact: floats must be equal, and a number's type (int, float, bool) must be the same.
    """
    found = explain.differences(recorded, replayed, path)
    if not found:
        return None
    first = found[0]
    if first.kind == "removed":
        return f"{first.path}: recorded {_short(first.recorded)}, missing from the replay"
    if first.kind == "added":
        return f"{first.path}: not recorded, replayed {_short(first.request)}"
    return f"{first.path}: recorded {_short(first.recorded)}, replayed {_short(first.request)}"
