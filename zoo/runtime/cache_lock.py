"""One builder per cache entry: concurrent first runs (a sweep's jobs, teammates) build it once.

The lock is an exclusive ``flock`` on ``<target>.lock`` next to the entry. The kernel drops it
when its holder exits, however it exits, so a crashed build never leaves a stale lock. Use it
double-checked: the cheap check first, the lock only to build, and the check again under the
lock, since another process may have finished the entry while this one waited::

    if not ready(target):
        with building(target):
            if not ready(target):
                build(target)

On systems without ``fcntl`` (Windows) there is no lock: concurrent first runs may each build
the entry, each writing it atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:
    fcntl = None

log = logging.getLogger(__name__)


def lock_path(target: Path) -> Path:
    return target.with_name(f"{target.name}.lock")


@contextmanager
def building(target: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of ``target``'s cache entry for the ``with`` block (waiting for another holder)."""
    target = Path(target)
    if fcntl is None:
        yield
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(target)
    fd = acquire(path, lambda: log.info("waiting for another process building %s (it holds %s)", target, path))
    try:
        yield
    finally:
        release(path, fd)


def release(path: Path, fd: int) -> None:
    """Let go of the lock ``acquire`` took; the file is unlinked while still held, so a waiter then finds the path gone or
    new, and locks again (see :func:`acquire`)."""
    with suppress(OSError):
        path.unlink()
    os.close(fd)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # a teammate's lock file in a shared cache: a read-only descriptor can hold a flock too
        return os.open(path, os.O_RDONLY)


def acquire(path: Path, waiting: Callable[[], None]) -> int:
    """A descriptor holding the exclusive lock on the file that is at ``path`` now (not on one its last holder unlinked).

    ``waiting()`` is called once another process holds it, before this one waits for it.
    """
    while True:
        fd = _open(path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waiting()
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
