"""Runs of a generation task through the Hydra config: the record, generations.jsonl, baselines, refusals, resume, report."""
from __future__ import annotations

import dataclasses
import json

import pytest
from hydra import compose, initialize_config_module

import zoo.pipeline.generation
from zoo.analysis.bootstrap import accuracy_interval
from zoo.config import store_configs
from zoo.pipeline.plan import plan_run
from zoo.records import GENERATION_FIELDS as GENERATION_FIELDS_OF_RECORDS
from zoo.records import RunRecord
from zoo.report import report
from zoo.resume import finished_run, run_identity
from zoo.run import run, summary
from zoo.tasks.config import GENERATION_FIELDS, TaskConfig

SMALL = ["task=synthetic_generation", "trainer=smoke", "task.n_train=32", "task.n_eval=12", "predictions_cache=null"]


def _cfg(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer.progress=false", *overrides])


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("generation")
    return out, run(_cfg(*SMALL), out)


def test_a_generation_run_records_its_kind_and_scores(lora_run):
    out, record = lora_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["task_kind"] == "generation" and on_disk["method"] == "lora" and on_disk["train_steps"] == 5
    scores = on_disk["generation"]
    assert sorted(scores) == ["exact_match", "log_likelihood_per_token", "n", "response_tokens", "rouge_l"] and scores["n"] == 12
    assert on_disk["accuracy"] == scores["exact_match"] and on_disk["macro_f1"] == scores["rouge_l"] and on_disk["eval"] == scores
    zero_shot = on_disk["baseline_scores"]["zero_shot"]
    assert zero_shot["accuracy"] == zero_shot["exact_match"] and zero_shot["macro_f1"] == zero_shot["rouge_l"]
    assert on_disk["task_config"]["kind"] == "generation" and on_disk["task_config"]["max_new_tokens"] == 4
    assert on_disk["flips"] is None and on_disk["label_names"] == [] and on_disk["latency"]["ratio"] > 0
    assert on_disk["adapter_bytes"] == sum(f.stat().st_size for f in (out / "adapter").iterdir())
    assert RunRecord.read(out / "metrics.json") == record


def test_generations_file_lists_each_reference_and_both_responses(lora_run):
    out, record = lora_run
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(12))
    assert all(r["reference"] and isinstance(r["response"], str) and isinstance(r["zero_shot"], str) for r in rows)
    from zoo.tasks.generation_metrics import rouge_l
    assert sum(rouge_l(r["response"], r["reference"]) for r in rows) / 12 == pytest.approx(record.macro_f1)
    assert sum(rouge_l(r["zero_shot"], r["reference"]) for r in rows) / 12 == pytest.approx(record.score("zero_shot")["rouge_l"])


def test_a_generation_run_records_each_examples_exact_match_and_rouge_l(lora_run):
    """What the intervals and the paired test resample: the per-example scores of the responses generations.jsonl lists."""
    from zoo.tasks.data import examples_fingerprint
    from zoo.tasks.generation_metrics import exact_match, rouge_l
    from zoo.tasks.generation_tasks import build_generation_task

    out, record = lora_run
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert record.eval_rouge_l == [rouge_l(r["response"], r["reference"]) for r in rows]
    assert record.eval_correct == [exact_match(r["response"], r["reference"]) for r in rows]
    assert sum(record.eval_rouge_l) / 12 == pytest.approx(record.macro_f1) and sum(record.eval_correct) / 12 == record.accuracy
    assert record.eval_fingerprint == examples_fingerprint(build_generation_task(plan_run(_cfg(*SMALL)).task).eval)
    assert json.loads((out / "metrics.json").read_text())["eval_rouge_l"] == record.eval_rouge_l


def test_the_summary_line_names_exact_match_and_rouge(lora_run):
    out, record = lora_run
    line = summary(record, out / "metrics.json")
    assert line.startswith(f"lora (generation): exact match {record.accuracy:.3f} (zero-shot ")
    assert f"ROUGE-L {record.macro_f1:.3f}, log-likelihood/token " in line and "accuracy" not in line


def test_a_finished_generation_run_is_found_by_resume(lora_run):
    out, record = lora_run
    assert finished_run(out, _cfg(*SMALL, "resume=true")) == record
    assert finished_run(out, _cfg(*SMALL, "task.max_new_tokens=3")) is None  # a generation task records its own fields


def test_the_report_gives_generation_runs_their_own_columns(lora_run):
    out, record = lora_run
    table = report(out, baseline_rows=True)
    header, _, *rows = table.splitlines()
    assert ("| exact match [95% CI] | ROUGE-L [95% CI] | log-lik / token | zero-shot EM / ROUGE-L | forgetting |" in header
            and "| accuracy |" not in header)
    assert len(rows) == 2 and rows[0].startswith("| lora |") and rows[1].startswith("| zero_shot |")
    em, rouge = accuracy_interval([record.eval_correct]), accuracy_interval([record.eval_rouge_l])
    assert (f"| {record.accuracy:.3f} [{em[0]:.3f}, {em[1]:.3f}] | {record.macro_f1:.3f} [{rouge[0]:.3f}, {rouge[1]:.3f}] "
            f"| {record.generation['log_likelihood_per_token']:.3f} |") in rows[0]
    assert f"| {record.forgetting['delta']:+.3f} |" in rows[0]
    zero_shot = record.score("zero_shot")  # its row comes from the record's scores: no per-example list, so ± std; no weight moved
    assert f"| {zero_shot['accuracy']:.3f} ± 0.000 | {zero_shot['macro_f1']:.3f} ± 0.000 |" in rows[1] and "| - | 0.0 |" in rows[1]
    csv_header = (out / "report.csv").read_text().splitlines()[0]
    assert csv_header.endswith(",diverged,task_kind,macro_f1_low,macro_f1_high,log_likelihood_per_token,zero_shot_rouge_l")


def test_in_context_shows_training_pairs_and_is_its_own_baseline(tmp_path):
    record = run(_cfg(*SMALL, "baseline=in_context", "task.demonstrations=2", "task.max_length=96"), tmp_path)
    assert record.method == "in_context" and record.trainable_params == 0 and record.train_steps == 0
    assert sorted(record.baseline_scores) == ["in_context", "zero_shot"]
    assert record.generation == {k: v for k, v in record.baseline_scores["in_context"].items() if k not in ("accuracy", "macro_f1")}
    assert not (tmp_path / "adapter").exists() and record.latency["ratio"] == 1.0


@pytest.mark.parametrize("overrides, message", [
    (["method=closed_form_head"], r"method 'closed_form_head' supports classification tasks only, and task 'synthetic_generation' "
                                  r"is a generation task"),
    (["baseline=linear_probe"], r"baseline 'linear_probe' supports classification tasks only"),
])
def test_what_cannot_write_is_refused_before_anything_loads(overrides, message):
    with pytest.raises(ValueError, match=message):
        plan_run(_cfg(*SMALL, *overrides))


def test_a_classification_run_is_recorded_as_before_generation_tasks(tmp_path):
    record = run(_cfg("trainer=smoke", "task.n_eval=16", "predictions_cache=null"), tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert not set(GENERATION_FIELDS) & set(on_disk) and not {"task_kind", "generation"} & set(on_disk)
    old_fields = {f.name for f in dataclasses.fields(TaskConfig)} - set(GENERATION_FIELDS)
    assert set(on_disk["task_config"]) == old_fields and set(on_disk["run_config"]["task"]) == old_fields
    assert on_disk == {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(record))).items() if k not in GENERATION_FIELDS_OF_RECORDS}
    assert RunRecord.read(tmp_path / "metrics.json") == record and record.task_kind == "classification" and record.generation is None
    assert set(run_identity(_cfg("trainer=smoke"))["task"]) == old_fields


def test_the_base_models_responses_are_read_from_the_cache_by_the_next_run(tmp_path, monkeypatch):
    cached = [*SMALL[:-1], f"predictions_cache={tmp_path / 'cache'}", "baseline=zero_shot"]
    first = run(_cfg(*cached), tmp_path / "first")
    first_rows = (tmp_path / "first" / "generations.jsonl").read_text()

    def decoded_again(*args, **kwargs):
        raise AssertionError("the base model decoded again")

    monkeypatch.setattr(zoo.pipeline.generation, "evaluate_generation", decoded_again)
    second = run(_cfg(*cached), tmp_path / "second")
    assert second.score("zero_shot") == first.score("zero_shot") and second.accuracy == first.accuracy
    assert (tmp_path / "second" / "generations.jsonl").read_text() == first_rows
    with pytest.raises(AssertionError, match="decoded again"):
        run(_cfg(*cached, "task.n_eval=11"), tmp_path / "other_examples")  # other prompts: another key


def test_results_md_plots_a_generation_task_by_its_rouge_l(tmp_path, monkeypatch):
    """Exact match is 0 for nearly every written headline: the plots of a generation task show ROUGE-L, named so."""
    from benchmark_loader import load_script
    from records_helpers import record_dict

    from zoo.atomic import write_json
    from zoo.tasks.config import TaskConfig

    results_md = load_script("results_md")
    calls = []
    monkeypatch.setattr(results_md, "plot", lambda rows, path, **kw: calls.append((path.name, kw["metric"], kw["ylabel"])))
    for method, rouge in (("lora", 0.25), ("ia3", 0.2)):
        write_json(tmp_path / "runs" / "bbc_headlines" / method / "seed0" / "metrics.json",
                   record_dict(method=method, task="bbc_headlines", task_config=dataclasses.asdict(TaskConfig()), accuracy=0.0,
                               macro_f1=rouge, task_kind="generation",
                               generation={"exact_match": 0.0, "rouge_l": rouge, "log_likelihood_per_token": -4.0}))
    text = results_md.write_results(tmp_path / "runs", tmp_path / "RESULTS.md", None)
    assert calls == [("pareto_bbc_headlines.png", "macro_f1", "ROUGE-L"), ("time_bbc_headlines.png", "macro_f1", "ROUGE-L")]
    assert "![ROUGE-L against trainable parameters](pareto_bbc_headlines.png)" in text
