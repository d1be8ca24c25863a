"""vcrpy serializer ``"vcr_ext"``: a cassette as one JSON document, the ordered list of its records.

For use with vcrpy's own ``FilesystemPersister`` (``serializer="vcr_ext"``); vcr_ext's
:class:`~vcr_ext.persister.Persister` writes the same records without going through it.
"""

from __future__ import annotations

from typing import Any

from vcr.request import Request

from . import context, formats, record
from .interactions import origin_of, to_interaction, to_record

_PATH = "<vcr_ext serializer>"


def serialize(cassette_dict: dict[str, Any]) -> str:
    """vcrpy's ``{"interactions": [{"request", "response"}]}`` -> the JSON list of records."""
    records = []
    ids: record.IdMap = {}
    for interaction in cassette_dict["interactions"]:
        response = interaction["response"]
        origin = origin_of(response)
        if origin is not None:
            records.append(origin.record())
            continue
        req = interaction["request"]
        request = Request(req["method"], req["uri"], req.get("body"), {})
        records.append(to_record(request, response, test_id=context.current_test_id(), ids=ids))
    return record.dumps(records)


def deserialize(cassette_string: str) -> dict[str, Any]:
    """The JSON list of records (or one record) -> vcrpy's ``{"interactions": [...]}``.

    Every record is checked as :class:`~vcr_ext.persister.Persister` checks it, so a bad
    cassette raises :class:`~vcr_ext.errors.CassetteFormatError` when it is opened;
    vcrpy does not tell a serializer the file's name, so the error names the record.
    """
    interactions = []
    for index, rec in record.records_of(record.parse(cassette_string, _PATH), _PATH):
        if record.skip_reason(rec, _PATH, index) is not None:
            continue
        checked = record.check(rec, _PATH, index)
        request, response = to_interaction(formats.read_record(checked), as_read=checked)
        interactions.append({"request": request._to_dict(), "response": response})
    return {"interactions": interactions}
