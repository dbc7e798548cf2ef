"""Which (method, family) pairs each contract check runs on, and the pairs known to fail.

A check declares its cells with :func:`runs_on`; :func:`parametrise`, called from a test
module's ``pytest_generate_tests``, turns that into one test per pair of the methods and
families given. A pair the method's capability flags exclude (model kind, positional
scheme) is not skipped: the ``refused`` cells check that ``wrap`` refuses it, with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pytest

import zoo
from zoo.testing.helpers import generates, refused

Pair = tuple[str, str]
CELLS = ("supported", "refused", "identity", "mergeable", "generating", "optimizer", "positions")
_EMPTY = {
    "optimizer": "no selected method declares its optimizer (OptimizerRecipe) on a selected family it supports",
    "supported": "no selected method supports a selected family",
    "refused": "no selected method refuses a selected family",
    "identity": "no selected method declares identity_at_init on a selected family it supports",
    "mergeable": "no selected method declares mergeable on a selected family it supports",
    "generating": "no selected family is a decoder that a selected method supports",
    "positions": "no selected method declares positions on a decoder it supports",
}

KNOWN_GAPS: dict[Pair, str] = {}
"""Pairs of zoo's own methods that fail for a reason outside the method contract: where a check runs the model
forward they are strict expected failures, so a fix turns them into failures to remove here."""


def runs_on(cells: str, runs_forward: bool = True) -> Callable:
    """Declare the cells a contract check runs on: one of :data:`CELLS`.

    ``runs_forward``: the check runs the model forward, so a :data:`KNOWN_GAPS` pair is an expected failure there.
    """
    if cells not in CELLS:
        raise ValueError(f"unknown contract cells {cells!r}; choose one of {CELLS}")

    def declare(check: Callable) -> Callable:
        check.zoo_contract_cells = (cells, runs_forward)
        return check

    return declare


@functools.cache
def _split(methods: tuple[str, ...], families: tuple[str, ...]) -> tuple[list[Pair], list[Pair]]:
    pairs = [(m, k) for m in methods for k in families]
    return [p for p in pairs if refused(*p) is None], [p for p in pairs if refused(*p) is not None]


def cells(methods: Sequence[str], families: Sequence[str]) -> tuple[list[Pair], list[Pair]]:
    """``(supported, refused)`` (method, family) pairs, methods outer, in the order given."""
    supported, refusing = _split(tuple(methods), tuple(families))
    return list(supported), list(refusing)


def selected(which: str, methods: Sequence[str], families: Sequence[str]) -> list[Pair]:
    """The pairs of ``which`` (one of :data:`CELLS`) among ``methods`` × ``families``."""
    supported, refusing = cells(methods, families)
    if which == "refused":
        return refusing
    if which == "identity":
        return [(m, k) for m, k in supported if zoo.get_method(m).identity_at_init]
    if which == "mergeable":
        return [(m, k) for m, k in supported if zoo.get_method(m).mergeable]
    if which == "generating":
        return [(m, k) for m, k in supported if generates(k)]
    if which == "optimizer":
        return [(m, k) for m, k in supported if zoo.get_method(m).optimizer is not None]
    if which == "positions":
        return [(m, k) for m, k in supported if zoo.get_method(m).positions and generates(k)]
    return supported


def parametrise(
    metafunc: pytest.Metafunc,
    methods: Sequence[str],
    families: Sequence[str],
    marks: Callable[[str, str], list[pytest.MarkDecorator]] | None = None,
) -> None:
    """Parametrise a contract check (one marked by :func:`runs_on`) over its pairs; leave other tests alone.

    ``marks``: further marks of a pair (zoo's own tests mark the pairs of their slow tier).
    """
    declared = getattr(metafunc.function, "zoo_contract_cells", None)
    if declared is None:
        return
    which, runs_forward = declared
    pairs = selected(which, methods, families)
    if not pairs:
        metafunc.parametrize(
            ("method", "kind"), [pytest.param(None, None, id="none", marks=pytest.mark.skip(reason=_EMPTY[which]))]
        )
        return
    params = [
        pytest.param(m, k, id=f"{m}-{k}", marks=[*_known_gap(m, k, runs_forward), *(marks(m, k) if marks else [])])
        for m, k in pairs
    ]
    metafunc.parametrize(("method", "kind"), params)


def _known_gap(method: str, kind: str, runs_forward: bool) -> list[pytest.MarkDecorator]:
    if not runs_forward or (method, kind) not in KNOWN_GAPS:
        return []
    return [pytest.mark.xfail(reason=KNOWN_GAPS[method, kind], strict=True, raises=RuntimeError)]
