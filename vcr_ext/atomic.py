"""Replacing a cassette on disk in one step: a file by rename, a directory by exchange.

A directory cassette is rebuilt beside itself (``.<name>.vcr-ext-new-<random>/``: files
it keeps are hard links, new ones are written) and then swapped with the old directory
by one ``renameat2(RENAME_EXCHANGE)`` system call (``renamex_np(RENAME_SWAP)`` on
macOS). At every instant the cassette's path is the whole old directory or the whole
new one, whatever kills the process when. What a crash can leave is a sibling
``.<name>.vcr-ext-*`` folder or ``.<name>.*.tmp`` file, outside the cassette, which no
load reads and the next save of that cassette removes (under the cassette's lock, so
it is never another process's work in progress).

Where the system has no exchange call, the old directory is renamed aside, then the new
one into place; a crash between the two leaves the path missing for a moment, and
:func:`recover` (run before every load and save) puts the old cassette back.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS sys/stdio.h
_NEW = "vcr-ext-new-"
_OLD = "vcr-ext-old-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function: Callable[..., int] | None = getattr(libc, name, None)
    return function


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; ``False`` if this system cannot, and nothing was done."""
    fa, fb = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux"):
        renameat2 = _libc_function("renameat2")
        if renameat2 is None:
            return False
        result = renameat2(_AT_FDCWD, fa, _AT_FDCWD, fb, _RENAME_EXCHANGE)
    elif sys.platform == "darwin":
        renamex_np = _libc_function("renamex_np")
        if renamex_np is None:
            return False
        result = renamex_np(fa, fb, _RENAME_SWAP)
    else:
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    # The file system or kernel does not support it: fall back, nothing has moved.
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(a), None, os.fspath(b))


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a cassette is an ordinary file of the project.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes) -> None:
    """:func:`write_atomic`, unless the file already holds exactly ``data``."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_atomic(path, data)


def leftovers(path: Path) -> list[Path]:
    """What crashed saves of the cassette at ``path`` left beside it."""
    parent = path.parent
    # Exactly the names this module makes for this cassette (mkstemp's and mkdtemp's random
    # part has no dot), not those of a cassette whose name merely starts the same.
    ours = re.compile(rf"^\.{re.escape(path.name)}\.(?:(?:{_NEW}|{_OLD})[A-Za-z0-9_]+|[A-Za-z0-9_]+\.tmp)$")
    try:
        with os.scandir(parent) as entries:
            found = [parent / e.name for e in entries if ours.match(e.name)]
    except OSError:
        return []
    return sorted(found)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover(path: Path) -> None:
    """Undo what a crashed save left: restore an old directory set aside, remove temporary copies.

    Call with the cassette's lock held, so no other process is saving it.
    """
    found = leftovers(path)
    if not found:
        return
    if not os.path.lexists(path):
        # Only the fallback without an exchange call leaves the path missing: between its
        # two renames the old cassette is the one set aside.
        old = [p for p in found if p.name.startswith(f".{path.name}.{_OLD}")]
        if old:
            os.rename(old[0], path)
            found.remove(old[0])
    for leftover in found:
        _remove(leftover)


def _copy_entry(src: Path, dst: Path) -> None:
    """Carry one entry of the old directory into the new one, byte-identical and cheaply."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir()
        shutil.copystat(src, dst)
        for child in src.iterdir():
            _copy_entry(child, dst / child.name)
    else:
        try:
            os.link(src, dst)
        except OSError:
            # A file system without hard links: a copy has the same bytes.
            shutil.copy2(src, dst)


def replace_directory(
    path: Path,
    keep: list[str],
    write: dict[str, bytes],
) -> None:
    """Make the directory ``path`` hold exactly ``keep`` (names from the current one) plus ``write``.

    ``keep`` entries are carried over unchanged (hard links, same bytes and mode), ``write``
    maps new names to their bytes. The switch from the old directory to the new one is
    one atomic step; see the module docstring.
    """
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_NEW}", dir=parent))
    try:
        existed = path.is_dir()
        os.chmod(new, (path.stat().st_mode & 0o7777) if existed else 0o777 & ~_UMASK)
        for name in keep:
            _copy_entry(path / name, new / name)
        for name, data in write.items():
            with open(new / name, "wb") as f:
                f.write(data)
            os.chmod(new / name, 0o666 & ~_UMASK)
        if not existed:
            # rename() onto a missing path is atomic: it appears whole or not at all.
            os.rename(new, path)
            return
        if exchange(new, path):
            # ``new`` now names the old cassette.
            shutil.rmtree(new, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_OLD}", dir=parent))
        os.rmdir(old)
        os.rename(path, old)
        os.rename(new, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
        raise
