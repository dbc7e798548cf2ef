"""The exact paired tests (zoo.report.paired_tests), Holm's correction and the minimum detectable difference (zoo.report.power)
against cases computed by hand, and a report whose marks Holm's correction changes."""

from __future__ import annotations

import math

import pytest
from records_helpers import record_dict

from zoo.report.html_table import table_html
from zoo.report.paired_tests import PairedTest, holm, mcnemar, paired_test, sign_flip
from zoo.report.power import design_minimum_detectable_difference, minimum_detectable_difference
from zoo.report.table import load_runs, markdown, summarise
from zoo.runtime.atomic import write_json
from zoo.task_kinds import MetricSpec


def test_mcnemar_is_the_two_sided_binomial_tail_of_the_discordant_examples():
    """10 examples right in one row only, 2 in the other: 2 · P(X ≤ 2; n=12, 1/2) = 2 · (1 + 12 + 66) / 4096."""
    assert mcnemar(10, 2) == mcnemar(2, 10) == pytest.approx(0.0386, abs=1e-4) == 2 * 79 / 4096
    assert mcnemar(6, 0) == 2 / 64  # every discordant example one way
    assert mcnemar(5, 5) == 1.0 and mcnemar(0, 0) == 1.0  # the tail doubled past 1, and nothing discordant


def test_the_permutation_test_enumerates_every_sign_flip_of_a_few_differences():
    """Differences 0.3, -0.1, 0.2 (and a 0, which no flip changes) sum to 0.4; of the 8 flips, |sum| ≥ 0.4 for
    +0.3-0.1+0.2, +0.3+0.1+0.2 and their mirror images: p = 4/8."""
    assert sign_flip([0.3, -0.1, 0.2, 0.0]) == 0.5
    assert sign_flip([1, 2, 3, 4]) == 2 / 16  # only all + and all - reach 10
    assert sign_flip([0.0, 0.0]) == 1.0


def test_on_one_pair_of_0_1_values_the_permutation_test_is_mcnemars():
    assert sign_flip([1] * 10 + [-1] * 2 + [0] * 30) == mcnemar(10, 2)  # 12 non-zero differences: enumerated
    drawn = sign_flip([1] * 60 + [-1] * 40)  # 100: 10,000 random flips, against the exact 2 · P(X ≥ 60; n=100, 1/2)
    assert drawn == pytest.approx(mcnemar(60, 40), abs=0.01) and drawn == sign_flip([1] * 60 + [-1] * 40)  # a fixed seed
    assert sign_flip([1] * 20) == 1 / 10_001  # no drawn flip reaches the observed one, which counts: never 0


def test_a_row_of_one_binary_run_is_tested_by_mcnemar_and_of_several_by_permutation():
    a, b = [[1] * 10 + [0] * 2 + [1] * 20 + [0] * 8], [[0] * 10 + [1] * 2 + [1] * 20 + [0] * 8]
    test = paired_test(a, b, binary=True)
    assert (test.test, test.p, test.examples, test.discordant) == ("McNemar", mcnemar(10, 2), 40, 12 / 40)
    assert paired_test(a, b).test == "permutation" and paired_test(a, b).p == mcnemar(10, 2)  # a score per example
    several = paired_test([[1, 1, 0, 1], [1, 0, 0, 1]], [[0, 1, 0, 0], [0, 1, 0, 0]], binary=True)
    assert several.test == "permutation" and several.discordant is None
    assert several.p == sign_flip([1, -0.5, 0, 1]) == 4 / 8  # each example's difference averaged over the two pairs
    assert several.sd == pytest.approx(0.75)  # of 1, -0.5, 0, 1


def test_values_other_than_0_and_1_of_a_binary_metric_and_unpaired_runs_are_refused():
    with pytest.raises(ValueError, match=r"declared binary \(each example's value 0 or 1\), yet the runs hold 0.5"):
        paired_test([[1, 0.5]], [[1, 0]], binary=True)
    with pytest.raises(ValueError, match=r"pairs of runs on the same examples, got 2 and 1 runs of \[2\] examples"):
        paired_test([[1, 0], [0, 1]], [[1, 0]])
    with pytest.raises(ValueError, match=r"got 1 and 1 runs of \[2, 3\] examples"):
        paired_test([[1, 0]], [[1, 0, 1]])
    with pytest.raises(ValueError, match="binary but not per_example"):
        MetricSpec("odd", "odd", binary=True)


def test_holm_multiplies_the_kth_smallest_of_m_by_m_minus_k_plus_1_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 · 0.01; 2 · 0.03; 1 · 0.04, raised to 0.06
    assert holm([0.04, 0.01]) == pytest.approx([0.04, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([]) == []


def test_the_minimum_detectable_difference_of_a_paired_design():
    """n = 100, discordant share 0.2: δ = √0.2 · (1.95996 · 10 + 0.84162 · √(100 - 3.84146 + 0.70833)) / 100.70833 = 0.12382,
    which Connor's n = (z_{α/2} √p_d + z_β √(p_d - δ²))² / δ² takes back to 100; sd 0.1: δ = (1.95996 + 0.84162) · 0.1 / 10."""
    mcnemars = minimum_detectable_difference(100, discordant=0.2)
    assert mcnemars == pytest.approx(0.12382, abs=1e-5)
    assert (1.959964 * math.sqrt(0.2) + 0.841621 * math.sqrt(0.2 - mcnemars**2)) ** 2 / mcnemars**2 == pytest.approx(
        100, abs=1e-3
    )
    assert minimum_detectable_difference(100, sd=0.1) == pytest.approx(0.028016, abs=1e-6)
    assert minimum_detectable_difference(3, discordant=0.5) == math.inf  # 3 examples: no McNemar test reaches 5%
    with pytest.raises(ValueError, match="one of them"):
        minimum_detectable_difference(100)
    tests = [PairedTest("McNemar", 0.5, 120, 0.1, 0.3), PairedTest("McNemar", 0.5, 100, 0.3, 0.5)]
    assert design_minimum_detectable_difference(tests) == mcnemars  # the mean share, at the fewest examples
    mixed = [*tests, PairedTest("permutation", 0.5, 100, None, 0.1)]
    assert design_minimum_detectable_difference(mixed) == minimum_detectable_difference(
        100, sd=math.sqrt((0.09 + 0.25 + 0.01) / 3)
    )
    assert design_minimum_detectable_difference([]) is None


N = 100
LORA = [int(i % 2 == 0) for i in range(N)]  # 50 right


def _changed(better: int, worse: int) -> list[int]:
    """LoRA's answers, ``better`` of its wrong ones right and ``worse`` of its right ones wrong."""
    return [1 - c if (i % 2 and i < 2 * better) or (not i % 2 and i < 2 * worse) else c for i, c in enumerate(LORA)]


def test_holms_correction_takes_the_mark_from_a_row_that_differs_only_before_it(tmp_path):
    """One run a row: strong is right on 10 more (p = 2/1024), weak on 10 more and 2 fewer (p = 0.0386), same as lora (p = 1).
    Holm over the three: 3 · 2/1024 = 0.006, then max(0.006, 2 · 0.0386) = 0.077 > 0.05: weak is no longer marked."""
    for method, correct in (("lora", LORA), ("strong", _changed(10, 0)), ("weak", _changed(10, 2)), ("same", LORA)):
        write_json(
            tmp_path / method / "metrics.json",
            record_dict(
                method=method,
                n_eval=N,
                scores={"accuracy": sum(correct) / N, "macro_f1": 0.5},
                example_scores={"accuracy": correct},
                eval_fingerprint="evalset",
            ),
        )
    rows = {r["method"]: r for r in summarise(load_runs(tmp_path))}
    assert rows["weak"]["reference_p"] == mcnemar(10, 2) < 0.05 and rows["strong"]["reference_p"] == mcnemar(10, 0)
    assert rows["strong"]["reference_p_holm"] == pytest.approx(3 * 2 / 1024)
    assert rows["weak"]["reference_p_holm"] == pytest.approx(2 * 0.03857421875) and rows["same"]["reference_p_holm"] == 1.0
    assert [rows[m]["reference_test"] for m in ("strong", "weak", "same", "lora")] == ["differs", "alike", "alike", None]
    assert rows["weak"]["vs_reference"] == pytest.approx(0.08)
    lines = {
        line.split(" | ")[0].removeprefix("| "): line
        for line in markdown(list(rows.values())).splitlines()
        if line.startswith("| ")
    }
    assert "| +0.100 [" in lines["strong"] and lines["strong"].count("≠") == 1
    assert "| +0.080 [" in lines["weak"] and "≠" not in lines["weak"] and "≠" not in lines["same"]
    detectable = minimum_detectable_difference(N, discordant=(10 / N + 12 / N + 0) / 3)  # Connor's, at the mean discordant share
    assert markdown(list(rows.values())).endswith(
        f"\n\nminimum detectable difference (80% power, 5% level, paired): {detectable:.3f}\n"
    )
    page = table_html(list(rows.values()), "t")  # the HTML page marks the same rows
    marked = {
        m for m in rows if f'data-method="{m}"' in page and "≠</td>" in page.split(f'data-method="{m}"')[1].split("</tr>")[0]
    }
    assert marked == {"strong"}
