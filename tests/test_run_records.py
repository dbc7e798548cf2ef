"""What a run records beyond its scores: latency against the base model, per-method learning rates; records of schema 2
read as schema 3."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

import zoo
import zoo.runner.pipeline.steps
from zoo.io.records import SCHEMA_VERSION, RunRecord
from zoo.report.table import report
from zoo.runner.config import store_configs
from zoo.runner.run import run


def _cfg(tmp_path, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config",
            overrides=[
                "trainer=smoke",
                "task.n_train=32",
                "task.n_eval=24",
                "save_adapter=false",
                f"predictions_cache={tmp_path / 'cache'}",
                *overrides,
            ],
        )


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_latency_against_the_base_model_merged_where_the_method_merges(tmp_path, method):
    latency = run(_cfg(tmp_path, f"method={method}", "latency_batches=4"), tmp_path).latency
    assert latency["base_seconds_per_batch"] > 0 and latency["seconds_per_batch"] > 0 and latency["ratio"] > 0
    assert (latency["batches"], latency["distinct_batches"]) == (4, 3)  # 24 examples in batches of 8, cycled
    assert (latency["merged_ratio"] is not None) == zoo.get_method(method).mergeable


def test_a_baseline_is_timed_against_the_base_model(tmp_path):
    latency = run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path).latency
    assert (
        latency["ratio"] == latency["seconds_per_batch"] / latency["base_seconds_per_batch"] and latency["merged_ratio"] is None
    )


@pytest.mark.parametrize("task", ["synthetic_sentiment", "synthetic_generation"])
def test_latency_false_times_nothing_and_records_null(tmp_path, monkeypatch, task):
    def timed(*args, **kwargs):
        raise AssertionError("latency was timed")

    monkeypatch.setattr(zoo.runner.pipeline.steps, "latency_record", timed)  # one pipeline for every task kind
    record = run(_cfg(tmp_path, f"task={task}", "latency=false"), tmp_path / "off")
    assert record.latency is None and record.run_config["latency"] is False and record.objective is not None
    with pytest.raises(AssertionError, match="latency was timed"):
        run(_cfg(tmp_path, f"task={task}"), tmp_path / "on")


@pytest.fixture
def optimiser_rates(monkeypatch) -> list[list[float]]:
    """The learning rate of each parameter group of every AdamW the run builds: what trains at which rate, not what is recorded."""
    seen, init = [], torch.optim.AdamW.__init__

    def spy(self, params, *args, **kwargs):
        params = list(params)
        seen.append([group["lr"] for group in params])
        init(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "__init__", spy)
    return seen


@pytest.mark.parametrize(
    "overrides,method_rate,head_rate",
    [
        ((), 5e-3, None),  # lora's own default
        (("+method_learning_rates={lora:0.002,ia3:0.5}",), 0.002, None),  # the run's method's entry, not another's
        (("+method_learning_rates={lora:0.002}", "trainer.learning_rate=0.01"), 0.01, None),  # the trainer's wins
        (("task.formulation=head",), 5e-3, 5e-3),  # the head trains at the method's rate
        (("task.formulation=head", "task.head_learning_rate=0.03"), 5e-3, 0.03),
        (("baseline=linear_probe",), None, 1e-2),  # a probe's head: zoo.training.learning_rate.HEAD_LEARNING_RATE
        (("baseline=linear_probe", "trainer.learning_rate=0.2"), None, 0.2),
    ],
)
def test_the_optimiser_trains_at_the_resolved_rates_and_the_record_says_so(
    tmp_path, optimiser_rates, overrides, method_rate, head_rate
):
    record = run(_cfg(tmp_path, *overrides), tmp_path)
    assert optimiser_rates == [[r for r in (method_rate, head_rate) if r is not None]]
    assert (record.learning_rate, record.head_learning_rate) == (method_rate, head_rate)
    assert record.run_config["learning_rates"] == {"method": method_rate, "head": head_rate}


def test_method_learning_rates_refuse_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match=r"method_learning_rates names unknown method\(s\) \['lroa'\]; registered methods: \["):
        run(_cfg(tmp_path, "+method_learning_rates={lroa:0.1}"), tmp_path)


V2 = Path(__file__).parent / "fixtures" / "records_v2"
"""Records of schema 2, written by zoo before records were typed by metric (commit 6150e7f): a classification sweep with a
zero-shot run, and a generation task's lora and ia3."""


def test_a_classification_record_of_schema_2_reads_with_its_scores_by_metric():
    path = V2 / "classification" / "lora-seed0" / "metrics.json"
    old, record = json.loads(path.read_text()), RunRecord.read(path)
    assert old["schema_version"] == 2 and record.schema_version == SCHEMA_VERSION == 3
    assert record.task_kind == "classification" and record.objective_metric == "accuracy"
    assert record.scores == {"accuracy": old["accuracy"], "macro_f1": old["macro_f1"]}
    assert record.objective == old["accuracy"] == 0.984375
    assert record.example_scores == {"accuracy": [int(c) for c in old["eval_correct"]]}
    assert all(type(v) is int for v in record.example_scores["accuracy"]) and sum(record.example_scores["accuracy"]) == 63
    assert record.eval_details == {"per_class": old["eval"]["per_class"], "confusion": old["eval"]["confusion"]}
    assert record.baseline_scores == old["baseline_scores"]
    assert record.baseline_scores == {"zero_shot": {"accuracy": 0.53125, "macro_f1": 0.4545454545454546}}
    assert record.label_names == ["negative", "positive"] and record.flips == old["flips"]


def test_a_generation_record_of_schema_2_reads_its_rouge_l_and_exact_match_where_they_belong():
    """Schema 2 held a generation run's ROUGE-L in ``macro_f1`` and its exact match in ``accuracy``."""
    path = V2 / "generation" / "lora" / "metrics.json"
    old, record = json.loads(path.read_text()), RunRecord.read(path)
    assert record.task_kind == "generation" and record.objective_metric == "rouge_l"
    assert record.scores["rouge_l"] == old["macro_f1"] == 0.7124999999999999
    assert record.scores["exact_match"] == old["accuracy"] == 0.0
    assert record.scores == {
        "rouge_l": old["macro_f1"],
        "exact_match": old["accuracy"],
        "log_likelihood_per_token": old["generation"]["log_likelihood_per_token"],
    }
    assert record.objective == old["macro_f1"]
    for scores in (record.scores, *record.baseline_scores.values()):
        assert "accuracy" not in scores and "macro_f1" not in scores
    assert record.baseline_scores == {
        "zero_shot": {"rouge_l": 0.4708333333333334, "exact_match": 0.0, "log_likelihood_per_token": -5.486930847167969}
    }
    assert record.example_scores["rouge_l"] == old["eval_rouge_l"]
    assert record.example_scores["exact_match"] == [int(m) for m in old["eval_correct"]] == [0] * 16
    assert record.eval_details == {"n": 16, "response_tokens": 48}
    assert record.label_names == [] and record.flips is None


CLASSIFICATION_V2_TABLE = """\
| method | config | task | trainable | % | accuracy [95% CI] | vs lora [95% CI] | sd runs | sd seed / sample | macro-F1 | zero-shot | fixed / broken | forgetting | train s | train k-tokens | peak MB | adapter KB | latency x base (merged) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| lora | - | synthetic_sentiment | 3,584 | 4.338 | 0.977 [0.938, 1.000] | - | 0.011 | 0.011 / - | 0.977 ± 0.011 | 0.531 | 30 / 1 | +0.174 | 4.3 | 13.6 | 491 | 15.2 | 0.54 (0.52) |
| gift | - | synthetic_sentiment | 1,024 | 1.239 | 0.812 [0.711, 0.906] | -0.164 [-0.266, -0.070] ≠ | 0.022 | 0.022 / - | 0.812 ± 0.023 | 0.531 | 25 / 7 | +0.404 | 4.5 | 13.6 | 495 | 4.6 | 1.13 (3.33) |
| zero_shot | - | synthetic_sentiment | 0 | 0.000 | 0.531 ± 0.000 | - | 0.000 | 0.000 / - | 0.455 ± 0.000 | 0.531 | - / - | - | - | - | - | - | - (-) |

minimum detectable difference (80% power, 5% level, paired): 0.133
"""
"""The figures zoo-report --baseline-rows printed for these records under schema 2 (the zoo that wrote them), the mark now after
the difference from lora's row, which it did not print, nor the minimum detectable difference."""
GENERATION_V2_TABLE = """\
| method | config | task | trainable | % | ROUGE-L [95% CI] | vs lora [95% CI] | sd runs | exact match [95% CI] | log-lik / token | zero-shot | forgetting | train s | train k-tokens | peak MB | adapter KB | latency x base (merged) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| lora | - | synthetic_generation | 3,584 | 4.338 | 0.712 [0.650, 0.767] | - | - | 0.000 [0.000, 0.000] | -2.569 | 0.471 | +0.429 | 2.9 | 10.8 | 490 | 15.2 | 4.33 (0.94) |
| ia3 | - | synthetic_generation | 384 | 0.465 | 0.579 [0.517, 0.640] | -0.133 [-0.223, -0.038] ≠ | - | 0.000 [0.000, 0.000] | -3.618 | 0.471 | +0.061 | 6.4 | 10.8 | 493 | 2.4 | 3.27 (3.02) |

minimum detectable difference (80% power, 5% level, paired): 0.139
"""
"""The same figures as the schema-2 zoo printed (ROUGE-L and its interval, the mark against LoRA, exact match, log-likelihood,
zero-shot), in the columns of the generation kind's metrics, with the difference from lora's row and the minimum detectable
difference."""


def test_zoo_report_shows_no_chrf_for_generation_records_of_schema_2_beside_runs_that_score_it(tmp_path):
    """Schema 2 knew no chrF: its rows print '-' there and leave report.csv's chrF cells empty, whichever row comes first."""
    shutil.copytree(V2 / "generation", tmp_path, dirs_exist_ok=True)
    current = RunRecord.read(tmp_path / "lora" / "metrics.json")
    for method, rouge in (("dora", 0.8), ("vera", 0.1)):  # above and below the schema-2 rows
        (tmp_path / method).mkdir()
        dataclasses.replace(
            current,
            method=method,
            scores={**current.scores, "rouge_l": rouge, "chrf": 0.5},
            example_scores={**current.example_scores, "chrf": [0.5] * 16},
        ).write(tmp_path / method / "metrics.json")
    header, _, *rows = report(tmp_path).splitlines()
    assert "| exact match [95% CI] | chrF [95% CI] | log-lik / token |" in header
    chrf = {row.split(" | ")[0].removeprefix("| "): row.split(" | ")[9] for row in rows if row.startswith("| ")}
    assert chrf == {"dora": "0.500 [0.500, 0.500]", "lora": "-", "ia3": "-", "vera": "0.500 [0.500, 0.500]"}
    lines = list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text())))
    assert {r["method"]: (r["chrf"], r["chrf_low"]) for r in lines} == {
        "dora": ("0.5", "0.5"),
        "lora": ("", ""),
        "ia3": ("", ""),
        "vera": ("0.5", "0.5"),
    }


@pytest.mark.parametrize(
    "kind,baseline_rows,expected",
    [
        ("classification", True, CLASSIFICATION_V2_TABLE),
        ("generation", False, GENERATION_V2_TABLE),
    ],
)
def test_zoo_report_prints_schema_2_records_with_the_figures_it_printed_then(tmp_path, kind, baseline_rows, expected):
    folder = tmp_path / kind
    shutil.copytree(V2 / kind, folder)
    assert report(folder, baseline_rows=baseline_rows) == expected
    assert (folder / "report.md").read_text() == expected and (folder / "report.png").is_file()
