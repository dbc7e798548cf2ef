"""The base model's zero-shot / in-context predictions are computed once per input and reused by later runs."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

import zoo.task_kinds.classification
from zoo.runner.config import store_configs
from zoo.runner.run import run


def _cfg(tmp_path, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config",
            overrides=[
                "trainer=smoke",
                "latency_batches=1",
                "task.n_train=32",
                "task.n_eval=24",
                f"predictions_cache={tmp_path / 'cache'}",
                *overrides,
            ],
        )


@pytest.fixture
def forward_passes(monkeypatch):
    """How many times ``run`` evaluated a model (each evaluation is a pass over the evaluation set)."""
    calls = []
    evaluate = zoo.task_kinds.classification.evaluate

    def counting(model, *args, **kwargs):
        calls.append(type(model).__name__)
        return evaluate(model, *args, **kwargs)

    # what the classification kind's formulation scores with, for the base model's baselines and the learner alike
    monkeypatch.setattr(zoo.task_kinds.classification, "evaluate", counting)
    return calls


def test_second_run_reuses_the_base_predictions(tmp_path, forward_passes):
    first = run(_cfg(tmp_path, "baseline=in_context", "task.demonstrations=1"), tmp_path / "a")
    assert len(forward_passes) == 2  # zero-shot and in-context, both computed
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    second = run(_cfg(tmp_path, "baseline=in_context", "task.demonstrations=1", "seed=1"), tmp_path / "b")
    assert len(forward_passes) == 2  # nothing scored again
    assert second.baseline_scores == first.baseline_scores and set(first.baseline_scores) == {"zero_shot", "in_context"}
    assert second.scores == first.scores and second.example_scores == first.example_scores
    assert second.eval_details == first.eval_details


def test_a_method_run_scores_only_its_own_model_after_a_baseline(tmp_path, forward_passes):
    run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path / "zero_shot")
    record = run(_cfg(tmp_path, "method=ia3"), tmp_path / "ia3")
    assert forward_passes == ["LlamaForCausalLM", "ZooModel"]  # the base once, then the tuned model
    fresh = run(_cfg(tmp_path, "baseline=zero_shot", "predictions_cache=null"), tmp_path / "fresh")
    assert record.baseline_scores["zero_shot"]["accuracy"] == fresh.scores["accuracy"]


def test_other_inputs_are_other_entries(tmp_path, forward_passes):
    run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path / "a")
    run(_cfg(tmp_path, "baseline=zero_shot", "task.n_eval=16"), tmp_path / "b")  # another evaluation set
    run(_cfg(tmp_path, "baseline=zero_shot", "task.template='{text} . it was {answer}'"), tmp_path / "c")  # another template
    run(_cfg(tmp_path, "baseline=zero_shot", "model.seed=1", "model.pretrain_steps=0"), tmp_path / "d")  # other weights
    assert len(forward_passes) == 4 and len(list((tmp_path / "cache").glob("*.json"))) == 4
