"""Experiment tracking through accelerate's trackers: ``trainer.log_with=tensorboard`` writes the loss curve into the run folder."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from zoo.io.records import RunRecord
from zoo.training.loop import TRACKERS, TrainerConfig, make_accelerator


def test_a_tensorboard_log_holds_the_loss_curve_and_the_evaluations(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "zoo.runner.run",
        "model=tiny-llama",
        "task.n_train=32",
        "task.n_eval=16",
        "predictions_cache=null",
        "trainer.max_steps=4",
        "trainer.batch_size=8",
        "trainer.eval_every=2",
        "trainer.checkpoint_every=0",
        "trainer.progress=false",
        "trainer.device=cpu",
        "trainer.log_with=tensorboard",
        f"hydra.run.dir={out}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": ""}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = RunRecord.read(out / "metrics.json")
    events = list((out / "logs" / "zoo").glob("events.out.tfevents.*"))
    assert len(events) == 1, sorted(p.name for p in (out / "logs").rglob("*"))
    log = EventAccumulator(str(events[0]))
    log.Reload()
    losses = [(e.step, e.value) for e in log.Scalars("train/loss")]
    assert [step for step, _ in losses] == [1, 2, 3, 4]
    assert losses[-1][1] == pytest.approx(record.final_loss, rel=1e-6)
    assert [(e.step, e.value) for e in log.Scalars("eval/accuracy")] == [(2, pytest.approx(record.history[0]["accuracy"]))]
    assert losses[1][1] == pytest.approx(record.history[0]["loss"], rel=1e-6)
    rates = [e.value for e in log.Scalars("train/learning_rate")]
    assert rates[0] > 0 and rates[-1] < rates[1]  # the schedule: warm-up, then a linear decay


def test_an_unknown_tracker_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"log_with 'tensorbored' is not one of accelerate's trackers \(.*'tensorboard'"):
        TrainerConfig(log_with="tensorbored")


def test_a_tracker_whose_package_is_missing_says_what_to_install(tmp_path):
    missing = next(
        (t for t in ("aim", "swanlab", "dvclive", "clearml") if t in TRACKERS and importlib.util.find_spec(t) is None), None
    )
    if missing is None:
        pytest.skip("every tracker package this test would try is installed here")
    with pytest.raises(
        ImportError, match=f"trainer.log_with={missing} needs its package, which is not installed: pip install {missing}"
    ):
        make_accelerator(TrainerConfig(log_with=missing), project_dir=tmp_path)
