"""Bootstrap uncertainty of accuracies: a confidence interval per row, and one of the difference between two rows.

A benchmark cell's accuracy is uncertain twice over: another seed (initialisation, batch order,
training sample) trains another model, and another evaluation set of the same size scores it
otherwise. Both come from the records alone: every run stores, for each metric that is a mean
over evaluation examples, each example's value (``RunRecord.example_scores``: 1 or 0 for an
example answered right or wrong, a generation run's ROUGE-L F on each). Any works here: a
per-example score is resampled as 0/1 correctness is, and the mean taken is then the mean score.

Both functions here are two-level bootstraps. Each resample draws a row's runs with
replacement, then the evaluation examples with replacement, and takes the mean accuracy of
the drawn runs on the drawn examples. The examples are drawn once per resample, for all the
drawn runs (and, for a paired difference, for both rows): the runs of a task share one evaluation
set, and runs tend to get the same examples right, so drawing examples for each run on its own
would average their evaluation noise away and narrow the interval by up to √runs for an
uncertainty the runs do not reduce.

- :func:`accuracy_interval`: the 2.5 and 97.5 percentiles of a row's resampled accuracy.
- :func:`paired_difference`: row A's accuracy minus row B's, the two rows' runs drawn each on
  their own and the examples drawn once for both (they are paired): the 95% interval of the
  difference, its size and uncertainty; whether the rows differ is the exact paired test's to say
  (zoo.report.paired_tests). Rows scored on other examples (another ``eval_fingerprint``) are
  refused: pairing them would be meaningless.

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
"""Resamples drawn at once: the (chunk, examples) arrays stay a few MB."""


def _runs(correct: list[list[bool]] | list[list[float]]) -> np.ndarray:
    """The runs' correctness (or per-example scores) as a (runs, examples) array of floats.

    Raises:
        ValueError: no runs, a run without examples, or runs of different numbers of examples.
    """
    sizes = sorted({len(run) for run in correct})
    if not correct or 0 in sizes:
        raise ValueError(
            f"need at least one run with at least one evaluation example, got {len(correct)} runs of {sizes} examples"
        )
    if len(sizes) > 1:
        raise ValueError(
            f"the runs have {sizes} evaluation examples; the bootstrap needs one evaluation set, the same examples in every run"
        )
    return np.asarray(correct, dtype=float)


def _resampled_accuracies(rows: list[np.ndarray], resamples: int, seed: int) -> np.ndarray:
    """(resamples, rows): each row's mean accuracy over its runs drawn with replacement, on examples drawn once for all rows."""
    rng = np.random.default_rng(seed)
    n = rows[0].shape[1]
    out = np.empty((resamples, len(rows)))
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        examples = rng.integers(0, n, size=(size, n))  # (chunk, n): the examples of each resample
        for j, runs in enumerate(rows):
            counts = rng.multinomial(len(runs), np.full(len(runs), 1 / len(runs)), size=size)  # (chunk, S): each run's draws
            per_example = counts @ runs / len(runs)  # (chunk, n): the drawn runs' mean correctness on each example
            out[start : start + size, j] = np.take_along_axis(per_example, examples, axis=1).mean(axis=1)
    return out


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def accuracy_interval(
    correct: list[list[bool]] | list[list[float]], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """The ``level`` bootstrap interval of the mean accuracy of runs whose per-example correctness is ``correct``.

    Args:
        correct: one list per run (seed), ``True`` where the run answered that evaluation example right, or the run's
            score on each example (ROUGE-L F) for the interval of the mean score.

    Raises:
        ValueError: no runs, a run without examples, or runs of different numbers of examples.
    """
    return _percentiles(_resampled_accuracies([_runs(correct)], resamples, seed)[:, 0], level)


@dataclass(frozen=True)
class Paired:
    """Row A's accuracy minus row B's on the same examples, and its interval."""

    difference: float
    low: float
    high: float


def paired_difference(
    a: list[list[bool]] | list[list[float]],
    b: list[list[bool]] | list[list[float]],
    fingerprints: tuple[set, set] | None = None,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Paired:
    """Row ``a``'s mean accuracy minus row ``b``'s, with a paired bootstrap interval (runs drawn per row, examples shared).

    Args:
        a, b: per run of each row, the correctness (or score) of every evaluation example, in the same example order.
        fingerprints: the ``eval_fingerprint`` values of each row's runs; pairing needs one, the same for both rows.

    Raises:
        ValueError: the rows were scored on other examples (fingerprints, or numbers of examples, differ).
    """
    if fingerprints is not None and not (len(fingerprints[0]) == 1 and fingerprints[0] == fingerprints[1]):
        raise ValueError(
            f"the rows were evaluated on other examples (evaluation-set fingerprints {sorted(map(str, fingerprints[0]))} "
            f"and {sorted(map(str, fingerprints[1]))}); a paired test needs one evaluation set for both"
        )
    runs_a, runs_b = _runs(a), _runs(b)
    if runs_a.shape[1] != runs_b.shape[1]:
        raise ValueError(
            f"the rows' runs have {runs_a.shape[1]} and {runs_b.shape[1]} evaluation examples; "
            f"a paired test needs the same examples in every run"
        )
    resampled = _resampled_accuracies([runs_a, runs_b], resamples, seed)
    low, high = _percentiles(resampled[:, 0] - resampled[:, 1], level)
    return Paired(float(runs_a.mean() - runs_b.mean()), low, high)
