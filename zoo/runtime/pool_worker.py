"""A sweep's worker process ends once the launcher that started it is gone.

Hydra's joblib launcher runs a sweep's jobs in loky worker processes, which outlive a killed
launcher: they finish their jobs and then wait for more, for as long as loky's idle timeout.
In a process that multiprocessing (or loky) started, :func:`job` watches the parent: once it is
gone, the process lets the job in flight finish (its outputs are written, so ``resume=true``
finds it done) and then exits, rather than waiting for work that will never come. A process
started any other way (a ``zoo`` command run from a shell) is never ended by this.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
EXIT_STATUS = 1
POLL_SECONDS = 1.0
_state = {"jobs": 0, "orphaned": False, "watching": False}
_lock = threading.Lock()


@contextmanager
def job() -> Iterator[None]:
    """Run the ``with`` block as a job of this worker: the process outlives its parent only until no job runs."""
    parent = multiprocessing.parent_process()
    if parent is None:
        yield
        return
    with _lock:
        _state["jobs"] += 1
        if not _state["watching"]:
            _state["watching"] = True
            threading.Thread(target=_watch, args=(parent.pid,), name="zoo-parent-watch", daemon=True).start()
    try:
        yield
    finally:
        with _lock:
            _state["jobs"] -= 1
            _exit_if_orphaned()


def _watch(parent: int) -> None:
    """Wait for process ``parent`` to be gone (this process is handed to another parent then), and mark this one orphaned.

    Polled: loky's workers have no sentinel of their parent to wait on.
    """
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    with _lock:
        _state["orphaned"] = True
        log.warning(
            "the launcher of this sweep (process %s) is gone: worker %s exits once its job in flight ends", parent, os.getpid()
        )
        _exit_if_orphaned()


def _exit_if_orphaned() -> None:
    """End the process now if the parent is gone and no job runs (called with ``_lock`` held)."""
    if _state["orphaned"] and _state["jobs"] == 0:
        logging.shutdown()
        os._exit(EXIT_STATUS)
