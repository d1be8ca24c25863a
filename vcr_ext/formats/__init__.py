"""Other tools' cassette formats, one adapter each: readers and writers between their files and our records.

- :mod:`vcr_ext.formats.llamastack`: llama-stack's ``api_recorder`` recordings;
- :mod:`vcr_ext.formats.vcrpy`: plain vcrpy cassettes (YAML or JSON serializer).

The core (``interactions``, ``persister``, ``cassette``) speaks only our records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import llamastack
from .llamastack import VARIANTS, LlamaStackWriter, Variant

__all__ = ["VARIANTS", "Variant", "check", "has_request_body", "not_replayable", "read_record", "writer"]


def read_record(rec: dict[str, Any]) -> dict[str, Any]:
    """Our record for a checked record of any recorder we read (``rec`` itself when it is ours)."""
    return llamastack.to_ours(rec)


def check(rec: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(field, problem)`` if a record of another recorder cannot be read as HTTP, else ``None``."""
    return llamastack.check(rec)


def not_replayable(rec: Mapping[str, Any]) -> str | None:
    """Why a record holds no HTTP interaction to replay (a tool call, a client-side failure), or ``None``."""
    return llamastack.not_replayable(rec)


def has_request_body(request: Mapping[str, Any]) -> bool:
    """Whether a record's request holds its body (``body``; ``payload`` in llama-stack's raw HTTP records)."""
    return "body" in request or llamastack.is_raw_http(request)


def writer(variant: Variant) -> LlamaStackWriter:
    """What writes new recordings the way the recorder ``variant`` names would (``compat=``)."""
    return LlamaStackWriter(variant)
