"""Resume: a run's folder holding the metrics of the same config counts as done; another config runs again."""
from __future__ import annotations

from hydra import compose, initialize_config_module

from zoo.atomic import write_json
from zoo.config import store_configs
from zoo.resume import finished_run, run_identity


def _cfg(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer=smoke", *overrides])


def _done(run_config: dict) -> dict:
    """A finished run's record: what resume reports of it, and the config it ran."""
    return {"method": "lora", "task": "synthetic_sentiment", "seed": 0, "accuracy": 0.75, "run_config": run_config}


def test_the_same_config_is_done(tmp_path):
    write_json(tmp_path / "metrics.json", _done(run_identity(_cfg("resume=true"))))
    assert finished_run(tmp_path, _cfg("resume=true", "trainer.progress=false"))["accuracy"] == 0.75  # progress bars change no result


def test_another_config_runs_again_and_says_why(tmp_path, caplog):
    write_json(tmp_path / "metrics.json", _done(run_identity(_cfg())))
    assert finished_run(tmp_path, _cfg("trainer.max_steps=7")) is None
    assert "differs in trainer.max_steps" in caplog.text


def test_missing_or_unreadable_metrics_run(tmp_path, caplog):
    assert finished_run(tmp_path, _cfg()) is None
    (tmp_path / "metrics.json").write_text("{half")
    assert finished_run(tmp_path, _cfg()) is None and "unreadable" in caplog.text


def test_only_the_runs_own_learning_rate_counts(tmp_path, caplog):
    """A rate given to another method leaves the run done (records of either form); its own rate reruns it."""
    old = run_identity(_cfg("method=lora", "+method_learning_rates={full_finetune:5e-5}"))
    assert old["method_learning_rates"] == {}
    old["method_learning_rates"] = {"full_finetune": 5e-5}  # as records written before rates were cut to the run's own
    write_json(tmp_path / "metrics.json", _done(old))
    assert finished_run(tmp_path, _cfg("method=lora", "+method_learning_rates={full_finetune:5e-5,ia3:1e-2}"))["accuracy"] == 0.75
    assert finished_run(tmp_path, _cfg("method=lora", "+method_learning_rates={lora:1e-4}")) is None
    assert "differs in method_learning_rates.lora" in caplog.text
