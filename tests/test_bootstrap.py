"""zoo.report.bootstrap against cases with known answers: certain runs, the normal approximation, pairing (the interval of a
difference; the tests of one are tests/test_paired_tests.py's)."""

from __future__ import annotations

import math

import pytest

from zoo.report.bootstrap import accuracy_interval, paired_difference


def _run(right: int, n: int) -> list[bool]:
    return [True] * right + [False] * (n - right)


def test_a_run_right_or_wrong_everywhere_has_no_uncertainty():
    assert accuracy_interval([[True] * 50]) == (1.0, 1.0)
    assert accuracy_interval([[False] * 50, [False] * 50]) == (0.0, 0.0)


@pytest.mark.parametrize("n", [100, 400, 1600])
def test_one_run_at_half_accuracy_matches_the_normal_approximation(n):
    low, high = accuracy_interval([_run(n // 2, n)])
    half_width = 1.96 * math.sqrt(0.25 / n)
    assert low == pytest.approx(0.5 - half_width, abs=0.15 * half_width)
    assert high == pytest.approx(0.5 + half_width, abs=0.15 * half_width)


def test_the_interval_narrows_with_more_examples():
    widths = [high - low for low, high in (accuracy_interval([_run(n // 2, n)]) for n in (50, 200, 800))]
    assert widths[0] > 1.8 * widths[1] > 1.8 * 1.8 * widths[2]  # ~2x per 4x the examples


def test_spread_between_seeds_widens_the_interval():
    """Runs at 0.6 and 0.8 on 400 examples each: the seed level adds the gap between them to the examples' noise."""
    together = accuracy_interval([_run(240, 400), _run(320, 400)])
    alike = accuracy_interval([_run(280, 400), _run(280, 400)])
    assert together[1] - together[0] > 2 * (alike[1] - alike[0])
    assert together[0] < 0.62 and together[1] > 0.78  # the resamples of both runs from one seed reach either one's level


def test_runs_that_agree_on_every_example_are_as_uncertain_as_one():
    """The examples are drawn once for all runs: five copies of a run do not make its evaluation set five times larger."""
    run = [i % 3 != 0 for i in range(150)]
    assert accuracy_interval([run] * 5) == accuracy_interval([run])


def test_the_same_inputs_give_the_same_interval():
    """A fixed generator seed: RESULTS.md regenerates to the same digits."""
    runs = [_run(30, 64), _run(41, 64), _run(33, 64)]
    assert accuracy_interval(runs) == accuracy_interval(runs)
    assert paired_difference(runs, runs[:1]) == paired_difference(runs, runs[:1])


def test_identical_predictions_differ_by_nothing():
    run = [i % 3 == 0 for i in range(300)]
    paired = paired_difference([run, run], [run])
    assert (paired.difference, paired.low, paired.high) == (0.0, 0.0, 0.0)


def test_forty_more_right_of_three_hundred_is_an_interval_above_zero():
    lora = [i % 2 == 0 for i in range(300)]  # 150 right
    better = [right or i in range(1, 80, 2) for i, right in enumerate(lora)]  # and 40 of the wrong ones
    paired = paired_difference([better], [lora])
    assert paired.difference == pytest.approx(40 / 300)
    assert 0 < paired.low < 40 / 300 < paired.high
    assert paired_difference([lora], [better]).high < 0  # the other way round: below zero


def test_a_few_more_right_is_an_interval_around_zero():
    """3 of 300 examples better on one run: within the resampling noise of the examples."""
    lora = [i % 2 == 0 for i in range(300)]
    better = [right or i in (1, 3, 5) for i, right in enumerate(lora)]
    paired = paired_difference([better], [lora])
    assert paired.low <= 0 < paired.difference < paired.high


def test_other_evaluation_sets_are_refused():
    run = _run(10, 20)
    with pytest.raises(ValueError, match=r"other examples \(evaluation-set fingerprints \['aaa'\] and \['bbb'\]\)"):
        paired_difference([run], [run], fingerprints=({"aaa"}, {"bbb"}))
    with pytest.raises(ValueError, match=r"fingerprints \['aaa', 'ccc'\] and \['aaa'\]"):  # a row of two evaluation sets
        paired_difference([run, run], [run], fingerprints=({"aaa", "ccc"}, {"aaa"}))
    with pytest.raises(ValueError, match=r"the rows' runs have 20 and 19 evaluation examples"):
        paired_difference([run], [run[:19]])
    with pytest.raises(ValueError, match=r"the runs have \[19, 20\] evaluation examples; the bootstrap needs one evaluation set"):
        accuracy_interval([run, run[:19]])
    with pytest.raises(ValueError, match="at least one run with at least one evaluation example, got 0 runs"):
        accuracy_interval([])
