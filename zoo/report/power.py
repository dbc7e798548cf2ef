"""The minimum detectable difference of a task's paired comparisons: the smallest true difference in the objective that the
design finds with 80% power at the 5% level (two-sided).

A row differs from the reference row where the paired test says so (zoo.report.paired_tests);
a row that does not may be as good, or the evaluation set too small to tell. This figure says
which differences the table can tell apart at all, from the examples it has and from how much
the paired rows disagree on them:

- McNemar's design (0/1 values, one run a row): the normal approximation of the sample size of
  a paired binary comparison (Connor, 1987, Biometrics 43: 207-211),
  n = (z_{α/2} √p_d + z_β √(p_d - δ²))² / δ², solved for δ at the table's n and its observed
  discordant share p_d (the examples the two rows score differently). Squared, it is the
  quadratic (n + z_β²) δ² - 2 z_{α/2} √(n p_d) δ + (z_{α/2}² - z_β²) p_d = 0, whose larger
  root is δ = √p_d (z_{α/2} √n + z_β √(n - z_{α/2}² + z_β²)) / (n + z_β²).
- The permutation test's design (scores per example, or means over several runs): the paired-t
  approximation δ = (z_{α/2} + z_β) · sd / √n, sd the standard deviation of the per-example
  differences.
"""

from __future__ import annotations

import math
import statistics

from zoo.report.paired_tests import PairedTest

POWER = 0.8
LEVEL = 0.05
"""The test's two-sided significance level."""


def minimum_detectable_difference(
    examples: int, *, discordant: float | None = None, sd: float | None = None, power: float = POWER, level: float = LEVEL
) -> float:
    """The smallest true difference a paired comparison on ``examples`` examples detects with ``power`` at ``level``.

    Args:
        discordant: McNemar's design: the share of examples the two rows score differently (Connor's formula).
        sd: the permutation test's design: the standard deviation of the per-example differences (paired t).

    Returns:
        The difference, in the metric's units; infinite where no difference is detectable (fewer than z_{α/2}² examples
        under McNemar's design).

    Raises:
        ValueError: neither or both of ``discordant`` and ``sd``.
    """
    if (discordant is None) == (sd is None):
        raise ValueError("give the discordant share (McNemar's design) or the sd of the differences (paired t), one of them")
    z_level, z_power = statistics.NormalDist().inv_cdf(1 - level / 2), statistics.NormalDist().inv_cdf(power)
    if sd is not None:
        return (z_level + z_power) * sd / math.sqrt(examples)
    if examples < z_level**2:
        return math.inf
    return (
        math.sqrt(discordant)
        * (z_level * math.sqrt(examples) + z_power * math.sqrt(examples - z_level**2 + z_power**2))
        / (examples + z_power**2)
    )


def design_minimum_detectable_difference(tests: list[PairedTest]) -> float | None:
    """The minimum detectable difference of a table's comparisons (each row against its reference), at the fewest examples
    among them: McNemar's design, from their mean discordant share, where every one is a McNemar test, else the paired-t
    one, from the root mean square of their sds. None: no comparison."""
    if not tests:
        return None
    examples = min(t.examples for t in tests)
    if all(t.discordant is not None for t in tests):
        return minimum_detectable_difference(examples, discordant=statistics.fmean(t.discordant for t in tests))
    return minimum_detectable_difference(examples, sd=math.sqrt(statistics.fmean(t.sd**2 for t in tests)))
