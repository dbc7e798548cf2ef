"""Exact paired tests of a row against the reference row on the same evaluation examples, and Holm's correction over a table's.

Two rows scored on the same evaluation examples give one paired difference per example, and
the test is exact for that design:

- :func:`mcnemar`: for a metric whose value on each example is 0 or 1 (``MetricSpec.binary``:
  accuracy, exact match) and one run a row, McNemar's exact test: the two-sided binomial test
  of the discordant examples (one row right, the other wrong) against an even split.
- :func:`sign_flip`: otherwise (ROUGE-L F, or several runs a row), a paired permutation test.
  Under the null hypothesis that the two rows are exchangeable on every example, each
  example's difference is as likely to have the other sign; the p-value is the share of sign
  flips whose summed difference lies at least as far from 0 as the observed one (two-sided).
  Up to :data:`EXACT_UP_TO` non-zero differences every flip is enumerated; beyond, a fixed
  number of random flips with a fixed generator seed, the observed one counted among them
  (p = (1 + hits) / (1 + resamples), never 0), so a table regenerates to the same digits.

:func:`paired_test` picks between them. With several runs a row (seeds), run i of a row is
paired with the run of the other row at the same seed and training sample (zoo.report.uncertainty
matches them); each example's difference is averaged over the pairs, and the permutation test
takes those means: McNemar's test needs values of 0 or 1, which means over runs are not (on
one pair of 0/1 values the enumerated permutation test is McNemar's).

:func:`holm`: Holm's step-down adjustment of the p-values of one table's comparisons (each row
against its reference), which holds the chance of any false ``differs`` among them to the level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from zoo.report.bootstrap import CHUNK, RESAMPLES, SEED

EXACT_UP_TO = 16
"""Non-zero differences up to which :func:`sign_flip` enumerates every flip (2**16 of them) instead of drawing them."""


@dataclass(frozen=True)
class PairedTest:
    """A row against its reference on the same examples: the test's name, its two-sided p-value and what a power
    calculation for the design needs (zoo.report.power)."""

    test: str
    """``McNemar`` or ``permutation``."""
    p: float
    examples: int
    discordant: float | None
    """McNemar's test: the share of examples the two runs score differently; None for the permutation test."""
    sd: float
    """The standard deviation of the per-example differences (means over the run pairs)."""


def mcnemar(b: int, c: int) -> float:
    """McNemar's exact two-sided p-value of ``b`` examples right in one row only and ``c`` in the other only:
    2 · P(X ≤ min(b, c)) for X ~ Binomial(b + c, 1/2), at most 1."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)


def sign_flip(differences, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """The two-sided p-value of the paired permutation test of per-example ``differences`` (sign flips of their sum)."""
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    observed = abs(d.sum()) - 1e-9 * np.abs(d).sum()  # a flip that sums to the observed in another order still counts
    if d.size <= EXACT_UP_TO:
        signs = 1 - 2 * ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1)
        return float((np.abs(signs @ d) >= observed).mean())
    rng, hits = np.random.default_rng(seed), 0
    for start in range(0, resamples, CHUNK):
        signs = 1 - 2 * rng.integers(0, 2, size=(min(CHUNK, resamples - start), d.size))
        hits += int((np.abs(signs @ d) >= observed).sum())
    return (1 + hits) / (1 + resamples)


def paired_test(
    a: list[list[float]], b: list[list[float]], binary: bool = False, resamples: int = RESAMPLES, seed: int = SEED
) -> PairedTest:
    """Row ``a`` against row ``b`` on the same examples: ``a[i]`` and ``b[i]`` are the per-example values of a pair of
    runs (the same seed and training sample), in the same example order.

    Args:
        binary: the metric's values are 0 or 1 (``MetricSpec.binary``): one pair of runs is tested by McNemar's test.

    Raises:
        ValueError: no pairs, runs of different numbers of examples, or values other than 0 and 1 for a binary metric.
    """
    sizes = {len(run) for run in (*a, *b)}
    if not a or len(a) != len(b) or len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            f"a paired test needs pairs of runs on the same examples, got {len(a)} and {len(b)} runs of {sorted(sizes)} examples"
        )
    runs_a, runs_b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if binary:
        odd = sorted(set(np.unique(np.concatenate([runs_a, runs_b]))) - {0.0, 1.0})
        if odd:
            raise ValueError(
                f"the metric is declared binary (each example's value 0 or 1), yet the runs hold "
                f"{', '.join(f'{v:g}' for v in odd[:3])}{' ...' if len(odd) > 3 else ''}"
            )
    differences = (runs_a - runs_b).mean(axis=0)
    sd = float(differences.std(ddof=1)) if differences.size > 1 else 0.0
    if binary and len(runs_a) == 1:
        only_a, only_b = int((runs_a > runs_b).sum()), int((runs_a < runs_b).sum())
        return PairedTest("McNemar", mcnemar(only_a, only_b), differences.size, (only_a + only_b) / differences.size, sd)
    return PairedTest("permutation", sign_flip(differences, resamples, seed), differences.size, None, sd)


def holm(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-values, in the given order: the k-th smallest of m raw p-values times (m - k + 1), at most 1,
    and never below an adjusted value of a smaller raw one."""
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(sorted(range(len(p_values)), key=p_values.__getitem__)):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
