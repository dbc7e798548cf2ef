"""peft's method-comparison results layout both ways: a zoo record written in it and read back, a file written by hand from
peft's documented layout read as a row beside zoo's, and what is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from records_helpers import record_dict

from zoo.report.peft_results import LAYOUT, from_peft, read_peft_results, to_peft, write_peft_results
from zoo.report.table import load_runs
from zoo.report.table import main as report_main
from zoo.runtime.atomic import write_json

FIXTURE = Path(__file__).parent / "fixtures" / "peft_results"
HISTORY = [{"step": 2, "loss": 0.9, "accuracy": 0.6, "macro_f1": 0.5}]


def _record(**fields) -> dict:
    return record_dict(
        method="lora",
        method_config={"r": 8, "alpha": 16.0},
        model="tiny-llama",
        model_config={"dtype": "float32"},
        seed=1,
        task_config={"max_length": 128, "template": "review : {text} . it was {answer}", "eval_split": "test", "sample_seed": 2},
        learning_rate=0.001,
        trainable_params=3584,
        total_params=86208,
        train_steps=4,
        train_seconds=12.5,
        final_loss=0.4,
        peak_memory_bytes=420_000_000,
        adapter_bytes=15_500,
        scores={"accuracy": 0.75, "macro_f1": 0.7},
        history=HISTORY,
        train_tokens=4096,
        train_examples=64,
        eval_fingerprint="abc123",
        zoo_version="0.1.0",
        device="cpu",
        run_config={
            "trainer": {
                "batch_size": 16,
                "weight_decay": 0.0,
                "schedule": "linear",
                "max_grad_norm": 1.0,
                "mixed_precision": "no",
                "eval_every": 2,
            }
        },
        **fields,
    )


def test_a_record_round_trips_through_pefts_layout(tmp_path):
    record = _record()
    [path] = write_peft_results([record], tmp_path)
    assert path.name == "lora--tiny-llama-synthetic_sentiment-seed1-sample2.json"  # peft's <method>--<experiment>.json
    data = json.loads(path.read_text())
    assert list(data) == list(LAYOUT)
    assert data["run_info"]["train_config"]["optimizer_kwargs"] == {"lr": 0.001, "weight_decay": 0.0}
    assert data["run_info"]["peft_config"] == {"peft_type": "LORA", "r": 8, "alpha": 16.0}
    assert data["train_info"]["metrics"][-1] == {
        "step": 4,
        "test accuracy": 0.75,
        "test macro_f1": 0.7,
        "train loss": 0.4,
        "train samples": 64,
        "train total tokens": 4096,
    }
    assert (
        data["run_info"]["created_at"] is None and data["train_info"]["accelerator_memory_reserved_avg"] is None
    )  # zoo has none
    run = from_peft(data)
    same = (
        "model",
        "task",
        "seed",
        "scores",
        "trainable_params",
        "total_params",
        "train_seconds",
        "train_steps",
        "final_loss",
        "peak_memory_bytes",
        "adapter_bytes",
        "learning_rate",
        "eval_fingerprint",
        "train_tokens",
        "train_examples",
        "zoo_version",
    )
    assert {k: run[k] for k in same} == {k: record[k] for k in same}
    assert run["history"] == HISTORY and run["objective_metric"] == "accuracy" and run["task_kind"] == "classification"
    assert (run["method"], run["source"], run["_overrides"]) == (
        "lora (peft)",
        "peft",
        "tiny-llama-synthetic_sentiment-seed1-sample2",
    )


def test_a_file_written_by_hand_from_pefts_documented_layout_reads_as_a_run():
    [run] = read_peft_results(FIXTURE)
    assert (run["method"], run["source"], run["_overrides"]) == ("lora (peft)", "peft", "tiny-llama-rank4")
    assert (run["model"], run["task"], run["task_kind"]) == ("tiny-llama", "synthetic_sentiment", "classification")
    assert run["scores"] == {"accuracy": 0.90625} and run["objective_metric"] == "accuracy"  # the last entry's test score
    assert run["history"] == [{"step": 100, "loss": 0.41, "accuracy": 0.8125}, {"step": 200, "loss": 0.22, "accuracy": 0.875}]
    assert (run["trainable_params"], run["total_params"], run["trainable_percent"]) == (
        2048,
        84672,
        pytest.approx(100 * 2048 / 84672),
    )
    assert (run["train_seconds"], run["peak_memory_bytes"], run["adapter_bytes"]) == (80.25, 73400320, 9216)
    assert (run["train_steps"], run["final_loss"], run["train_tokens"], run["learning_rate"]) == (200, 0.22, 51200, 0.002)
    assert run["method_config"]["peft_type"] == "LORA" and run["eval_fingerprint"] == "fedcba9876543210fedcba9876543210fedcba98"


def test_zoo_report_shows_pefts_rows_beside_zoos_marked_as_another_source(tmp_path, capsys):
    write_json(tmp_path / "lora" / "seed0" / "metrics.json", record_dict())
    shutil.copytree(FIXTURE, tmp_path / "from-peft")
    assert report_main([str(tmp_path), "--html", str(tmp_path / "report.html")]) == 0
    rows = [line.split(" | ")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("| lora")]
    assert sorted(rows) == ["| lora", "| lora (peft)"]
    page = (tmp_path / "report.html").read_text()
    assert page.count('data-source="peft"') == 1 and page.count('data-source="zoo"') == 1


def test_zoos_own_exports_in_a_sweep_folder_are_not_read_twice(tmp_path):
    write_json(tmp_path / "lora" / "seed0" / "metrics.json", record_dict())
    assert report_main([str(tmp_path), "--peft-json", str(tmp_path / "peft")]) == 0
    assert len(list((tmp_path / "peft").glob("*.json"))) == 1
    assert read_peft_results(tmp_path) == []  # the folder's own runs, already read from metrics.json
    assert report_main([str(tmp_path), "--peft-json", str(tmp_path / "peft")]) == 0  # zoo's own file: rewritten


def test_a_file_zoo_did_not_write_is_never_overwritten(tmp_path, capsys):
    write_json(tmp_path / "runs" / "lora" / "seed0" / "metrics.json", record_dict())
    theirs = tmp_path / "out" / "lora--tiny-llama-synthetic_sentiment-seed0.json"
    shutil.copy(FIXTURE / "lora--tiny-llama-rank4.json", theirs.parent.mkdir() or theirs)
    assert (
        report_main([str(tmp_path / "runs"), "--peft-json", str(tmp_path / "out")]) == 2
    )  # a user error: one line, exit status 2
    assert "is not a file zoo wrote" in capsys.readouterr().err
    assert json.loads(theirs.read_text())["run_info"]["experiment_name"] == "lora/tiny-llama-rank4"


def test_files_not_in_the_layout_or_without_a_score_are_refused_saying_why(tmp_path, capsys):
    with pytest.raises(ValueError, match="exactly the keys"):
        from_peft({"run_info": {}, "train_info": {}})
    data = to_peft(_record())
    data["train_info"]["metrics"] = [{"step": 4, "train loss": 0.4}]
    with pytest.raises(ValueError, match="no metrics entry with a score"):
        from_peft(data)
    data["meta_info"]["package_info"] = {}  # not marked as zoo's: read, and skipped with a warning naming it
    write_json(tmp_path / "x.json", data)
    assert read_peft_results(tmp_path) == [] and "x.json" in capsys.readouterr().err
    assert load_runs(tmp_path) == []
