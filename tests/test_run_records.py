"""What a run records beyond its scores: latency against the base model, per-method learning rates."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

import zoo
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


def test_method_learning_rates_apply_where_the_trainer_sets_none(tmp_path):
    rates = "+method_learning_rates={lora:0.002,ia3:0.5}"
    assert run(_cfg(tmp_path, rates), tmp_path / "a").learning_rate == 0.002
    assert run(_cfg(tmp_path, rates, "trainer.learning_rate=0.01"), tmp_path / "b").learning_rate == 0.01


def test_method_learning_rates_refuse_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match=r"method_learning_rates names unknown method\(s\) \['lroa'\]; registered methods: \["):
        run(_cfg(tmp_path, "+method_learning_rates={lroa:0.1}"), tmp_path)
