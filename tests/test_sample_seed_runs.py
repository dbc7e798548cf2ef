"""Runs with a sample seed: per-example answers in the record, folders of their own in a profile's sweep, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from records_helpers import record_dict

import zoo
from benchmarks import suite, task_kinds
from zoo.io.records import RunRecord
from zoo.runner.config import store_configs
from zoo.runner.resume import finished_run, run_identity
from zoo.runner.run import run
from zoo.runtime.atomic import write_json
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.data import examples_fingerprint

pytestmark = pytest.mark.launches

CHEAP = [
    "model.pretrain_steps=0",
    "trainer=smoke",
    "latency_batches=1",
    "task.n_train=32",
    "task.n_eval=16",
    "save_adapter=false",
]


def _cfg(tmp_path: Path, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config", overrides=["trainer.progress=false", f"predictions_cache={tmp_path / 'cache'}", *CHEAP, *overrides]
        )


def test_every_run_records_its_answers_per_example_and_the_evaluation_set(tmp_path):
    trained = run(_cfg(tmp_path), tmp_path / "lora")
    resampled = run(_cfg(tmp_path, "task.sample_seed=1"), tmp_path / "sample1")
    baseline = run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path / "zero_shot")
    expected = examples_fingerprint(build_task(TaskConfig(n_train=32, n_eval=16)).eval)
    for record in (trained, resampled, baseline):
        assert len(record.example_scores["accuracy"]) == record.n_eval == 16
        assert sum(record.example_scores["accuracy"]) / 16 == record.scores["accuracy"]
        assert record.eval_fingerprint == expected  # one evaluation set for every row and sample seed
    on_disk = RunRecord.read(tmp_path / "sample1" / "metrics.json")
    assert on_disk.example_scores == resampled.example_scores and on_disk.task_config["sample_seed"] == 1
    assert trained.task_config["sample_seed"] is None
    assert examples_fingerprint(build_task(TaskConfig(n_train=32, n_eval=16, seed=1)).eval) != expected


def test_a_profiles_sample_seeds_run_in_folders_of_their_own_and_resume(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    args = [
        sys.executable,
        "-m",
        "zoo.runner.run",
        "-m",
        "+benchmark=smoke",
        "method=lora",
        "seed=0",
        "task.sample_seed=null,1",
        "model.pretrain_steps=0",
        "save_adapter=false",
        f"predictions_cache={tmp_path / 'cache'}",
        f"hydra.sweep.dir={tmp_path / 'runs'}",
    ]
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    folders = sorted(p.parent.relative_to(tmp_path / "runs").as_posix() for p in (tmp_path / "runs").rglob("metrics.json"))
    assert folders == ["synthetic_sentiment/lora/seed0", "synthetic_sentiment/lora/seed0-sample1"]
    records = {
        name: RunRecord.read(tmp_path / "runs" / "synthetic_sentiment" / "lora" / name / "metrics.json")
        for name in ("seed0", "seed0-sample1")
    }
    assert records["seed0"].task_config["sample_seed"] is None and records["seed0-sample1"].task_config["sample_seed"] == 1
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("skipped (done)") == 2, again.stdout[-2000:]


def test_the_full_profile_pairs_run_i_with_seed_i_and_training_sample_i(tmp_path):
    """Movie reviews: 3 paired runs, tweets 3, BBC headlines 1, each run as the three kinds of row (no tuned rows: every
    row every run)."""
    commands = suite.sweeps("full", tmp_path, ["trainer.device=cpu"])
    seeds = [
        [a for a in cmd if a.startswith(("seed=", "task.sample_seed=", "task=", "+sweep=", "baseline="))] for cmd in commands
    ]
    task = "task=movie_sentiment"
    assert seeds[:6] == [
        ["+sweep=all_methods", task, "seed=0"],
        ["baseline=zero_shot,linear_probe", task, "seed=0"],
        ["baseline=in_context", task, "seed=0"],
        ["+sweep=all_methods", task, "seed=1", "task.sample_seed=1"],
        ["baseline=zero_shot,linear_probe", task, "seed=1", "task.sample_seed=1"],
        ["baseline=in_context", task, "seed=1", "task.sample_seed=1"],
    ]
    assert seeds[6][-2:] == ["seed=2", "task.sample_seed=2"]
    tasks = [next(a for a in s if a.startswith("task=")) for s in seeds[9:]]
    assert tasks == ["task=tweet_sentiment"] * 9 + ["task=bbc_headlines"] * 3
    assert len(commands) == 21 and all(cmd[-1] == "trainer.device=cpu" for cmd in commands)  # overrides last: they win
    smoke = suite.sweeps("smoke", tmp_path, [])  # the other profiles: one seed sweep, no sample seeds
    assert len(smoke) == 3 and all("seed=0" in cmd and not any("sample_seed" in a for a in cmd) for cmd in smoke)


def test_records_of_before_sample_seeds_still_read_and_resume(tmp_path):
    """A finished run of an older zoo (a record of schema 2, no task.sample_seed in its config, no per-example answers) is
    still done."""
    cfg = _cfg(tmp_path)
    identity = run_identity(cfg)
    del identity["task"]["sample_seed"]
    new_only = ("task_kind", "objective_metric", "scores", "example_scores", "eval_details", "eval_fingerprint")
    old = {k: v for k, v in record_dict(run_config=identity).items() if k not in new_only}
    old.update(
        schema_version=2, accuracy=0.5, macro_f1=0.5, eval={"accuracy": 0.5, "macro_f1": 0.5, "confusion": [[2, 2], [2, 2]]}
    )
    write_json(tmp_path / "metrics.json", old)
    done = finished_run(tmp_path, cfg)
    assert done is not None and (done.example_scores, done.eval_fingerprint) == ({}, None)
    assert done.scores == {"accuracy": 0.5, "macro_f1": 0.5} and done.eval_details == {"confusion": [[2, 2], [2, 2]]}
    assert finished_run(tmp_path, _cfg(tmp_path, "task.sample_seed=0")) is None  # a sample seed given is another config


def test_a_generation_task_gets_only_the_methods_and_baselines_that_declare_it(tmp_path):
    """BBC headlines in the full profile: no closed-form head, LoReFT or linear probe (classification only), one seed, 100 articles."""
    methods_for = task_kinds.methods_for
    commands = [cmd for cmd in suite.sweeps("full", tmp_path, []) if "task=bbc_headlines" in cmd]
    methods, baselines, in_context = (
        [a for a in cmd if a.startswith(("method=", "baseline=", "seed=", "task.n_eval="))] for cmd in commands
    )
    classification_only = {"closed_form_head", "loreft"}
    declared = [m for m in zoo.list_methods() if not m.startswith("peft_") and m not in classification_only]
    assert methods == [f"method={','.join(declared)}", "seed=0", "task.n_eval=100"]
    assert methods_for("generation") == [m for m in zoo.list_methods() if m not in classification_only]  # the bridge's peft_* too
    assert baselines == ["baseline=zero_shot", "seed=0", "task.n_eval=100"]
    assert in_context == ["baseline=in_context", "seed=0", "task.n_eval=100"]
    lengths = [[a for a in cmd if a.startswith("task.max_length=")] for cmd in commands]
    assert lengths == [["task.max_length=96"], ["task.max_length=96"], ["task.max_length=512"]]  # room for a demonstration
