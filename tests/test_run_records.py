"""What a run records beyond its scores: latency against the base model, per-method learning rates."""
from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module

import zoo
import zoo.pipeline.generation
import zoo.pipeline.steps
from zoo.config import store_configs
from zoo.run import run


def _cfg(tmp_path, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer=smoke", "task.n_train=32", "task.n_eval=24", "save_adapter=false",
                                            f"predictions_cache={tmp_path / 'cache'}", *overrides])


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_latency_against_the_base_model_merged_where_the_method_merges(tmp_path, method):
    latency = run(_cfg(tmp_path, f"method={method}"), tmp_path).latency
    assert latency["base_seconds_per_batch"] > 0 and latency["seconds_per_batch"] > 0 and latency["ratio"] > 0
    assert (latency["merged_ratio"] is not None) == zoo.get_method(method).mergeable


def test_a_baseline_is_its_own_base(tmp_path):
    latency = run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path).latency
    assert latency["ratio"] == 1.0 and latency["merged_ratio"] is None


@pytest.mark.parametrize("task", ["synthetic_sentiment", "synthetic_generation"])
def test_latency_false_times_nothing_and_records_null(tmp_path, monkeypatch, task):
    def timed(*args, **kwargs):
        raise AssertionError("latency was timed")

    for module in (zoo.pipeline.steps, zoo.pipeline.generation):
        monkeypatch.setattr(module, "latency_record", timed)
    record = run(_cfg(tmp_path, f"task={task}", "latency=false"), tmp_path / "off")
    assert record.latency is None and record.run_config["latency"] is False and record.accuracy is not None
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


@pytest.mark.parametrize("overrides,method_rate,head_rate", [
    ((), 5e-3, None),  # lora's own default
    (("+method_learning_rates={lora:0.002,ia3:0.5}",), 0.002, None),  # the run's method's entry, not another's
    (("+method_learning_rates={lora:0.002}", "trainer.learning_rate=0.01"), 0.01, None),  # the trainer's wins
    (("task.formulation=head",), 5e-3, 5e-3),  # the head trains at the method's rate
    (("task.formulation=head", "task.head_learning_rate=0.03"), 5e-3, 0.03),
    (("baseline=linear_probe",), None, 1e-2),  # a probe's head: zoo.learning_rate.HEAD_LEARNING_RATE
    (("baseline=linear_probe", "trainer.learning_rate=0.2"), None, 0.2),
])
def test_the_optimiser_trains_at_the_resolved_rates_and_the_record_says_so(tmp_path, optimiser_rates, overrides, method_rate, head_rate):
    record = run(_cfg(tmp_path, *overrides), tmp_path)
    assert optimiser_rates == [[r for r in (method_rate, head_rate) if r is not None]]
    assert (record.learning_rate, record.head_learning_rate) == (method_rate, head_rate)
    assert record.run_config["learning_rates"] == {"method": method_rate, "head": head_rate}


def test_method_learning_rates_refuse_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match=r"method_learning_rates names unknown method\(s\) \['lroa'\]; registered methods: \["):
        run(_cfg(tmp_path, "+method_learning_rates={lroa:0.1}"), tmp_path)
