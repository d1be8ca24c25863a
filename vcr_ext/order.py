"""Recorded order in a directory cassette: the ``.vcr-ext-order`` file.

One file per interaction, named by request hash, says nothing about the order the
interactions were recorded in, and loose matching (vcrpy's ``match_on=("method",
"path")``) replays a chain of calls in that order. When the recorded order is not the
order of the names, the cassette holds ``.vcr-ext-order``: the file names, one a line,
in recorded order. It is plain text so a review shows an added interaction as one added
line. Without it (every cassette of one interaction, llama-stack's directories), names
sort by request hash, and repeats of one request (``<hash>.json``, ``<hash>.2.json``,
...) by their number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

ORDER_FILE = ".vcr-ext-order"
_REPEAT = re.compile(r"^(?P<stem>.+)\.(?P<n>\d+)\.json$")


def name_key(name: str) -> tuple[str, int]:
    """The default order of record file names: by stem, then repeat number."""
    m = _REPEAT.match(name)
    return (m["stem"], int(m["n"])) if m else (name[: -len(".json")], 1)


def read_manifest(directory: Path) -> list[str]:
    """The names ``.vcr-ext-order`` lists, or ``[]`` when there is none."""
    try:
        text = (directory / ORDER_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [line for line in text.splitlines() if line.strip()]


def ordered(names: Iterable[str], manifest: Sequence[str]) -> list[str]:
    """``names`` in recorded order: those the manifest lists as it lists them, then the rest by name.

    A name the manifest lists that is not there (a file deleted by hand) is passed over;
    one it does not list (a file added by hand or by another tool) comes after.
    """
    present = set(names)
    listed = [n for n in dict.fromkeys(manifest) if n in present]
    seen = set(listed)
    return listed + sorted((n for n in present if n not in seen), key=name_key)


def manifest_text(names: Sequence[str]) -> str | None:
    """The manifest for record files in this order, or ``None`` when the names' own order says it."""
    if list(names) == sorted(names, key=name_key):
        return None
    return "".join(f"{n}\n" for n in names)
