"""Runs of a generation task through the Hydra config: the record, generations.jsonl, baselines, refusals, resume, report."""

from __future__ import annotations

import dataclasses
import json

import pytest
from app_config import app_config

import zoo.task_kinds.generation
from zoo.io.records import RunRecord
from zoo.report.bootstrap import accuracy_interval
from zoo.report.table import report
from zoo.runner.plan import plan_run
from zoo.runner.resume import finished_run, run_identity
from zoo.runner.run import run, summary
from zoo.runtime.written import MANIFEST
from zoo.tasks.config import TaskConfig

GENERATION_FIELDS = ("kind", "max_new_tokens")
"""Task fields only a generation task reads: a classification run's record and identity leave them out, as before generation tasks."""
SMALL = [
    "task=synthetic_generation",
    "trainer=smoke",
    "latency_batches=1",
    "task.n_train=32",
    "task.n_eval=12",
    "predictions_cache=null",
]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("generation")
    return out, run(app_config(*SMALL), out)


def test_a_generation_run_records_its_kind_and_scores(lora_run):
    out, record = lora_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["task_kind"] == "generation" and on_disk["method"] == "lora" and on_disk["train_steps"] == 5
    scores = on_disk["scores"]
    assert sorted(scores) == ["chrf", "exact_match", "log_likelihood_per_token", "rouge_l"] and on_disk["eval_details"]["n"] == 12
    assert sorted(on_disk["eval_details"]) == ["n", "response_tokens"] and on_disk["objective_metric"] == "rouge_l"
    assert record.objective == scores["rouge_l"] and not {"accuracy", "macro_f1", "eval", "generation"} & set(on_disk)
    assert sorted(on_disk["baseline_scores"]["zero_shot"]) == sorted(scores)
    assert on_disk["task_config"]["kind"] == "generation" and on_disk["task_config"]["max_new_tokens"] == 4
    assert on_disk["flips"] is None and on_disk["label_names"] == [] and on_disk["latency"]["ratio"] > 0
    assert on_disk["adapter_bytes"] == sum(f.stat().st_size for f in (out / "adapter").iterdir() if f.name != MANIFEST)
    assert RunRecord.read(out / "metrics.json") == record


def test_generations_file_lists_each_reference_and_both_responses(lora_run):
    out, record = lora_run
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(12))
    assert all(r["reference"] and isinstance(r["response"], str) and isinstance(r["before"], str) for r in rows)
    from zoo.tasks.generation_metrics import rouge_l

    assert sum(rouge_l(r["response"], r["reference"]) for r in rows) / 12 == pytest.approx(record.scores["rouge_l"])
    # "before": the base model's responses with the run's own prompt, here the bare template's: the zero-shot baseline's
    assert sum(rouge_l(r["before"], r["reference"]) for r in rows) / 12 == pytest.approx(
        record.baseline_scores["zero_shot"]["rouge_l"]
    )


def test_a_generation_run_records_each_examples_rouge_l_exact_match_and_chrf(lora_run):
    """What the intervals and the paired test resample: the per-example scores of the responses generations.jsonl lists."""
    from zoo.tasks.data import examples_fingerprint
    from zoo.tasks.generation_metrics import chrf, exact_match, rouge_l
    from zoo.tasks.generation_tasks import build_generation_task

    out, record = lora_run
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    per_example = record.example_scores
    assert list(per_example) == ["rouge_l", "exact_match", "chrf"]
    assert per_example["rouge_l"] == [rouge_l(r["response"], r["reference"]) for r in rows]
    assert per_example["exact_match"] == [exact_match(r["response"], r["reference"]) for r in rows]
    assert per_example["chrf"] == [chrf(r["response"], r["reference"]) for r in rows]
    for metric in per_example:
        assert sum(per_example[metric]) / 12 == pytest.approx(record.scores[metric])
    assert record.eval_fingerprint == examples_fingerprint(build_generation_task(plan_run(app_config(*SMALL)).task).eval)
    assert json.loads((out / "metrics.json").read_text())["example_scores"] == per_example


def test_the_summary_line_names_exact_match_chrf_and_rouge(lora_run):
    """The objective (ROUGE-L) first, against the zero-shot base model's, then the kind's other metrics."""
    out, record = lora_run
    line = summary(record, out / "metrics.json")
    zero_shot = record.baseline_scores["zero_shot"]["rouge_l"]
    assert line.startswith(f"lora (prompt): ROUGE-L {record.scores['rouge_l']:.3f} (zero-shot {zero_shot:.3f}), ")
    assert (
        f", exact match {record.scores['exact_match']:.3f}, chrF {record.scores['chrf']:.3f}, "
        f"log-lik / token {record.scores['log_likelihood_per_token']:.3f}, "
        in line
        and "accuracy" not in line
    )


def test_a_finished_generation_run_is_found_by_resume(lora_run):
    out, record = lora_run
    assert finished_run(out, app_config(*SMALL, "resume=true")) == record
    assert finished_run(out, app_config(*SMALL, "task.max_new_tokens=3")) is None  # a generation task records its own fields


def test_the_report_gives_generation_runs_their_own_columns(lora_run):
    out, record = lora_run
    table = report(out, baseline_rows=True)
    header, _, *rows = table.splitlines()
    assert (
        "| ROUGE-L [95% CI] | vs lora [95% CI] | sd runs | exact match [95% CI] | chrF [95% CI] | log-lik / token "
        "| zero-shot | forgetting |"
        in header
        and "accuracy" not in header
    )
    assert (
        len(rows) == 2 and rows[0].startswith("| lora |") and rows[1].startswith("| zero_shot |")
    )  # nothing tested: no line under
    scores, per_example = record.scores, record.example_scores
    em, rouge, ch = (accuracy_interval([per_example[m]]) for m in ("exact_match", "rouge_l", "chrf"))
    zero_shot = record.baseline_scores["zero_shot"]  # its row comes from the record's scores: no per-example list, one run
    assert (
        f"| {scores['rouge_l']:.3f} [{rouge[0]:.3f}, {rouge[1]:.3f}] | - | - | {scores['exact_match']:.3f} [{em[0]:.3f}, "
        f"{em[1]:.3f}] | {scores['chrf']:.3f} [{ch[0]:.3f}, {ch[1]:.3f}] | {scores['log_likelihood_per_token']:.3f} "
        f"| {zero_shot['rouge_l']:.3f} |"
    ) in rows[0]
    assert f"| {record.forgetting['delta']:+.3f} |" in rows[0]
    assert (
        f"| {zero_shot['rouge_l']:.3f} | - | - | {zero_shot['exact_match']:.3f} | {zero_shot['chrf']:.3f} | "
        f"{zero_shot['log_likelihood_per_token']:.3f} |"
    ) in rows[1] and "| - | - |" in rows[1]  # one run: no spread shown; no weight moved, no training time shown as measured
    csv_lines = (out / "report.csv").read_text().splitlines()
    columns = csv_lines[0].split(",")
    assert {"task_kind", "objective_metric", "base_score", "diverged"} <= set(columns) and "accuracy" not in columns
    assert {f"{m}{suffix}" for m in scores for suffix in ("", "_std", "_low", "_high")} <= set(columns)
    lora = dict(zip(columns, csv_lines[1].split(","), strict=True))
    assert (lora["objective_metric"], float(lora["rouge_l_low"]), float(lora["base_score"])) == (
        "rouge_l",
        rouge[0],
        zero_shot["rouge_l"],
    )


def test_in_context_shows_training_pairs_and_is_timed_against_the_base_model(tmp_path):
    record = run(app_config(*SMALL, "baseline=in_context", "task.demonstrations=2", "task.max_length=96"), tmp_path)
    assert record.method == "in_context" and record.trainable_params == 0 and record.train_steps == 0
    assert sorted(record.baseline_scores) == ["in_context", "zero_shot"]
    assert record.scores == record.baseline_scores["in_context"]
    assert not (tmp_path / "adapter").exists() and record.latency["ratio"] > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["method=closed_form_head"],
            r"method 'closed_form_head' supports classification tasks only, and task 'synthetic_generation' "
            r"is a generation task",
        ),
        (["baseline=linear_probe"], r"baseline 'linear_probe' supports classification tasks only"),
    ],
)
def test_what_cannot_write_is_refused_before_anything_loads(overrides, message):
    with pytest.raises(ValueError, match=message):
        plan_run(app_config(*SMALL, *overrides))


def test_a_classification_run_is_recorded_as_before_generation_tasks(tmp_path):
    """Its task config and identity leave the generation fields out, as before generation tasks (resume finds older runs);
    its record names its kind and holds its scores by metric (schema 3)."""
    record = run(app_config("trainer=smoke", "task.n_eval=16", "predictions_cache=null"), tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert not set(GENERATION_FIELDS) & set(on_disk) and not {"generation", "eval_rouge_l", "accuracy", "macro_f1"} & set(on_disk)
    assert (on_disk["task_kind"], on_disk["objective_metric"], sorted(on_disk["scores"])) == (
        "classification",
        "accuracy",
        ["accuracy", "macro_f1"],
    )
    old_fields = {f.name for f in dataclasses.fields(TaskConfig)} - set(GENERATION_FIELDS)
    assert set(on_disk["task_config"]) == old_fields and set(on_disk["run_config"]["task"]) == old_fields
    assert on_disk == json.loads(json.dumps(dataclasses.asdict(record)))
    assert RunRecord.read(tmp_path / "metrics.json") == record and record.task_kind == "classification"
    assert set(run_identity(app_config("trainer=smoke"))["task"]) == old_fields


def test_the_base_models_responses_are_read_from_the_cache_by_the_next_run(tmp_path, monkeypatch):
    cached = [*SMALL[:-1], f"predictions_cache={tmp_path / 'cache'}", "baseline=zero_shot"]
    first = run(app_config(*cached), tmp_path / "first")
    first_rows = (tmp_path / "first" / "generations.jsonl").read_text()

    def decoded_again(*args, **kwargs):
        raise AssertionError("the base model decoded again")

    monkeypatch.setattr(zoo.task_kinds.generation, "evaluate_generation", decoded_again)
    second = run(app_config(*cached), tmp_path / "second")
    assert second.baseline_scores["zero_shot"] == first.baseline_scores["zero_shot"] and second.scores == first.scores
    assert second.example_scores == first.example_scores
    assert (tmp_path / "second" / "generations.jsonl").read_text() == first_rows
    with pytest.raises(AssertionError, match="decoded again"):
        run(app_config(*cached, "task.n_eval=11"), tmp_path / "other_examples")  # other prompts: another key
    kind = zoo.task_kinds.generation.GenerationKind
    monkeypatch.setattr(kind, "metrics", tuple(m for m in kind.metrics if m.name != "chrf"))
    with pytest.raises(AssertionError, match="decoded again"):  # an entry stored before chrF: its scores lack it
        run(app_config(*cached), tmp_path / "other_metrics")


def test_results_md_plots_a_generation_task_by_its_rouge_l(tmp_path, monkeypatch):
    """Exact match is 0 for nearly every written headline: the plots of a generation task show ROUGE-L, named so."""
    import matplotlib.figure
    from records_helpers import record_dict

    from benchmarks import results_md
    from zoo.runtime.atomic import write_json
    from zoo.tasks.config import TaskConfig

    calls, savefig = [], matplotlib.figure.Figure.savefig

    def saved(fig, fname, *args, **kwargs):  # each plot's points and names, as drawn
        ax = fig.axes[0]
        points = sorted({float(y) for line in ax.lines for y in line.get_ydata()})
        calls.append((fname.name.removeprefix(".").removesuffix(".tmp.png"), points, ax.get_ylabel(), ax.get_title()))
        return savefig(fig, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", saved)
    for method, rouge in (("lora", 0.25), ("ia3", 0.2)):
        write_json(
            tmp_path / "runs" / "bbc_headlines" / method / "seed0" / "metrics.json",
            record_dict(
                method=method,
                task="bbc_headlines",
                task_config=dataclasses.asdict(TaskConfig()),
                task_kind="generation",
                objective_metric="rouge_l",
                scores={"rouge_l": rouge, "exact_match": 0.0, "log_likelihood_per_token": -4.0},
                label_names=[],
            ),
        )
    text = results_md.write_results(tmp_path / "runs", tmp_path / "RESULTS.md", None)
    assert calls == [
        ("pareto_bbc_headlines.png", [0.2, 0.25], "ROUGE-L", "bbc_headlines: ROUGE-L against trainable params"),
        ("time_bbc_headlines.png", [0.2, 0.25], "ROUGE-L", "bbc_headlines: ROUGE-L against train seconds"),
    ]
    assert "![ROUGE-L against trainable parameters](pareto_bbc_headlines.png)" in text
