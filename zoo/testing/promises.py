"""Contract failures that say which promise broke: the flag or rule, the method, the family, the tensors.

A contract check compares numbers; a bare "Tensor-likes are not close" does not tell a plugin's
author what to fix. Every check states the promise it tests (``identity_at_init=True: the wrapped
model's outputs equal the base model's``), and a failure starts with it, the method and the tiny
family, then gives the numbers.
"""

from __future__ import annotations

import torch


class BrokenPromise(AssertionError):
    """A method broke a promise of the contract: the message names it, the method and the family."""


def broken(promise: str, method: str, kind: str, detail: str = "") -> str:
    """The message of a broken promise."""
    return f"method {method!r} on {kind} breaks the promise {promise}" + (f":\n{detail}" if detail else "")


def holds(condition: bool, promise: str, method: str, kind: str, detail: str = "") -> None:
    """Raise :class:`BrokenPromise` unless ``condition``."""
    __tracebackhide__ = True  # a failure points at the check, not at this helper
    if not condition:
        raise BrokenPromise(broken(promise, method, kind, detail))


def close(got: torch.Tensor, expected: torch.Tensor, promise: str, method: str, kind: str, **tolerance) -> None:
    """``torch.testing.assert_close(got, expected, **tolerance)``, failing as a broken ``promise`` with the numbers."""
    __tracebackhide__ = True
    try:
        torch.testing.assert_close(got, expected, **tolerance)
    except AssertionError as err:
        raise BrokenPromise(broken(promise, method, kind, str(err))) from None
