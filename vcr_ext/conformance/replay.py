"""Replaying one case through its SDK client, sync, async or through ``chat.completions.stream()``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from dataclasses import dataclass
from typing import Any

from .. import canonical
from .calls import CLIENTS, Call, build_call, make_client, resolve
from .cases import ASYNC, ASYNC_HELPER, HELPER, SYNC, Case, first_line, load_record
from .expected import dump, expected, expected_tool_calls, first_difference


@dataclass(frozen=True)
class Outcome:
    """The result of replaying one case in one mode; ``detail`` says why it failed (or was skipped)."""

    case: Case
    ok: bool
    detail: str = ""
    mode: str = SYNC
    skipped: bool = False


def describe_exception(exc: BaseException) -> str:
    """``Type: first line``, following an SDK's wrapping (``APIConnectionError`` <- the real cause)."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    names = " <- ".join(type(e).__name__ for e in chain)
    root = chain[-1]
    message = str(root)
    if type(root).__name__ == "CannotOverwriteExistingCassetteException":
        return f"{names}: {_summarize_miss(message)}"
    return f"{names}: {first_line(message)}"


_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+)")
_DIFF_LINE = re.compile(r"^([-+~] |.*first difference at|\w+ differs$|Matchers failed)")


def _summarize_miss(message: str, limit: int = 400) -> str:
    """vcrpy's long miss message cut to the request sent and how the closest recording differs."""
    lines = [line.strip().rstrip(":") for line in message.splitlines() if line.strip()]
    sent = next((m for m in map(_REQUEST_LINE.match, lines) if m), None)
    if sent is not None:
        head = f"no recording matches {sent[1]} {canonical.route(sent[2])}"
    else:
        head = next((ln for ln in lines if ln.startswith("No match for the request")), first_line(message))
    closest = lines[next((i for i, ln in enumerate(lines) if ln.startswith("Closest")), len(lines)) :]
    why = [
        ln.split(": first difference at", 1)[-1].strip() if "first difference" in ln else ln
        for ln in closest
        if _DIFF_LINE.match(ln)
    ]
    why = [("first difference at " + w) if w and not _DIFF_LINE.match(w) else w for w in why]
    text = head + ("; closest recording: " + "; ".join(why) if why else "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.cache
def _vcr() -> Any:
    import vcr_ext

    return vcr_ext.VCR(record_mode="none")


def _collect(result: Any, call: Call, case: Case, chunks: list[Any]) -> Any:
    """What the client returned, as JSON-like values; stream chunks go to ``chunks`` as they come."""
    if case.kind == "models":
        return [dump(m) for m in result.data]
    if case.sdk == "httpx":
        return result.json()
    if call.stream:
        chunks.extend(dump(chunk) for chunk in result)
        return chunks
    return dump(result)


async def _acollect(result: Any, call: Call, case: Case, chunks: list[Any]) -> Any:
    if case.kind == "models":
        page = await result
        return [dump(m) for m in page.data]
    value = await result
    if case.sdk == "httpx":
        return value.json()
    if call.stream:
        async for chunk in value:
            chunks.append(dump(chunk))
        return chunks
    return dump(value)


def _compare(case: Case, mode: str, record: dict[str, Any], replayed: Any) -> Outcome:
    if case.failed_call:
        return Outcome(case, False, "the recorded call failed, the replayed one returned normally", mode)
    difference = first_difference(expected(record), replayed)
    return Outcome(case, difference is None, difference or "", mode)


def _compare_failure(
    case: Case, mode: str, record: dict[str, Any], exc: Exception, chunks: list[Any]
) -> Outcome:
    """A replay that raised: right only if the recorded call failed the same way, after the same chunks."""
    response = record["response"]
    if not case.failed_call:
        return Outcome(case, False, describe_exception(exc), mode)
    data = response.get("exception_data") or {}
    recorded = (data.get("type"), str(response.get("exception_message") or data.get("message")))
    difference = first_difference(list(recorded), [type(exc).__name__, str(exc)], "exception")
    if difference is None and response.get("is_streaming"):
        difference = first_difference(expected(record), chunks)
    return Outcome(case, difference is None, difference or "", mode)


def _tool_calls_of(completion: Any) -> list[dict[str, Any]]:
    found = []
    for choice in sorted(completion.choices, key=lambda c: c.index):
        for tc in choice.message.tool_calls or []:
            function = getattr(tc, "function", None)
            name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
            found.append({"choice": choice.index, "id": tc.id, "name": name, "arguments": arguments})
    return found


def _compare_tools(case: Case, mode: str, record: dict[str, Any], completion: Any) -> Outcome:
    difference = first_difference(expected_tool_calls(record), _tool_calls_of(completion), "tool_calls")
    return Outcome(case, difference is None, difference or "", mode)


def skipped(case: Case, mode: str) -> Outcome:
    return Outcome(case, False, case.skip_reason or "", mode, skipped=True)


def _helper(method: Any, call: Call) -> tuple[Any, str | None]:
    """``(the stream() manager, None)``, or ``(None, why)`` if the SDK refuses the arguments.

    Making the manager sends nothing. Some SDK versions check the tools there (openai
    2.x's async ``stream()`` takes only ``strict`` function tools, its sync twin and 3.x
    take any): a call the installed SDK refuses before any request is not a replay to
    judge, and the report says so instead of counting it as passed or failed.
    """
    try:
        return method(**call.kwargs), None
    except ValueError as exc:
        return (
            None,
            f"the installed SDK's {call.method}() refuses the recorded arguments before sending: {exc}",
        )


def replay(case: Case, *, asynchronous: bool = False, helper: bool = False) -> Outcome:
    """Replay one case through its SDK client inside the cassette and compare with the record."""
    mode = (ASYNC_HELPER if asynchronous else HELPER) if helper else ASYNC if asynchronous else SYNC
    if case.skip_reason is not None:
        return skipped(case, mode)
    if asynchronous:
        return asyncio.run(replay_async(case, helper=helper))
    record = load_record(case.path)
    chunks: list[Any] = []
    try:
        call = build_call(case, record, helper=helper)
        client = CLIENTS.sync(case.sdk)
        method = resolve(client, call.method)
        manager, refused = _helper(method, call) if helper else (None, None)
        if refused is not None:
            return Outcome(case, False, refused, mode, skipped=True)
        with _vcr().use_cassette(str(case.path)):
            if manager is not None:
                with manager as stream:
                    stream.until_done()
                    return _compare_tools(case, mode, record, stream.get_final_completion())
            replayed = _collect(method(**call.kwargs), call, case, chunks)
    except Exception as exc:
        return _compare_failure(case, mode, record, exc, chunks)
    return _compare(case, mode, record, replayed)


async def replay_async(case: Case, *, helper: bool = False, clients: dict[str, Any] | None = None) -> Outcome:
    mode = ASYNC_HELPER if helper else ASYNC
    if case.skip_reason is not None:
        return skipped(case, mode)
    record = load_record(case.path)
    own = clients is None
    clients = {} if clients is None else clients
    chunks: list[Any] = []
    try:
        call = build_call(case, record, helper=helper)
        if case.sdk not in clients:
            clients[case.sdk] = make_client(case.sdk, asynchronous=True)
        method = resolve(clients[case.sdk], call.method)
        manager, refused = _helper(method, call) if helper else (None, None)
        if refused is not None:
            return Outcome(case, False, refused, mode, skipped=True)
        with _vcr().use_cassette(str(case.path)):
            if manager is not None:
                async with manager as stream:
                    await stream.until_done()
                    return _compare_tools(case, mode, record, await stream.get_final_completion())
            replayed = await _acollect(method(**call.kwargs), call, case, chunks)
    except Exception as exc:
        return _compare_failure(case, mode, record, exc, chunks)
    finally:
        if own:
            await close_async(clients)
    return _compare(case, mode, record, replayed)


async def close_async(clients: dict[str, Any]) -> None:
    for client in clients.values():
        close = (
            getattr(client, "aclose", None)
            or getattr(client, "close", None)
            or getattr(getattr(client, "_client", None), "aclose", None)
        )
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result
