"""zoo-report's HTML page without a browser: its Pareto fronts and axes, families, learning curves, flipped examples,
provenance, and a page that needs nothing outside its file and comes out the same twice (tests/test_report_html_browser.py
opens it in Chromium)."""

from __future__ import annotations

import json
import re

import pytest
from records_helpers import record_dict

from zoo.report.html_page import page
from zoo.report.html_plots import log_axis, pareto_figure, pareto_front
from zoo.report.html_provenance import provenance, sweep_command
from zoo.report.html_runs import family, flipped_examples, learning_curve, row_runs, setting
from zoo.report.table import load_runs, summarise
from zoo.report.table import main as report_main
from zoo.runtime.atomic import write_json, write_text

HISTORY = [
    {"step": 2, "loss": 0.9, "accuracy": 0.6, "macro_f1": 0.55},
    {"step": 4, "loss": 0.7, "accuracy": 0.7, "macro_f1": 0.68},
]


def test_the_pareto_front_keeps_the_points_nothing_beats_on_cost_and_score():
    points = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.7), (3.0, 0.6), (0.5, 0.3), (4.0, 0.7)]
    assert pareto_front(points) == [(0.5, 0.3), (1.0, 0.5), (3.0, 0.7)]  # (2, 0.4) costs more than (1, 0.5) and scores less


def test_an_axis_is_logarithmic_where_its_positive_values_span_two_decades():
    assert log_axis([10, 1000]) and log_axis([3, 300, 50])
    assert not log_axis([10, 999]) and not log_axis([]) and not log_axis([0.0, 10, 5000])


@pytest.mark.parametrize(
    ("method", "source", "expected"),
    [
        ("lora", "zoo", "mergeable"),
        ("lora (tuned)", "zoo", "mergeable"),
        ("adapter", "zoo", "additive"),
        ("prompt_tuning", "zoo", "prompt-like"),
        ("closed_form_head", "zoo", "closed form"),
        ("zero_shot", "zoo", "baseline"),
        ("linear_probe", "zoo", "baseline"),
        ("lora (peft)", "peft", "other source"),
        ("not_a_method", "zoo", "other source"),
    ],
)
def test_a_rows_family_comes_from_its_methods_capability_flags(method, source, expected):
    assert family(method, source) == expected


def test_a_tuned_row_is_told_from_a_default_one():
    assert (setting("lora (tuned)"), setting("lora")) == ("tuned", "default")


def test_a_learning_curve_is_the_history_closed_by_the_final_point():
    run = record_dict(history=HISTORY, train_steps=5, final_loss=0.6, scores={"accuracy": 0.75, "macro_f1": 0.74})
    assert learning_curve(run) == {
        "step": [2, 4, 5],
        "loss": [0.9, 0.7, 0.6],
        "scores": {"accuracy": [0.6, 0.7, 0.75], "macro_f1": [0.55, 0.68, 0.74]},
    }
    assert learning_curve(record_dict(train_steps=0)) is None  # nothing trained, no curve


def test_flipped_examples_split_into_fixed_and_broken_from_the_runs_folder(tmp_path):
    lines = [
        {"index": 0, "text": "dull", "label": "negative", "before": "positive", "after": "negative"},
        {"index": 3, "text": "witty", "label": "positive", "before": "positive", "after": "negative"},
        {"index": 5, "text": "fine", "label": "positive", "before": "negative", "after": "positive"},
    ]
    write_text(tmp_path / "flips.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    run = {**record_dict(flips={"flipped": 3, "corrections": 2, "regressions": 1}), "_folder": tmp_path}
    flips = flipped_examples(run)
    assert [e["index"] for e in flips["fixed"]] == [0, 5] and [e["index"] for e in flips["broken"]] == [3]
    assert flips["broken"][0] == {"index": 3, "text": "witty", "label": "positive", "before": "positive", "after": "negative"}
    assert flipped_examples({**run, "flips": None}) is None  # a kind that counts no flips
    assert flipped_examples({**run, "_folder": tmp_path / "elsewhere"}) is None


def _sweep(folder) -> None:
    """lora (two seeds, 3,584 parameters), ia3 (384), prompt_tuning (640) and the zero-shot baseline (none), with intervals."""
    correct = {
        "lora": [1, 1, 0, 1, 0, 1, 1, 1],
        "ia3": [1, 0, 0, 1, 0, 1, 0, 1],
        "prompt_tuning": [1, 1, 1, 1, 0, 1, 1, 1],
        "zero_shot": [0, 1, 0, 1, 0, 1, 0, 0],
    }
    params = {"lora": 3584, "ia3": 384, "prompt_tuning": 640, "zero_shot": 0}
    for method, answers in correct.items():
        for seed in (0, 1) if method == "lora" else (0,):
            accuracy = sum(answers) / len(answers)
            write_json(
                folder / method / f"seed{seed}" / "metrics.json",
                record_dict(
                    method=method,
                    seed=seed,
                    trainable_params=params[method],
                    train_seconds=2.0 * params[method] / 384,
                    scores={"accuracy": accuracy, "macro_f1": accuracy},
                    example_scores={"accuracy": answers},
                    eval_fingerprint="e",
                    history=HISTORY if params[method] else [],
                    train_steps=5 if params[method] else 0,
                    forgetting={"delta": params[method] / 1e4} if params[method] else None,
                    method_config={"r": 8} if method == "lora" else {},
                ),
            )


def test_a_pareto_plot_puts_each_row_at_its_cost_with_its_interval(tmp_path):
    _sweep(tmp_path)
    runs = load_runs(tmp_path)
    rows = summarise(runs)
    figure = pareto_figure(rows, row_runs(rows, runs), "trainable_params", "title")
    points, front = figure.data
    assert list(points.x) == [r["trainable_params"] for r in rows] and list(points.y) == [r["accuracy"] for r in rows]
    assert list(points.error_y.arrayminus) == pytest.approx([r["accuracy"] - r["accuracy_low"] for r in rows])
    assert list(points.error_y.array) == pytest.approx([r["accuracy_high"] - r["accuracy"] for r in rows])
    assert figure.layout.xaxis.type == "linear" and not figure.layout.shapes  # 0 to 3,584: a linear axis has a place for 0
    assert (list(front.x), list(front.y)) == (
        [0, 384, 640],
        [0.375, 0.5, 0.875],
    )  # lora costs more than prompt tuning, scores less
    lora = points.hovertext[[r["method"] for r in rows].index("lora")]
    assert "runs: 2" in lora and "lora.r: 8" in lora


def test_rows_without_a_place_on_the_axis_are_levels_to_beat(tmp_path):
    _sweep(tmp_path)
    runs = load_runs(tmp_path)
    rows = [{**r, "trainable_params": 100 * r["trainable_params"]} if r["method"] == "lora" else r for r in summarise(runs)]
    figure = pareto_figure(rows, row_runs(rows, runs), "trainable_params", "title")
    assert figure.layout.xaxis.type == "log" and sorted(figure.data[0].x) == [384, 640, 358400]  # two decades and more
    assert [shape.y0 for shape in figure.layout.shapes] == [0.375]  # zero-shot, 0 parameters: no place on a log axis
    forgetting = pareto_figure(rows, row_runs(rows, runs), "forgetting", "title")
    assert sorted(forgetting.data[0].x) == pytest.approx([0.0384, 0.064, 0.3584]) and len(forgetting.layout.shapes) == 1


def test_the_page_holds_everything_it_shows_and_comes_out_the_same_twice(tmp_path):
    _sweep(tmp_path)
    assert report_main([str(tmp_path), "--html", str(tmp_path / "report.html")]) == 0
    text = (tmp_path / "report.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)  # nothing fetched: every script and style inline
    assert text.count('<tr data-method="') == len(summarise(load_runs(tmp_path)))
    assert 'id="task-0-pareto-trainable_params"' in text and 'id="task-0-pareto-forgetting"' in text
    assert f"<th>page written by</th><td>zoo-report {tmp_path.name} --reference lora --html report.html</td>" in text
    data = json.loads(re.search(r'<script type="application/json" id="zoo-data">(.*?)</script>', text).group(1))
    assert len(data["tasks"]["task-0"]["curves"]) == 4  # the trained runs: lora's two, ia3, prompt tuning
    runs = load_runs(tmp_path)
    assert page(summarise(runs), runs, provenance(runs)) == page(summarise(runs), runs, provenance(runs))


def test_the_provenance_block_names_the_suites_command_machine_and_times_and_the_constraints(tmp_path):
    runs = [record_dict(train_seconds=30.0, device_name="NVIDIA H100"), record_dict(train_seconds=90.0, device="cpu")]
    suite = {
        "machine": {"cpus": 8, "platform": "Linux-x", "python": "3.11.7", "versions": {"torch": "2.13.0"}},
        "sessions": [{"wall_seconds": 600.0}, {"wall_seconds": 300.0}],
    }
    (tmp_path / "constraints.txt").write_text("torch==2.13.0\n")
    block = provenance(
        runs, command="python -m benchmarks.suite --profile default", suite=suite, constraints=tmp_path / "constraints.txt"
    )
    items = dict(block["items"])
    assert items["command"] == "python -m benchmarks.suite --profile default" and items["versions"] == "torch 2.13.0"
    assert items["machine"] == "8 CPU cores (Linux-x), Python 3.11.7" and items["devices"] == "NVIDIA H100, cpu"
    assert items["suite wall time"] == "15.0 min over 2 launch(es)" and items["training time"].startswith("2.0 min over 2 runs")
    assert block["constraints"] == "torch==2.13.0\n"
    assert provenance(runs)["items"][1] == ("machine", "not recorded")


def test_a_plain_sweeps_command_comes_from_hydras_multirun_yaml(tmp_path):
    assert sweep_command(tmp_path) is None
    (tmp_path / "multirun.yaml").write_text("hydra:\n  overrides:\n    task:\n    - method=lora,ia3\n    - seed=0,1\n")
    assert sweep_command(tmp_path) == "zoo -m method=lora,ia3 seed=0,1"


def test_the_tables_config_column_keeps_what_differs_between_a_tasks_rows():
    from zoo.report.html_page import _distinct_configs

    rows = [{"config": "+benchmark=smoke task.n_eval=8 method.r=4"}, {"config": "+benchmark=smoke task.n_eval=8"}]
    assert [r["config"] for r in _distinct_configs(rows)] == ["method.r=4", ""]
