"""What the property-based harness (test_hostile_inputs.py) draws from, and what it holds every outcome to.

Budgets are Hypothesis settings profiles: ``zoo-fast`` (a fixed number of examples per property, derandomised, so the
default tier stays within seconds and never flakes) and ``zoo-full`` (many more, random), which the test marked
``full`` uses, and every property under ``ZOO_HYPOTHESIS_PROFILE=zoo-full``. An outcome is acceptable when it is a correct result or an error of a user-error type raised by zoo's own
code (or a library's own argument checks), never one raised from inside torch or safetensors, and when nothing
outside the folder a call may write has changed.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import safetensors
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FAST, FULL = "zoo-fast", "zoo-full"
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
}
settings.register_profile(FAST, max_examples=25, derandomize=True, database=None, **_COMMON)
settings.register_profile(FULL, max_examples=400, **_COMMON)
BUDGET = settings.get_profile(os.environ.get("ZOO_HYPOTHESIS_PROFILE", FAST))
"""The profile of the default tier's properties; ``ZOO_HYPOTHESIS_PROFILE=zoo-full`` gives them the full budget."""

USER_ERRORS = (ValueError, TypeError, KeyError, OSError)
"""The types a user's bad input may raise (zoo's errors name the value; OSError covers missing and unreadable files)."""
INSIDE = tuple(str(Path(m.__file__).parent) for m in (torch, safetensors))
"""Libraries whose own frames must never be where a user's bad input surfaces."""

NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, -1, -1.5, 0, 0.0, 1e-9, 1e30, -(10**9), 2**40, 10**18])
WRONG_TYPES = st.sampled_from(
    ["", "16", "nan", "x" * 5000, True, False, None, [], {}, [None], [""], [-1], [10**12], ["re:("], {"a": 1}, b"bytes"]
)
HOSTILE = st.one_of(
    NUMBERS,
    WRONG_TYPES,
    st.integers(-1000, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(-5, 10**6), max_size=4),
    st.lists(st.text(max_size=8), max_size=3),
)
"""A value for any config field: non-finite, negative, huge, empty, or of another type."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail an example that runs longer than ``seconds`` (a hang is a finding too)."""

    def expired(signum, frame):
        raise TimeoutError(f"the example ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_error(err: BaseException, *names: str) -> None:
    """``err`` is a user error raised outside torch and safetensors, and its message names one of ``names`` (if given)."""
    where = traceback.extract_tb(err.__traceback__)[-1].filename if err.__traceback__ else ""
    assert isinstance(err, USER_ERRORS) and not isinstance(err, TimeoutError), f"{type(err).__name__}: {err}"
    assert not where.startswith(INSIDE), f"raised inside {where}: {type(err).__name__}: {err}"
    assert not names or any(name in str(err) for name in names), f"the message names none of {names}: {err}"


def snapshot(*folders: Path) -> dict[str, str]:
    """Path -> sha256 of every file under ``folders``: what must be unchanged after a call."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()
    }
