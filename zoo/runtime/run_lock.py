"""One run at a time in a run folder: a run holds an exclusive lock on its folder while it runs.

The lock is a ``flock`` on :data:`LOCK` inside the folder (as :mod:`zoo.runtime.cache_lock` locks
a cache entry), holding the holder's process id, host and start. A second launch on the folder (a
sweep resumed while the workers of its killed launcher still finish their jobs, two terminals
with one ``hydra.run.dir``) logs the folder and that holder, and waits for it to end; it then
finds the run finished (``resume=true`` skips it) or runs it again. The kernel drops the lock
when its holder exits, however it exits: the lock of a killed run never blocks the next one.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo.runtime.cache_lock import acquire, fcntl, release

log = logging.getLogger(__name__)
LOCK = ".zoo-run.lock"


def holder(folder: Path) -> str:
    """Who holds the lock of ``folder``, as its holder wrote it (``unknown`` where it has not yet)."""
    try:
        return (folder / LOCK).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def owning(folder: str | Path) -> Iterator[None]:
    """Hold the run lock of ``folder`` for the ``with`` block, waiting (with a warning naming the holder) while another run does."""
    folder = Path(folder)
    if fcntl is None:  # Windows: no lock
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = acquire(path, lambda: log.warning("%s is in use by another run (%s): waiting until it ends", folder, holder(folder)))
    try:
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        _note(fd, f"process {os.getpid()} on {socket.gethostname()}, since {started}\n")
        yield
    finally:
        release(path, fd)


def _note(fd: int, text: str) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:  # a lock file opened read-only (another user's): the lock holds, the note is left out
        pass
