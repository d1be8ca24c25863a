"""The recording run: what ``once`` and ``rewrite`` mean for a cassette several workers record.

A run is one pytest session, the controller and all its pytest-xdist workers (outside
pytest: one process). Its state is a folder of marker files, one per cassette, that
every process of the run shares through ``$VCR_EXT_RUN_DIR``:

- ``<key>.created``: the cassette did not exist when the run first saved it. ``once``
  keeps recording into it for the rest of the run, so tests of other workers that share
  it add their requests instead of being refused; from the next run on it exists, and
  ``once`` replays it.
- ``<key>.rewritten``: the run has already replaced the cassette's old recordings
  (``rewrite``); later saves in the run add to what the run recorded instead of
  deleting it again.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

from .locking import cassette_key

RUN_DIR_ENV = "VCR_EXT_RUN_DIR"
CREATED = "created"
REWRITTEN = "rewritten"

_process_run: Path | None = None
_guard = threading.Lock()


def start_run() -> tuple[Path, str | None]:
    """Start a run for this process and those it starts; returns it and the run it replaces.

    A pytest controller calls it at configure time, before pytest-xdist starts its
    workers, which inherit the environment variable.
    """
    folder = Path(tempfile.mkdtemp(prefix="vcr-ext-run-"))
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = os.fspath(folder)
    return folder, previous


def join_run(folder: str) -> None:
    """Take part in a run another process started (a pytest-xdist worker)."""
    os.environ[RUN_DIR_ENV] = folder


def end_run(folder: Path, previous: str | None) -> None:
    """End a run started by :func:`start_run`, giving back the one it replaced."""
    if previous is None:
        os.environ.pop(RUN_DIR_ENV, None)
    else:
        os.environ[RUN_DIR_ENV] = previous
    shutil.rmtree(folder, ignore_errors=True)


def run_dir() -> Path:
    """The current run's folder: the shared one of the pytest session, else this process's own."""
    shared = os.environ.get(RUN_DIR_ENV)
    if shared:
        return Path(shared)
    global _process_run
    with _guard:
        if _process_run is None:
            _process_run = Path(tempfile.mkdtemp(prefix="vcr-ext-run-"))
            atexit.register(shutil.rmtree, _process_run, True)
        return _process_run


def has_mark(path: str | os.PathLike[str], mark: str) -> bool:
    """Whether this run has put ``mark`` on the cassette at ``path``."""
    return (run_dir() / f"{cassette_key(path)}.{mark}").exists()


def mark(path: str | os.PathLike[str], mark: str) -> None:
    """Put ``mark`` on the cassette at ``path`` for the rest of this run."""
    folder = run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{cassette_key(path)}.{mark}").touch()
