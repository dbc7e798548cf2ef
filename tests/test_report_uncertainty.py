"""zoo-report's uncertainty: intervals and both spreads per row, the paired test against the reference row (LoRA) with its
interval, Holm's correction and the minimum detectable difference, error bars in the plot."""

from __future__ import annotations

import csv
import statistics

import matplotlib.axes
import pytest
from records_helpers import record_dict

from zoo.report.bootstrap import accuracy_interval, paired_difference
from zoo.report.paired_tests import holm, paired_test
from zoo.report.power import design_minimum_detectable_difference
from zoo.report.table import load_runs, markdown, plot, summarise
from zoo.report.table import main as report_main
from zoo.runtime.atomic import write_json

N = 300
LORA = [i % 2 == 0 for i in range(N)]  # 150 right


def _write(
    folder, method: str, seed: int, correct: list[bool] | None, sample_seed: int | None = None, fingerprint: str = "evalset"
):
    accuracy = sum(LORA if correct is None else correct) / N
    task = {"seed": 0, "sample_seed": sample_seed, "shots_per_class": 16, "eval_split": "test"}
    name = f"seed{seed}" + (f"-sample{sample_seed}" if sample_seed is not None else "")
    write_json(
        folder / method / name / "metrics.json",
        record_dict(
            method=method,
            seed=seed,
            task_config=task,
            scores={"accuracy": accuracy, "macro_f1": accuracy},
            n_eval=N,
            example_scores={"accuracy": [int(c) for c in correct]} if correct is not None else {},
            eval_fingerprint=fingerprint if correct is not None else None,
        ),
    )


def _shifted(extra: int, offset: int = 1) -> list[bool]:
    """LoRA's answers, and ``extra`` of its wrong ones right as well (from ``offset`` on)."""
    fixed = set(range(offset, offset + 2 * extra, 2))
    return [right or i in fixed for i, right in enumerate(LORA)]


@pytest.fixture
def sweep(tmp_path):
    """lora at seeds 0-2 (sample 0) and samples 1-2 (seed 0); ia3 right on 40 more; prompt_tuning as lora; bitfit elsewhere."""
    lora_runs = {
        (0, None): LORA,
        (1, None): _shifted(3),
        (2, None): _shifted(6, 101),
        (0, 1): _shifted(9),
        (0, 2): _shifted(1, 201),
    }
    for (seed, sample), correct in lora_runs.items():
        _write(tmp_path, "lora", seed, correct, sample)
        _write(tmp_path, "prompt_tuning", seed, correct, sample)
    for seed in (0, 1):
        _write(tmp_path, "ia3", seed, _shifted(40))
    _write(tmp_path, "bitfit", 0, LORA, fingerprint="other")
    _write(tmp_path, "adapter", 0, None)  # a record of an older zoo: no per-example answers
    return tmp_path, lora_runs


def _rows(folder) -> dict[str, dict]:
    return {r["method"]: r for r in summarise(load_runs(folder))}


def test_a_row_has_the_bootstrap_interval_and_its_spreads(sweep):
    folder, lora_runs = sweep
    lora = _rows(folder)["lora"]
    accuracy = {key: sum(c) / N for key, c in lora_runs.items()}
    assert lora["seeds"] == 5 and lora["config"] == ""  # the sample seeds are runs of the same row
    in_order = [lora_runs[key] for key in ((0, None), (0, 1), (0, 2), (1, None), (2, None))]  # by seed, then sample
    assert (lora["accuracy_low"], lora["accuracy_high"]) == accuracy_interval(in_order)
    assert lora["accuracy_low"] < lora["accuracy"] < lora["accuracy_high"]
    assert lora["run_std"] == pytest.approx(statistics.stdev(accuracy.values()))
    assert lora["seed_std"] == pytest.approx(statistics.stdev(accuracy[(s, None)] for s in (0, 1, 2)))
    assert lora["sample_std"] == pytest.approx(statistics.stdev([accuracy[(0, None)], accuracy[(0, 1)], accuracy[(0, 2)]]))
    ia3 = _rows(folder)["ia3"]
    assert ia3["run_std"] == ia3["seed_std"] == 0.0 and ia3["sample_std"] is None  # one training sample: no sample spread


def test_rows_are_tested_against_the_reference_lora_on_the_same_examples(sweep, capsys):
    folder, lora_runs = sweep
    rows = _rows(folder)
    assert rows["ia3"]["reference_test"] == "differs" and rows["ia3"]["vs_reference"] > 0
    in_order = [lora_runs[key] for key in ((0, None), (0, 1), (0, 2), (1, None), (2, None))]
    expected = paired_difference([_shifted(40)] * 2, in_order)  # the interval: every run of both rows
    assert (rows["ia3"]["vs_reference"], rows["ia3"]["vs_reference_low"], rows["ia3"]["vs_reference_high"]) == (
        expected.difference,
        expected.low,
        expected.high,
    )
    test = paired_test(
        [_shifted(40)] * 2, [lora_runs[(0, None)], lora_runs[(1, None)]], binary=True
    )  # the test: lora's seeds 0 and 1
    assert test.test == "permutation" and rows["ia3"]["reference_p"] == test.p < 0.001
    assert rows["prompt_tuning"]["reference_test"] == "alike" and rows["prompt_tuning"]["vs_reference"] == 0.0
    assert rows["prompt_tuning"]["reference_p"] == 1.0  # the same answers in every pair of runs
    assert (
        [rows["ia3"]["reference_p_holm"], rows["prompt_tuning"]["reference_p_holm"]] == holm([test.p, 1.0]) == [2 * test.p, 1.0]
    )
    assert rows["lora"]["reference_test"] is None and rows["adapter"]["reference_test"] is None
    assert rows["bitfit"]["reference_test"] == "unpaired" and rows["bitfit"]["reference_p"] is None
    prompt_tuning = paired_test(list(lora_runs.values()), list(lora_runs.values()), binary=True)
    assert {r["reference_mdd"] for r in rows.values()} == {design_minimum_detectable_difference([test, prompt_tuning])}
    err = capsys.readouterr().err
    assert (
        "bitfit (no overrides) on synthetic_sentiment is not tested against lora: the rows were evaluated on other examples "
        "(evaluation-set fingerprints ['other'] and ['evalset'])"
    ) in err


def test_the_table_shows_intervals_spreads_and_marks(sweep):
    folder, _ = sweep
    rows = summarise(load_runs(folder))
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in markdown(rows).splitlines()[2:]}
    ia3 = next(r for r in rows if r["method"] == "ia3")
    assert (
        f"| {ia3['accuracy']:.3f} [{ia3['accuracy_low']:.3f}, {ia3['accuracy_high']:.3f}] "
        f"| {ia3['vs_reference']:+.3f} [{ia3['vs_reference_low']:+.3f}, {ia3['vs_reference_high']:+.3f}] ≠ | 0.000 | 0.000 / - |"
    ) in lines["ia3"]
    assert "] | +0.000 [-0." in lines["prompt_tuning"]  # lora's runs: each row draws its own, so the interval is not 0 wide
    assert "≠" not in lines["prompt_tuning"] and "?" not in lines["prompt_tuning"]
    assert "] | ? |" in lines["bitfit"] and "] | - |" in lines["lora"]
    assert "| 0.500 | - | - | - / - |" in lines["adapter"]  # no per-example answers and one run: no spread, and no test
    assert "| accuracy [95% CI] | vs lora [95% CI] | sd runs | sd seed / sample |" in markdown(rows)
    assert markdown(rows).endswith(
        f"\n\nminimum detectable difference (80% power, 5% level, paired): {rows[0]['reference_mdd']:.3f}\n"
    )


def test_the_html_table_shows_the_markdown_tables_intervals_and_marks(sweep):
    """The page's cells are zoo-report's numbers, formatted as its markdown table formats them (zoo.report.html_table)."""
    from html.parser import HTMLParser

    from zoo.report.html_table import table_html
    from zoo.report.table import reference_cell, score_cell

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.inside = [], False

        def handle_starttag(self, tag, attrs):
            if tag == "tr" and "data-method" in dict(attrs):
                self.rows.append([])
            self.inside = tag == "td"

        def handle_data(self, data):
            if self.inside and self.rows:
                self.rows[-1].append(data)
                self.inside = False

    folder, _ = sweep
    rows = summarise(load_runs(folder))
    parser = Cells()
    parser.feed(table_html(rows, "t"))
    assert len(parser.rows) == len(rows)
    for row, cells in zip(rows, parser.rows):
        assert cells[0] == row["method"] and score_cell(row, "accuracy") in cells and reference_cell(row) in cells
    ia3 = parser.rows[[r["method"] for r in rows].index("ia3")]
    assert any(cell.endswith(" ≠") for cell in ia3) and "?" in parser.rows[[r["method"] for r in rows].index("bitfit")]


def test_the_csv_holds_the_new_columns(sweep):
    folder, _ = sweep
    assert report_main([str(folder)]) == 0
    rows = {r["method"]: r for r in csv.DictReader((folder / "report.csv").open())}
    assert rows["ia3"]["reference_test"] == "differs" and float(rows["ia3"]["accuracy_low"]) < float(rows["ia3"]["accuracy"])
    assert (
        float(rows["ia3"]["reference_p"]) < float(rows["ia3"]["reference_p_holm"]) < 0.05 and rows["ia3"]["reference"] == "lora"
    )
    assert float(rows["ia3"]["reference_mdd"]) == float(rows["lora"]["reference_mdd"]) > 0
    assert rows["adapter"]["accuracy_low"] == "" and rows["adapter"]["reference_p"] == ""


def test_the_plot_draws_the_interval_as_error_bars(sweep, tmp_path, monkeypatch):
    folder, _ = sweep
    rows = summarise(load_runs(folder))
    drawn = []
    original = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, yerr=None, **kwargs):
        drawn.append((y, yerr))
        return original(self, x, y, yerr=yerr, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    plot(rows, tmp_path / "pareto.png")
    bars = dict(drawn)
    ia3 = next(r for r in rows if r["method"] == "ia3")
    assert bars[ia3["accuracy"]] == [
        [pytest.approx(ia3["accuracy"] - ia3["accuracy_low"])],
        [pytest.approx(ia3["accuracy_high"] - ia3["accuracy"])],
    ]
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_results_md_names_both_kinds_of_seed_and_explains_the_marks(sweep):
    folder, _ = sweep
    from benchmarks.results_md import LEGEND, write_results

    text = write_results(folder, folder / "RESULTS.md", None)
    assert (
        "seeds 0, 1, 2 (initialisation and batch order) on the training sample of data seed 0, and sample seeds 1, 2 "
        "(other training samples and their demonstrations) at seed 0; the evaluation set is drawn once, with data seed 0"
    ) in text
    assert "| accuracy [95% CI] | vs lora [95% CI] | sd runs | sd seed / sample |" in text and "] ≠ |" in text
    assert "\n\nminimum detectable difference (80% power, 5% level, paired): 0." in text  # under the task's table
    assert all(
        term in LEGEND
        for term in (
            "95% bootstrap confidence interval",
            "*sd runs*",
            "*sd seed / sample*",
            "*vs lora [95% CI]*",
            "*≠*",
            "*?*",
            "paired bootstrap",
            "McNemar's exact test",
            "paired permutation test",
            "Holm",
            "*minimum detectable difference*",
        )
    )
    page = (folder / "RESULTS.html").read_text()  # beside it, from the same command, the same bytes each time
    write_results(folder, folder / "RESULTS.md", None)
    assert (folder / "RESULTS.html").read_text() == page and page.count('<tr data-method="') == len(summarise(load_runs(folder)))
    assert (
        "<th>constraints file</th><td>constraints.txt</td>" in page
        and "The exact versions behind the published comparison" in page
    )


def _write_generation(folder, method: str, seed: int, rouge: list[float]):
    """A generation run's record: exact match 0 on every example (as for written headlines), ROUGE-L F per example, chrF
    0.5 on each."""
    write_json(
        folder / method / f"seed{seed}" / "metrics.json",
        record_dict(
            method=method,
            seed=seed,
            task="bbc_headlines",
            task_config={"seed": 0, "sample_seed": None},
            n_eval=len(rouge),
            task_kind="generation",
            objective_metric="rouge_l",
            label_names=[],
            baseline_scores={"zero_shot": {"rouge_l": 0.1}},
            scores={"chrf": 0.5, "exact_match": 0.0, "log_likelihood_per_token": -4.0, "rouge_l": sum(rouge) / len(rouge)},
            example_scores={"chrf": [0.5] * len(rouge), "exact_match": [0] * len(rouge), "rouge_l": rouge},
            eval_details={"n": len(rouge), "response_tokens": 3 * len(rouge)},
            eval_fingerprint="headlines",
            forgetting={"delta": 0.25},
            train_tokens=2000,
        ),
    )


def test_a_generation_row_gets_a_rouge_l_interval_and_is_tested_against_the_reference_by_it(tmp_path):
    """Exact match is 0 everywhere: the paired test compares ROUGE-L F, which tells a better headline writer apart."""
    lora = [0.2 + 0.1 * (i % 3) for i in range(60)]
    better = [r + 0.15 for r in lora]
    for seed in (0, 1):
        _write_generation(tmp_path, "lora", seed, lora)
        _write_generation(tmp_path, "prefix_tuning", seed, better)
    _write_generation(
        tmp_path, "ia3", 0, [r + (0.1 if i % 2 else -0.1) for i, r in enumerate(lora)]
    )  # as good, on other headlines
    rows = {r["method"]: r for r in summarise(load_runs(tmp_path))}
    prefix = rows["prefix_tuning"]
    assert (prefix["rouge_l_low"], prefix["rouge_l_high"]) == accuracy_interval([better, better])
    assert prefix["rouge_l_low"] < prefix["rouge_l"] < prefix["rouge_l_high"]
    assert (prefix["exact_match_low"], prefix["exact_match_high"]) == (0.0, 0.0)
    expected = paired_difference([better] * 2, [lora] * 2)
    assert (
        prefix["reference_test"] == "differs"
        and prefix["vs_reference"] == pytest.approx(0.15)
        and prefix["vs_reference_low"] == expected.low
    )
    assert prefix["reference_p"] == 1 / 10_001  # no sign flip of 60 differences of 0.15 sums as far from 0: the resamples' floor
    assert rows["ia3"]["reference_test"] == "alike" and rows["lora"]["reference_test"] is None
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in markdown(list(rows.values())).splitlines()[2:]}
    assert (
        f"| {prefix['rouge_l']:.3f} [{prefix['rouge_l_low']:.3f}, {prefix['rouge_l_high']:.3f}] "
        f"| +0.150 [{prefix['vs_reference_low']:+.3f}, {prefix['vs_reference_high']:+.3f}] ≠ | 0.000 | 0.000 / - "
        f"| 0.000 [0.000, 0.000] | 0.500 [0.500, 0.500] | -4.000 ± 0.000 | 0.100 | +0.250 | 1.0 | 2.0 |"
    ) in lines["prefix_tuning"]
    assert "≠" not in lines["ia3"]


def test_a_generation_plot_draws_the_rouge_l_interval(tmp_path, monkeypatch):
    _write_generation(tmp_path, "lora", 0, [0.1, 0.3, 0.5, 0.2])
    rows = summarise(load_runs(tmp_path))
    drawn = []
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", lambda self, x, y, yerr=None, **kwargs: drawn.append((y, yerr)))
    named = {}
    for axis_text in ("set_ylabel", "set_title"):
        original = getattr(matplotlib.axes.Axes, axis_text)
        monkeypatch.setattr(
            matplotlib.axes.Axes,
            axis_text,
            lambda self, text, *a, _name=axis_text, _original=original, **k: (
                named.setdefault(_name, text),
                _original(self, text, *a, **k),
            )[1],
        )
    plot(rows, tmp_path / "pareto.png")  # the rows' objective: ROUGE-L
    (row,) = rows
    assert drawn == [
        (
            row["rouge_l"],
            [[pytest.approx(row["rouge_l"] - row["rouge_l_low"])], [pytest.approx(row["rouge_l_high"] - row["rouge_l"])]],
        )
    ]
    assert named == {
        "set_ylabel": "ROUGE-L",
        "set_title": "ROUGE-L against trainable parameters",
    }  # the metric's label, not a row's
