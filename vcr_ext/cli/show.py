"""``vcr-ext show PATH...``: what each recorded interaction said, reassembled for a person to read.

One block per interaction: the file (and record index), the test id, method and route,
model, status, then the result: the streamed text joined, tool calls with their whole
arguments, the finish reason, token usage, Responses API output items, embeddings as
"N vectors of D dims", errors. Anthropic, Cohere, Gemini/Vertex AI and Bedrock answers
are labelled in their SDK's words (stop_reason, tool_use, finishReason, functionCall,
toolUse...). ``--json`` prints the same as a list of objects with
stable keys; ``--usage`` prints only the tokens per model over every cassette given.

Exit codes: 0 shown; 1 a file or record could not be read (named on stderr, the rest
is still shown); 2 a PATH does not exist or holds no recording.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .. import cassette_files, summary
from ..errors import CassetteFormatError
from ..summary import Summary
from .check import from_error


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "show",
        help="show each recorded interaction reassembled: text, tool calls, usage, errors",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="cassette directories or files")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of text")
    parser.add_argument("--usage", action="store_true", help="print only the tokens used, per model")
    parser.set_defaults(run=run)


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set to anything (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _Style:
    """ANSI styles, or nothing at all."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def _sgr(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text

    def bold(self, text: str) -> str:
        return self._sgr("1", text)

    def dim(self, text: str) -> str:
        return self._sgr("2", text)

    def red(self, text: str) -> str:
        return self._sgr("31", text)

    def green(self, text: str) -> str:
        return self._sgr("32", text)

    def cyan(self, text: str) -> str:
        return self._sgr("36", text)


def _where(entry: cassette_files.Entry) -> str:
    return os.fspath(entry.path) if entry.index is None else f"{entry.path}[{entry.index}]"


def _indent(text: str, prefix: str) -> str:
    lines = text.splitlines() or [""]
    return "\n".join(prefix + line for line in lines)


# What each provider's SDK calls the reasoning, a tool call and the finish (OpenAI's words otherwise).
_LABELS: dict[str | None, tuple[str, str, str]] = {
    None: ("reasoning", "tool call", "finish"),
    "anthropic": ("thinking", "", "stop_reason"),  # a call is named by its block type: tool_use, ...
    "cohere": ("thinking", "tool call", "finish_reason"),
    "google": ("thought", "functionCall", "finishReason"),
    "bedrock": ("reasoningContent", "toolUse", "stopReason"),
}


def _usage_text(u: summary.Usage) -> str:
    parts = []
    if u.input_tokens is not None:
        parts.append(f"{u.input_tokens} in")
    if u.output_tokens is not None:
        parts.append(f"{u.output_tokens} out")
    if u.total_tokens is not None:
        parts.append(f"{u.total_tokens} total")
    text = ", ".join(parts) + " tokens"
    if u.billed_input_tokens is not None or u.billed_output_tokens is not None:
        text += f" (billed {u.billed_input_tokens or 0} in, {u.billed_output_tokens or 0} out)"
    return text


def block(entry: cassette_files.Entry, s: Summary, style: _Style) -> str:
    """The text block of one interaction."""
    lines = [style.bold(_where(entry))]
    label = style.dim
    if s.test_id:
        lines.append(f"  {label('test:')} {s.test_id}")
    status = str(s.status)
    status = style.red(status) if s.status >= 400 or s.kind == "error" else style.green(status)
    head = f"  {style.cyan(s.method or '?')} {s.route or '?'}"
    model = s.model or s.response_model
    if model:
        served = f" (served as {s.response_model})" if s.response_model and s.response_model != model else ""
        head += f"  {label('model')} {model}{served}"
    head += f"  {label('status')} {status}"
    if s.streaming:
        head += f"  {label('stream of')} {s.chunks} chunks"
    lines.append(head)
    if s.skipped:
        lines.append(f"  {label('skipped:')} {s.skipped}")
    many = len(s.choices) > 1
    reasoning_label, call_label, finish_label = _LABELS.get(s.provider, _LABELS[None])
    for c in s.choices:
        pre = f"  {label(f'choice {c.index}:')}" if many else ""
        if pre:
            lines.append(pre)
        if c.reasoning:
            lines.append(f"  {label(reasoning_label + ':')}")
            lines.append(_indent(c.reasoning, "    "))
        if c.plan:
            lines.append(f"  {label('tool_plan:')}")
            lines.append(_indent(c.plan, "    "))
        if c.text is not None:
            lines.append(f"  {label('text:')}")
            lines.append(_indent(c.text, "    "))
        if c.refusal:
            lines.append(f"  {label('refusal:')} {c.refusal}")
        for call in c.tool_calls:
            what = call_label or call.type or "tool call"
            lines.append(f"  {label(what)} {call.name or '?'} {label(f'({call.id})' if call.id else '')}")
            lines.append(_indent(call.arguments, "    "))
        if c.finish_reason:
            lines.append(f"  {label(finish_label + ':')} {c.finish_reason}")
    for item in s.output:
        what = item.type + (f" {item.status}" if item.status else "")
        lines.append(f"  {label('output')} {what}:")
        if item.type == "reasoning":
            lines.append(_indent(item.summary or "(no summary)", "    "))
        elif item.name is not None or item.arguments is not None:
            lines.append(f"    {item.name or '?'} {label(f'({item.call_id})' if item.call_id else '')}")
            lines.append(_indent(item.arguments or "", "      "))
        elif item.text is not None:
            lines.append(_indent(item.text, "    "))
        if item.type == "message" and item.summary:
            lines.append(f"    {item.summary}")
    if s.embeddings is not None:
        dims = "?" if s.embeddings.dims is None else str(s.embeddings.dims)
        lines.append(f"  {label('embeddings:')} {s.embeddings.count} vectors of {dims} dims")
    if s.models is not None:
        lines.append(f"  {label('models:')} {s.models}")
    if s.usage is not None:
        lines.append(f"  {label('usage:')} {_usage_text(s.usage)}")
    if s.error:
        lines.append(f"  {style.red('error:')} {s.error}")
    if s.note:
        lines.append(f"  {label('note:')} {s.note}")
    return "\n".join(line.rstrip() for line in lines)


def _usage_table(rows: list[summary.ModelUsage], style: _Style) -> str:
    header = ("model", "requests", "input", "output", "total", "no usage")
    body = [
        (
            r.model,
            str(r.requests),
            str(r.input_tokens),
            str(r.output_tokens),
            str(r.total_tokens),
            str(r.without_usage),
        )
        for r in rows
    ]
    total = (
        "total",
        str(sum(r.requests for r in rows)),
        str(sum(r.input_tokens for r in rows)),
        str(sum(r.output_tokens for r in rows)),
        str(sum(r.total_tokens for r in rows)),
        str(sum(r.without_usage for r in rows)),
    )
    table = [header, *body, total]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([style.bold(line(header)), *map(line, body), style.bold(line(total))])


def _usage_json(rows: list[summary.ModelUsage]) -> dict[str, Any]:
    models = [
        {
            "model": r.model,
            "requests": r.requests,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "total_tokens": r.total_tokens,
            "without_usage": r.without_usage,
        }
        for r in rows
    ]
    keys = ("requests", "input_tokens", "output_tokens", "total_tokens", "without_usage")
    total: dict[str, Any] = {k: sum(m[k] for m in models) for k in keys}
    return {"models": models, "total": total}


def run(args: argparse.Namespace) -> int:
    cassettes: list[cassette_files.Cassette] = []
    for path in args.paths:
        try:
            cassettes.extend(cassette_files.find(path))
        except cassette_files.NoCassette as err:
            print(f"vcr-ext show: {err}", file=sys.stderr)
            return 2
    style = _Style(not args.json and use_colour(sys.stdout))
    failed = False
    shown: list[tuple[cassette_files.Entry, Summary]] = []
    for cassette in cassettes:
        for item in cassette_files.entries(cassette):
            if isinstance(item, CassetteFormatError):
                print(from_error(item).line(), file=sys.stderr)
                failed = True
                continue
            s = summary.summarize(item.record, skipped=item.skipped)
            if not args.json and not args.usage:
                # Printed as they are read: a big tree shows its first blocks at once.
                print(block(item, s, style), end="\n\n", flush=False)
            shown.append((item, s))
    if args.usage:
        rows = summary.usage_by_model(s for _, s in shown)
        if args.json:
            print(json.dumps(_usage_json(rows), indent=2, ensure_ascii=False))
        else:
            print(_usage_table(rows, style))
    elif args.json:
        out = [{"path": os.fspath(e.path), "record": e.index, **s.to_json()} for e, s in shown]
        print(json.dumps(out, indent=2, ensure_ascii=False))
    return 1 if failed else 0
