"""Progress of long work (converting or checking thousands of files): a bar on a terminal, nothing otherwise.

tqdm draws the bar; ``disable=None`` is its own rule for "only on a TTY", so a CI log
or a pipe gets no carriage-return noise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def track(items: Iterable[T], *, total: int | None = None, what: str = "files") -> Iterator[T]:
    """``items`` one by one, with a progress bar on stderr when it is a terminal."""
    # Few items finish before a bar would help; leave=False clears it once done.
    yield from tqdm(
        items, total=total, unit=f" {what}", file=sys.stderr, disable=None, leave=False, mininterval=0.2
    )
