"""Why a request did not match a recording: a short diff of two canonical bodies, and their likeness."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_LINES = 6
SNIPPET = 36


@dataclass(frozen=True)
class Difference:
    """One place two JSON values differ.

    ``kind`` is ``changed``, ``added`` (only in the request) or ``removed`` (only in the recording).
    """

    path: str
    kind: str
    recorded: Any = None
    request: Any = None


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def differences(recorded: Any, request: Any, path: str = "") -> list[Difference]:
    """Every place the request's value differs from the recorded one, in document order."""
    if isinstance(recorded, dict) and isinstance(request, dict):
        found: list[Difference] = []
        for key in [*recorded, *(k for k in request if k not in recorded)]:
            where = _child(path, key)
            if key not in request:
                found.append(Difference(where, "removed", recorded=recorded[key]))
            elif key not in recorded:
                found.append(Difference(where, "added", request=request[key]))
            else:
                found += differences(recorded[key], request[key], where)
        return found
    if isinstance(recorded, list) and isinstance(request, list):
        found = []
        for i in range(max(len(recorded), len(request))):
            where = _child(path, i)
            if i >= len(request):
                found.append(Difference(where, "removed", recorded=recorded[i]))
            elif i >= len(recorded):
                found.append(Difference(where, "added", request=request[i]))
            else:
                found += differences(recorded[i], request[i], where)
        return found
    if recorded == request and type(recorded) is type(request):
        return []
    return [Difference(path or "(body)", "changed", recorded, request)]


def similarity(recorded: Any, request: Any) -> int:
    """How many leaf values two JSON values share at the same path: the nearest recording shares most."""
    if isinstance(recorded, dict) and isinstance(request, dict):
        return sum(similarity(recorded[k], request[k]) for k in recorded if k in request)
    if isinstance(recorded, list) and isinstance(request, list):
        return sum(similarity(a, b) for a, b in zip(recorded, request, strict=False))
    return 1 if recorded == request else 0


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 2 * SNIPPET else text[: 2 * SNIPPET] + "…"


def _pair(recorded: Any, request: Any) -> tuple[str, str]:
    """The two values, cut to a window around their first differing character when they are long strings."""
    if not (isinstance(recorded, str) and isinstance(request, str)):
        return _short(recorded), _short(request)
    common = 0
    for a, b in zip(recorded, request, strict=False):
        if a != b:
            break
        common += 1
    start = max(0, common - SNIPPET // 2)

    def window(text: str) -> str:
        cut = text[start : common + SNIPPET]
        return (
            ("…" if start else "")
            + json.dumps(cut, ensure_ascii=False)[1:-1]
            + ("…" if common + SNIPPET < len(text) else "")
        )

    return f'"{window(recorded)}"', f'"{window(request)}"'


def describe(
    recorded: Any,
    request: Any,
    *,
    route: str,
    model: Any,
    note: Callable[[Difference], str | None] | None = None,
) -> str:
    """A few lines a person can act on: where the first difference is, then each difference.

    ``note`` may add a line under a difference (what a rule makes of that field).
    """
    found = differences(recorded, request)
    if not found:
        return f"{route}: the bodies are equal"
    lines = [f"{route}, model {model!r}: first difference at {found[0].path}"]
    for d in found[:MAX_LINES]:
        if d.kind == "changed":
            old, new = _pair(d.recorded, d.request)
            lines.append(f"  ~ {d.path}: recorded {old}")
            lines.append(f"    {' ' * len(d.path)}  request  {new}")
            extra = note(d) if note is not None else None
            if extra:
                lines.append(f"    {' ' * len(d.path)}  {extra}")
        elif d.kind == "added":
            lines.append(f"  + {d.path} (only in the request): {_short(d.request)}")
        else:
            lines.append(f"  - {d.path} (only in the recording): {_short(d.recorded)}")
    if len(found) > MAX_LINES:
        lines.append(f"  … and {len(found) - MAX_LINES} more difference(s)")
    return "\n".join(lines)
