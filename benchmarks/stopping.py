"""A benchmark launch stopped by a signal keeps what finished.

``suite.py`` and ``tune.py`` write their record set and their session's wall time in a ``finally`` block. Python runs it
for Ctrl-C, but not for SIGTERM (what ``kill``, a scheduler or the end of a shell session sends), and a launch started in
the background of a non-interactive shell ignores SIGINT altogether. :func:`stopping_on_signals` makes both raise
``KeyboardInterrupt`` in the launch, so the block runs; the ``zoo`` run in flight is stopped by ``subprocess.run``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise ``KeyboardInterrupt``; the previous handlers come back after it."""
    previous = {s: signal.signal(s, _stop) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_status(main: Callable[[], int], name: str) -> int:
    """``main()``'s status, or 130 after one line saying the launch was stopped (instead of a traceback)."""
    try:
        return main()
    except KeyboardInterrupt as stop:
        print(
            f"{name}: {stop or 'interrupted'}; what finished is in the record set: run the same command again to go on",
            file=sys.stderr,
        )
        return 130
