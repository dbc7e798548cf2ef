"""User errors end a command with one line and exit status 2; bugs keep their traceback.

A user error is one the user fixes: a config value, an input file, the environment. zoo tells
them apart by where they come from, not by their type alone (a ``ValueError`` from deep inside a
library is a bug to report, not a bad value to fix):

- an error zoo raised on purpose: a ``ValueError``, ``TypeError``, ``LookupError`` or ``OSError``
  raised by a ``raise`` statement in zoo's own code (every one names the bad value and what is valid);
- the environment: any ``OSError`` (a full disk, a read-only or busy target, a permission, a
  symlink to nothing), with the fix its error number calls for;
- memory: ``MemoryError`` or torch failing to allocate, which a size in the config asked for;
- any type a command adds (Hydra's and OmegaConf's config errors, for ``zoo``).

A command's ``--debug`` switch (``HYDRA_FULL_ERROR=1`` for ``zoo``) shows the traceback instead.
"""

from __future__ import annotations

import errno
import linecache
import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_USER_ERROR = 2
"""The status of a command stopped by a user error (as argparse's for a bad command line)."""
LONGEST = 1000
"""The characters of an error line shown in full; a longer one keeps its start and end (where the fix is)."""
FIXES = {
    errno.ENOSPC: "the disk is full: free space, or write to another disk",
    errno.EDQUOT: "the disk quota is used up: free space, or write to another disk",
    errno.EROFS: "the file system is read-only: write to a folder on a writable one",
    errno.EBUSY: "the path is busy (a mount point cannot be replaced): write to a folder inside it",
    errno.EACCES: "permission denied: write to a folder of your own, or ask its owner for access",
    errno.EPERM: "operation not permitted: write to a folder of your own",
    errno.ENOTDIR: "a part of the path is not a folder (a file, or a symlink to nothing): check the path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EISDIR: "a folder is where a file was expected: check the path",
    errno.ELOOP: "too many levels of symlinks: check the path",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}


class UserError(Exception):
    """An error the user fixes, already put in its one line (:func:`user_error_line`)."""


_ZOOS_OWN = (ValueError, TypeError, LookupError, OSError)
_ALLOCATION = ("can't allocate memory", "tried to allocate", "out of memory")


def user_error_line(err: BaseException, config_errors: tuple[type[BaseException], ...] = ()) -> str | None:
    """The one line that tells the user what to fix, or None where ``err`` is a bug (to be shown with its traceback)."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, config_errors):
        return shortened(_one_line(err))
    if isinstance(err, OSError) and err.errno in FIXES:
        where = f" ({err.filename})" if err.filename else ""
        return shortened(f"{FIXES[err.errno]}{where}: {err.strerror or err}")
    if isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and any(s in str(err) for s in _ALLOCATION)):
        return shortened(
            f"out of memory: {_one_line(err)}; a size in the config (of the method, the batch, the model) is "
            "far too large for this machine: make it smaller"
        )
    if isinstance(err, _ZOOS_OWN) and _raised_by_zoo(err):
        return shortened(_one_line(err))
    return None


def _one_line(err: BaseException) -> str:
    text = str(err.args[0]) if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) or type(err).__name__


def _raised_by_zoo(err: BaseException) -> bool:
    """Whether the innermost frame of ``err`` is a ``raise`` statement in zoo's source."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip()
    return (module == "zoo" or module.startswith("zoo.")) and line.startswith("raise")


def shortened(line: str, longest: int = LONGEST) -> str:
    """``line``, or where it is longer than ``longest`` its start and end with the count of characters left out between."""
    if len(line) <= longest:
        return line
    head, tail = longest * 2 // 3, longest // 3
    return f"{line[:head]} […{len(line) - head - tail:,} characters left out…] {line[-tail:]}"


def run_command(prog: str, command: Callable[[], int], debug: bool, config_errors: tuple[type[BaseException], ...] = ()) -> int:
    """``command()``'s exit status; a user error printed as ``prog: <line>`` with status :data:`EXIT_USER_ERROR`.

    A bug, or any error under ``debug``, raises on with its traceback.
    """
    try:
        return command()
    except Exception as err:
        line = None if debug else user_error_line(err, config_errors)
        if line is None:
            raise
        print(f"{prog}: {line}", file=sys.stderr)
        return EXIT_USER_ERROR


def stop(prog: str, line: str) -> NoReturn:
    """End the process now with user error ``line``, as :func:`run_command` would."""
    print(f"{prog}: {line}", file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR)
