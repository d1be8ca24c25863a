"""One lock per cassette, shared by every process and thread that loads or saves it.

The lock files live in a per-user folder of the system's temp directory, named by a
hash of the cassette's real path, not beside the cassette: nothing appears in the
project's tree (or in ``git status``), and two spellings of one path (a symlink, a
relative path) take the same lock. The locking itself is ``filelock``'s: an OS-level
``flock`` that the kernel releases when its holder dies, so a killed worker never
leaves a cassette locked.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock


@functools.cache
def _lock_dir() -> Path:
    # Made once per process: every cassette open takes a lock, and a mkdir each time costs.
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"vcr-ext-locks-{uid}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def cassette_key(path: str | os.PathLike[str]) -> str:
    """A name for the cassette at ``path`` that every spelling of that path shares."""
    real = os.path.realpath(os.path.abspath(os.fspath(path)))
    return hashlib.sha256(os.fsencode(real)).hexdigest()[:32]


_thread_locks: dict[str, threading.RLock] = {}
_file_locks: dict[str, FileLock] = {}
_registry = threading.Lock()


@contextmanager
def cassette_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the cassette's lock: ``with cassette_lock(path): ...``; re-entrant within a thread.

    filelock excludes processes; within a process its lock is shared by the threads
    that use one lock object, so a ``threading.RLock`` per cassette excludes threads.
    """
    key = cassette_key(path)
    with _registry:
        rlock = _thread_locks.setdefault(key, threading.RLock())
        flock = _file_locks.get(key)
        if flock is None:
            flock = _file_locks[key] = FileLock(_lock_dir() / f"{key}.lock", thread_local=False)
    with rlock, flock:
        yield
