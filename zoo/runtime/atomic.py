"""Atomic writes: a reader sees the old file or the new one, never half of one.

Files and folders get the permissions a plain ``open``/``mkdir`` would give under the
process's umask (``tempfile`` makes them private, 0600/0700, which would lock teammates out
of a shared sweep or cache).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()
_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step
_AT_FDCWD = -100
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform.startswith("linux") else None
if _renameat2 is not None:
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_ATTEMPTS = 10
"""How often replace_dir starts over when a concurrent writer changes the target under it."""


def current_umask() -> int:
    """The process's umask, read from /proc on Linux (leaving it alone).

    Elsewhere it can only be read by setting it: it is set to 0o077 for that instant, so a file
    another thread creates meanwhile is more private, never more open, than it should be.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def staging_dir(target: Path) -> Path:
    """A new empty folder next to ``target`` (same file system, so :func:`replace_dir` can move it there)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging."))
    os.chmod(staging, dir_mode())
    return staging


@contextmanager
def writing_dir(target: Path) -> Iterator[Path]:
    """A staging folder to fill in the ``with`` block; it then replaces ``target`` (:func:`replace_dir`), or is removed on error."""
    staging = staging_dir(target)
    try:
        yield staging
        share(staging)
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def share(folder: Path) -> None:
    """Give everything under ``folder`` the mode a plain ``open``/``mkdir`` would (safetensors, for one, creates 0600 files)."""
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, dir_mode() if path.is_dir() else file_mode())


def replace_dir(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder to ``target``, replacing any old one.

    On Linux an existing ``target`` is exchanged with ``staging`` in one step (renameat2), so a
    reader always finds a complete folder, old or new. Where that is not available the old
    folder is first moved aside under a name of its own, leaving an instant without ``target``.
    Concurrent replacements of one target all succeed; the last one stays.
    """
    for _ in range(_ATTEMPTS):
        try:
            os.rename(staging, target)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if _exchange(staging, target) or _move_aside_and_rename(staging, target):
            return
    raise OSError(errno.EBUSY, f"{target} kept changing while {staging} was moved there ({_ATTEMPTS} attempts)", str(target))


def _exchange(staging: Path, target: Path) -> bool:
    """Swap the two folders atomically and delete the old one; False where the system cannot swap or target vanished."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(target), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(code, os.strerror(code), str(target))
    shutil.rmtree(staging, ignore_errors=True)  # it now holds the old folder
    return True


def _move_aside_and_rename(staging: Path, target: Path) -> bool:
    """The portable two-step replacement; False when another writer got in between (the caller tries again)."""
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
    try:
        os.rename(target, aside)
        os.rename(staging, target)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            raise
        return False
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return True
