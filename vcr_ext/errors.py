"""The errors vcr_ext raises: each names the file, the record and the field a person must look at."""

from __future__ import annotations

import os


class VcrExtError(Exception):
    """Base class of every error vcr_ext raises on purpose."""


class CassetteFormatError(VcrExtError, ValueError):
    """A recording on disk does not have the shape of the recording format.

    ``path`` is the file, ``record`` the position of the record in it (``None`` for a
    one-record file) and ``field`` the dotted path of the offending field.
    """

    def __init__(self, path: str | os.PathLike[str], record: int | None, field: str, problem: str) -> None:
        self.path = os.fspath(path)
        self.record = record
        self.field = field
        self.problem = problem
        where = self.path if record is None else f"{self.path}, record {record}"
        super().__init__(f"{where}: field '{field}': {problem}")
