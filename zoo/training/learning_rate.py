"""The one place a run's learning rates are decided, for the runner and for ``resume`` alike.

In order of precedence, the method's parameters train at ``trainer.learning_rate``, else the
run's method's entry of ``method_learning_rates``, else the method's own default (its spec's
``learning_rate``), that rate times ``trainer.learning_rate_scale`` (default 1); a baseline's
head (the linear probe) at ``trainer.learning_rate``, else :data:`HEAD_LEARNING_RATE`. A
classification head trains at ``task.head_learning_rate``, else at the rate of the method beside it.

The scale exists for searches (benchmarks/tune.py): one sweep ``trainer.learning_rate_scale=0.3,3``
gives every method the same trials around its own rate, which no single ``trainer.learning_rate``
can. It scales the method's rate only, wherever that rate came from, and so the head's where the
head follows it; a baseline has no method rate and is not scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.method import MethodSpec
from zoo.registry import list_methods

AUTO = "auto"
"""``trainer.learning_rate=auto``: the runner searches the rate on the validation split first (zoo.runner.rate_search) and
plans the run at the rate it chose; :func:`resolve` never sees it."""
HEAD_LEARNING_RATE = 1e-2
"""A linear probe's learning rate when neither task.head_learning_rate nor trainer.learning_rate is set."""


@dataclass(frozen=True)
class LearningRates:
    method: float | None
    """The method's parameters' rate; None: no method trains (a baseline)."""
    head: float | None
    """The classification head's rate; None: no head."""


def resolve(
    trainer_rate: float | str | None,
    method_rates: dict[str, float],
    spec: MethodSpec | None,
    head: bool,
    head_rate: float | None,
    scale: float = 1.0,
) -> LearningRates:
    """The run's rates from its settings (see the module docstring).

    Args:
        spec: the run's method; None for a baseline.
        head: whether a classification head trains (the head formulation, the linear probe).
        scale: ``trainer.learning_rate_scale``, multiplying the method's rate.

    Raises:
        ValueError: ``method_learning_rates`` naming an unregistered method or holding a rate that is not a finite number
            above 0, or a ``scale`` that is not one.
    """
    if trainer_rate == AUTO:
        raise ValueError(
            "trainer.learning_rate=auto is searched before a run is planned (zoo.runner.rate_search, through the "
            "zoo command); plan the run at the rate the search chose"
        )
    check_method_rates(method_rates)
    check_scale(scale)
    if spec is None:
        method = None
        base = trainer_rate if trainer_rate is not None else HEAD_LEARNING_RATE
    else:
        method = scale * (trainer_rate if trainer_rate is not None else method_rates.get(spec.name, spec.learning_rate))
        base = method
    return LearningRates(method, (head_rate if head_rate is not None else base) if head else None)


def check_method_rates(rates: dict[str, float]) -> None:
    unknown = sorted(set(rates) - set(list_methods()))
    if unknown:
        raise ValueError(f"method_learning_rates names unknown method(s) {unknown}; registered methods: {list_methods()}")
    bad = {name: rate for name, rate in rates.items() if not 0 < rate < math.inf}
    if bad:
        raise ValueError(f"method_learning_rates must be finite numbers above 0, got {bad}")


def check_scale(scale: float) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
        raise ValueError(f"learning_rate_scale must be a finite number above 0 (1: the resolved rate as it is), got {scale!r}")


def check_rate(rate) -> None:
    """A ``trainer.learning_rate``: None, ``auto`` or a finite number above 0."""
    number = isinstance(rate, int | float) and not isinstance(rate, bool)
    if not (rate is None or rate == AUTO or (number and 0 < rate < math.inf)):
        raise ValueError(
            f"learning_rate must be a finite number above 0 (or null: the method's default; {AUTO}: a search on "
            f"the validation split chooses it), got {rate!r}"
        )
