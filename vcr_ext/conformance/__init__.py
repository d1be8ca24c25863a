"""Conformance: replay every recording of a llama-stack corpus through the real SDK clients.

Each file of a llama-stack ``recordings/`` folder is one record, and a one-record file is
itself a cassette. For every record this module makes the client call the record
describes (the openai or ollama client method llama-stack's recorder patched, with the
recorded keyword arguments) inside ``vcr_ext.VCR(record_mode="none")``, against a base
URL where nothing listens, and compares what the SDK parsed with what the record holds,
rebuilt the way the SDK builds objects from the wire.

Public API: :func:`discover` (the cases of a folder), :func:`replay` (one case, sync, async
or through ``chat.completions.stream()``), :func:`run_all` and :func:`report`. The modules:
``cases`` (what each recording is and which call replays it), ``calls`` (the call and
its clients), ``expected`` (what the SDK should give, and the first difference),
``replay`` (one case in one mode), ``report`` (a whole folder, and its tables).
"""

from .calls import Call, build_call, make_client, resolve
from .cases import (
    ASYNC,
    ASYNC_HELPER,
    CORPUS_NAME,
    HELPER,
    LABELS,
    MODES,
    SYNC,
    Case,
    classify,
    default_root,
    discover,
    load_record,
    provider_of,
)
from .expected import dump, expected, expected_tool_calls, first_difference, rebuild
from .replay import Outcome, describe_exception, replay
from .report import Run, render, report, run_all

__all__ = [
    "ASYNC",
    "ASYNC_HELPER",
    "CORPUS_NAME",
    "HELPER",
    "LABELS",
    "MODES",
    "SYNC",
    "Call",
    "Case",
    "Outcome",
    "Run",
    "build_call",
    "classify",
    "default_root",
    "describe_exception",
    "discover",
    "dump",
    "expected",
    "expected_tool_calls",
    "first_difference",
    "load_record",
    "make_client",
    "provider_of",
    "rebuild",
    "render",
    "replay",
    "report",
    "resolve",
    "run_all",
]
