"""Successive halving over a log-spaced grid: the search a benchmark runs per method and ``trainer.learning_rate=auto`` runs
for one run.

Successive halving (Jamieson & Talwalkar, 2016, "Non-stochastic best arm identification and
hyperparameter optimization", AISTATS, Algorithm 1; the inner loop of Hyperband, Li et al., 2018):
every configuration trains for a small budget, the best ``⌈n / η⌉`` of the ``n`` train again for a
larger one, and so on; the last rung's best is the choice. Here a rung's budget is a fraction of
the run's training steps (the last rung the whole run), a trial always trains from scratch (its
record is an ordinary run's), and a rung's ``n`` follows from the grid alone, so every method
searched with the same grid size and :class:`Halving` gets the same number of trials.

The grid is log-spaced (:func:`check_log_grid`): a learning rate matters by its order of
magnitude, and the rates chosen on a tiny model were a decade off on real checkpoints, so the
grid spans at least two decades around the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

RATE_SCALES = (0.025, 0.063, 0.16, 0.4, 1.0, 2.5)
"""Multipliers of a method's default rate: 6 values a factor of about 2.5 apart (10^0.4), 2 decades, the default among them
and more below it than above (a default chosen on a tiny model was too high on the real checkpoints tried)."""
MIN_VALUES, MIN_DECADES = 6, 2.0
"""What :func:`check_log_grid` asks of a searched grid."""
SPACING_TOLERANCE = 0.05
"""The largest departure of a step between neighbours (in decades) from the mean step, as a fraction of it: values rounded
to two significant figures stay log-spaced."""


@dataclass(frozen=True)
class Halving:
    """A successive-halving schedule: ``eta`` the reduction factor, ``fractions`` each rung's share of the full run's steps."""

    eta: int
    fractions: tuple[float, ...]

    def __post_init__(self) -> None:
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(
                f"halving eta must be an integer of at least 2 (the share of a rung that goes on: 1/eta), got {self.eta!r}"
            )
        fractions = list(self.fractions)
        if not fractions or any(not 0 < f <= 1 for f in fractions) or fractions != sorted(set(fractions)):
            raise ValueError(f"halving fractions must be increasing shares of the run's steps in (0, 1], got {fractions}")

    def sizes(self, configurations: int) -> list[int]:
        """How many configurations train at each rung: ``n``, then ``⌈n / η⌉``, ``⌈n / η²⌉``, ... (at least one)."""
        return [max(1, math.ceil(configurations / self.eta**k)) for k in range(len(self.fractions))]

    def steps(self, max_steps: int) -> list[int]:
        """Each rung's training steps out of a run of ``max_steps`` (at least one)."""
        return [max(1, round(f * max_steps)) for f in self.fractions]

    def trials(self, configurations: int) -> int:
        """Trials a search of ``configurations`` runs in all: the sum of the rungs' sizes."""
        return sum(self.sizes(configurations))


def survivors(scored: Sequence[T], keep: int, rank: Callable[[T], tuple]) -> list[T]:
    """The ``keep`` best of ``scored`` by ``rank`` (smaller first: the rank of the best is the smallest), in that order."""
    return sorted(scored, key=rank)[:keep]


def check_log_grid(values: Sequence[float], name: str, min_values: int = MIN_VALUES, min_decades: float = MIN_DECADES) -> None:
    """Refuse a grid of fewer than ``min_values`` positive values, spanning less than ``min_decades``, or not log-spaced.

    Raises:
        ValueError: naming the grid, its values and what is missing.
    """
    if len(values) < min_values or any(isinstance(v, bool) or not isinstance(v, int | float) or not v > 0 for v in values):
        raise ValueError(f"{name} must hold at least {min_values} numbers above 0, got {list(values)}")
    logs = sorted(math.log10(v) for v in values)
    if logs[-1] - logs[0] < min_decades - 1e-9:
        raise ValueError(
            f"{name} must span at least {min_decades:g} decades (largest / smallest >= {10**min_decades:g}), "
            f"got {list(values)}: {10 ** (logs[-1] - logs[0]):.3g}"
        )
    steps = [b - a for a, b in zip(logs, logs[1:])]
    mean = (logs[-1] - logs[0]) / len(steps)
    if any(abs(s - mean) > SPACING_TOLERANCE * mean for s in steps):
        raise ValueError(
            f"{name} must be log-spaced (each value the same factor above the one before), got {sorted(values)}: "
            f"factors {', '.join(f'{10**s:.3g}' for s in steps)}"
        )
