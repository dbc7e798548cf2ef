"""Runs with a sample seed: per-example answers in the record, folders of their own in a profile's sweep, resume."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module

from zoo.config import store_configs
from zoo.records import RunRecord
from zoo.run import run
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.data import examples_fingerprint

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=32", "task.n_eval=16", "save_adapter=false"]


def _cfg(tmp_path: Path, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer.progress=false", f"predictions_cache={tmp_path / 'cache'}", *CHEAP, *overrides])


def test_every_run_records_its_answers_per_example_and_the_evaluation_set(tmp_path):
    trained = run(_cfg(tmp_path), tmp_path / "lora")
    resampled = run(_cfg(tmp_path, "task.sample_seed=1"), tmp_path / "sample1")
    baseline = run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path / "zero_shot")
    expected = examples_fingerprint(build_task(TaskConfig(n_train=32, n_eval=16)).eval)
    for record in (trained, resampled, baseline):
        assert len(record.eval_correct) == record.n_eval == 16
        assert sum(record.eval_correct) / 16 == record.accuracy
        assert record.eval_fingerprint == expected  # one evaluation set for every row and sample seed
    on_disk = RunRecord.read(tmp_path / "sample1" / "metrics.json")
    assert on_disk.eval_correct == resampled.eval_correct and on_disk.task_config["sample_seed"] == 1
    assert trained.task_config["sample_seed"] is None
    assert examples_fingerprint(build_task(TaskConfig(n_train=32, n_eval=16, seed=1)).eval) != expected


def test_a_profiles_sample_seeds_run_in_folders_of_their_own_and_resume(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    args = [sys.executable, "-m", "zoo.run", "-m", "+benchmark=smoke", "method=lora", "seed=0", "task.sample_seed=null,1",
            "model.pretrain_steps=0", "save_adapter=false", f"predictions_cache={tmp_path / 'cache'}", f"hydra.sweep.dir={tmp_path / 'runs'}"]
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    folders = sorted(p.parent.relative_to(tmp_path / "runs").as_posix() for p in (tmp_path / "runs").rglob("metrics.json"))
    assert folders == ["synthetic_sentiment/lora/seed0", "synthetic_sentiment/lora/seed0-sample1"]
    records = {name: RunRecord.read(tmp_path / "runs" / "synthetic_sentiment" / "lora" / name / "metrics.json")
               for name in ("seed0", "seed0-sample1")}
    assert records["seed0"].task_config["sample_seed"] is None and records["seed0-sample1"].task_config["sample_seed"] == 1
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("skipped (done)") == 2, again.stdout[-2000:]
