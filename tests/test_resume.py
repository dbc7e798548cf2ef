"""Resume: a run's folder holding the metrics of the same config counts as done; another config runs again."""

from __future__ import annotations

from hydra import compose, initialize_config_module
from records_helpers import record_dict

from zoo.runner.config import store_configs
from zoo.runner.resume import finished_run, run_identity
from zoo.runtime.atomic import write_json


def _cfg(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer=smoke", "latency_batches=1", *overrides])


def _done(run_config: dict) -> dict:
    """A finished run's record of the config it ran."""
    return record_dict(scores={"accuracy": 0.75, "macro_f1": 0.5}, run_config=run_config)


def test_the_same_config_is_done(tmp_path):
    write_json(tmp_path / "metrics.json", _done(run_identity(_cfg("resume=true"))))
    assert (
        finished_run(tmp_path, _cfg("resume=true", "trainer.progress=false")).scores["accuracy"] == 0.75
    )  # progress bars change no result


def test_another_config_runs_again_and_says_why(tmp_path, caplog):
    write_json(tmp_path / "metrics.json", _done(run_identity(_cfg())))
    assert finished_run(tmp_path, _cfg("trainer.max_steps=7")) is None
    assert "differs in trainer.max_steps" in caplog.text


def test_missing_or_unreadable_metrics_run(tmp_path, caplog):
    assert finished_run(tmp_path, _cfg()) is None
    (tmp_path / "metrics.json").write_text("{half")
    assert finished_run(tmp_path, _cfg()) is None and "unreadable" in caplog.text


def test_only_the_learning_rate_the_run_resolves_counts(tmp_path, caplog):
    """A rate given to another method leaves the run done; a rate for its own method reruns it, naming the rate."""
    identity = run_identity(_cfg("method=lora", "+method_learning_rates={full_finetune:5e-5}"))
    assert "method_learning_rates" not in identity and identity["learning_rates"] == {"method": 5e-3, "head": None}
    write_json(tmp_path / "metrics.json", _done(identity))
    assert (
        finished_run(tmp_path, _cfg("method=lora", "+method_learning_rates={full_finetune:5e-5,ia3:1e-2}")).scores["accuracy"]
        == 0.75
    )
    assert finished_run(tmp_path, _cfg("method=lora", "+method_learning_rates={lora:1e-4}")) is None
    assert "differs in learning_rates.method" in caplog.text


def test_an_old_record_runs_again_naming_its_schema(tmp_path, caplog):
    old = _done(run_identity(_cfg()))
    del old["schema_version"]  # what zoo wrote before RunRecord
    write_json(tmp_path / "metrics.json", old)
    assert finished_run(tmp_path, _cfg()) is None
    assert f"{tmp_path / 'metrics.json'} is a record of schema version 1, and this zoo reads versions 2, 3" in caplog.text
