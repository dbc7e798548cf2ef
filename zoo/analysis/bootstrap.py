"""Bootstrap uncertainty of accuracies: a confidence interval per row, and a paired test of two rows.

A benchmark cell's accuracy is uncertain twice over: another seed (initialisation, batch order,
training sample) trains another model, and another evaluation set of the same size scores it
otherwise. Both come from the records alone: every run stores which evaluation examples it got
right (``RunRecord.eval_correct``).

- :func:`accuracy_interval` is a two-level bootstrap: draw the row's runs with replacement, then
  each drawn run's examples with replacement, and take the mean accuracy; the 2.5 and 97.5
  percentiles of that mean over the resamples are the 95% interval. Resampling the ``n`` 0/1
  answers of a run with ``k`` right has exactly the distribution of Binomial(n, k/n) right
  answers, so the second level draws that count instead of ``n`` indices (same result, no
  n-sized arrays).
- :func:`paired_difference` compares two rows on the same evaluation examples: each row's runs
  are drawn with replacement (the two rows' runs are not paired), the examples once for both
  (they are), and the mean accuracy difference is taken per resample. Two rows are
  distinguishable at 5% when the 95% interval of the difference excludes 0. Rows scored on other
  examples (another ``eval_fingerprint``) are refused: pairing them would be meaningless.

Fixed generator seeds make every table that prints these reproducible to the digit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
"""Bootstrap resamples per interval: the 2.5% tail then holds 250 of them, enough for a stable third digit."""
SEED = 0
LEVEL = 0.95
CHUNK = 1000
"""Resamples drawn at once by :func:`paired_difference`: its (chunk, examples) arrays stay a few MB."""


def _runs(correct: list[list[bool]]) -> list[np.ndarray]:
    if not correct or any(len(run) == 0 for run in correct):
        raise ValueError(f"need at least one run with at least one evaluation example, got {len(correct)} runs "
                         f"of {[len(run) for run in correct]} examples")
    return [np.asarray(run, dtype=bool) for run in correct]


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def accuracy_interval(correct: list[list[bool]], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """The ``level`` bootstrap interval of the mean accuracy of runs whose per-example correctness is ``correct``.

    Args:
        correct: one list per run (seed), ``True`` where the run answered that evaluation example right.

    Raises:
        ValueError: no runs, or a run without examples.
    """
    runs = _runs(correct)
    rng = np.random.default_rng(seed)
    sizes = np.array([len(r) for r in runs])
    rates = np.array([r.mean() for r in runs])
    chosen = rng.integers(0, len(runs), size=(resamples, len(runs)))  # (B, S): the runs of each resample
    right = rng.binomial(sizes[chosen], rates[chosen])  # (B, S): each drawn run's examples, resampled
    return _percentiles((right / sizes[chosen]).mean(axis=1), level)


@dataclass(frozen=True)
class Paired:
    """Row A's accuracy minus row B's on the same examples, its interval, and whether the interval excludes 0."""

    difference: float
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_difference(a: list[list[bool]], b: list[list[bool]], fingerprints: tuple[set, set] | None = None,
                      level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED) -> Paired:
    """Row ``a``'s mean accuracy minus row ``b``'s, with a paired bootstrap interval (runs drawn per row, examples shared).

    Args:
        a, b: per run of each row, the correctness of every evaluation example, in the same example order.
        fingerprints: the ``eval_fingerprint`` values of each row's runs; pairing needs one, the same for both rows.

    Raises:
        ValueError: the rows were scored on other examples (fingerprints, or numbers of examples, differ).
    """
    if fingerprints is not None and not (len(fingerprints[0]) == 1 and fingerprints[0] == fingerprints[1]):
        raise ValueError(f"the rows were evaluated on other examples (evaluation-set fingerprints {sorted(map(str, fingerprints[0]))} "
                         f"and {sorted(map(str, fingerprints[1]))}); a paired test needs one evaluation set for both")
    runs_a, runs_b = _runs(a), _runs(b)
    sizes = {len(r) for r in runs_a + runs_b}
    if len(sizes) != 1:
        raise ValueError(f"the rows' runs have {sorted(sizes)} evaluation examples; a paired test needs the same examples in every run")
    runs_a, runs_b = np.stack(runs_a).astype(float), np.stack(runs_b).astype(float)  # (S_a, n), (S_b, n)
    rng = np.random.default_rng(seed)
    n = runs_a.shape[1]
    diffs = np.empty(resamples)
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        per_example = _resampled_runs(rng, runs_a, size) - _resampled_runs(rng, runs_b, size)  # (chunk, n)
        examples = rng.integers(0, n, size=(size, n))  # (chunk, n): the examples of each resample, one draw for both rows
        diffs[start:start + size] = np.take_along_axis(per_example, examples, axis=1).mean(axis=1)
    low, high = _percentiles(diffs, level)
    return Paired(float(runs_a.mean() - runs_b.mean()), low, high)


def _resampled_runs(rng: np.random.Generator, runs: np.ndarray, size: int) -> np.ndarray:
    """``size`` resamples of the runs (rows of ``runs``, S x n) with replacement, each as its per-example mean (size x n)."""
    counts = rng.multinomial(len(runs), np.full(len(runs), 1 / len(runs)), size=size)  # (size, S): how often each run is drawn
    return counts @ runs / len(runs)
