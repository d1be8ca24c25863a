"""The id of the test being run, which every record made during it carries as ``test_id``.

A module-level value, not a ContextVar: pytest sets it around a test, and the cassette is
saved in fixture teardown, possibly from another context than the one that set it.
"""

from __future__ import annotations

_current_test_id: str | None = None


def current_test_id() -> str | None:
    """The pytest node id of the running test, or ``None`` outside pytest."""
    return _current_test_id


def set_current_test_id(test_id: str | None) -> str | None:
    """Set the running test's id; returns the previous one so a caller can restore it."""
    global _current_test_id
    previous, _current_test_id = _current_test_id, test_id
    return previous
