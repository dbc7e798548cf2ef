"""Each formulation end to end on tiny models and a small in-memory dataset: prompt, prompt with
demonstrations, a head on a causal LM, a head on an encoder; and the combinations zoo refuses."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_module
from safetensors.torch import load_file
from tiers import method_params

import zoo
from zoo.runner.config import store_configs
from zoo.runner.run import run
from zoo.tasks.config import TASKS
from zoo.tasks.data import Splits
from zoo.tasks.synthetic import synthetic_sentiment


@pytest.fixture(autouse=True)
def in_memory_task(monkeypatch):
    data = synthetic_sentiment(48, 24, seed=3)
    splits = Splits({"train": data.train, "test": data.eval}, "in memory", data.label_names)
    monkeypatch.setitem(TASKS, "in_memory", lambda cfg: splits)


def _run(tmp_path, *overrides: str, task: tuple[str, ...] = ("task.name=in_memory", "task.n_eval=null")) -> dict:
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose("config", overrides=["trainer=smoke", "latency_batches=1", *task, *overrides])
    return run(cfg, tmp_path)


def test_prompt(tmp_path):
    record = _run(tmp_path)
    assert (record.formulation, record.n_train, record.n_eval) == ("prompt", 48, 24)
    assert record.baseline_scores.get("zero_shot") is not None and record.baseline_scores.get("in_context") is None
    assert record.flips["before"]["accuracy"] == record.baseline_scores["zero_shot"]["accuracy"]
    assert not (tmp_path / "head.safetensors").exists()


def test_prompt_with_demonstrations(tmp_path):
    record = _run(tmp_path, "task.demonstrations=1", "task.shots_per_class=8")
    assert record.n_train == 16
    assert record.baseline_scores.get("in_context") is not None and record.baseline_scores.get("zero_shot") is not None
    # the run starts from the in-context answers: its flips are measured against them
    assert record.flips["before"]["accuracy"] == record.baseline_scores["in_context"]["accuracy"]


def test_head_on_a_causal_lm(tmp_path):
    record = _run(tmp_path, "task.formulation=head")
    head = load_file(str(tmp_path / "head.safetensors"))
    assert head["linear.weight"].shape == (2, 64)
    assert record.trainable_params == 3584 + 2 * 64 + 2  # LoRA's own plus the head's
    assert record.adapter_bytes > 0 and record.head_bytes == (tmp_path / "head.safetensors").stat().st_size
    assert head["linear.weight"].abs().sum() > 0  # the head trained (it starts at zero)
    assert record.baseline_scores.get("zero_shot") is not None  # the base model's prompt answers stay the reference


def test_head_on_an_encoder(tmp_path):
    record = _run(tmp_path, "task.formulation=head", "model=tiny-bert")
    assert record.formulation == "head" and record.model == "tiny-bert"
    assert record.baseline_scores.get("zero_shot") is None and record.flips is None  # an encoder has no prompt answers
    assert json.loads((tmp_path / "metrics.json").read_text())["eval_details"]["confusion"]


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-bert"])
def test_head_formulation_learns(tmp_path, model):
    """Full fine-tuning with a head learns the built-in task (256 evaluation examples: chance is 0.50 ± 0.03)."""
    record = _run(
        tmp_path,
        "task.formulation=head",
        "method=full_finetune",
        f"model={model}",
        "trainer.max_steps=400",
        "trainer.batch_size=16",
        "save_adapter=false",
        task=(),
    )
    assert record.scores["accuracy"] >= 0.65, record.scores["accuracy"]


def test_prompt_on_an_encoder_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match="task.formulation=prompt scores the next token of a causal LM, and this model is an encoder"
    ):
        _run(tmp_path, "model=tiny-bert")


def test_label_word_methods_need_the_prompt(tmp_path):
    with pytest.raises(ValueError, match="'closed_form_head' works on the label words' logits; use task.formulation=prompt"):
        _run(tmp_path, "method=closed_form_head", "task.formulation=head")


@pytest.mark.parametrize("method", ["prompt_tuning", "prefix_tuning", "closed_form_head"])
def test_prompt_style_methods_run_on_the_template(tmp_path, method):
    record = _run(tmp_path, f"method={method}", "task.demonstrations=1")
    assert record.method == method and 0.0 <= record.scores["accuracy"] <= 1.0
    gradient_free = method == "closed_form_head"  # it solves for its weights: no rate to record
    assert (record.learning_rate is None, record.train_steps == 0) == (gradient_free, gradient_free)


def test_prompt_tuning_with_a_head(tmp_path):
    record = _run(tmp_path, "method=prompt_tuning", "task.formulation=head")
    assert record.trainable_params == 10 * 64 + 2 * 64 + 2


def test_runs_with_a_head_are_deterministic(tmp_path):
    a = _run(tmp_path / "a", "task.formulation=head")
    b = _run(tmp_path / "b", "task.formulation=head")
    assert a.final_loss == b.final_loss and (a.scores, a.example_scores, a.eval_details) == (
        b.scores,
        b.example_scores,
        b.eval_details,
    )
    assert torch.equal(
        load_file(str(tmp_path / "a" / "head.safetensors"))["linear.weight"],
        load_file(str(tmp_path / "b" / "head.safetensors"))["linear.weight"],
    )


def _can(method: str, formulation: str, model: str) -> bool:
    spec = zoo.get_method(method)
    kind = "encoder" if model == "tiny-bert" else "causal_lm"
    if kind not in spec.model_kinds or (formulation == "prompt" and kind == "encoder"):
        return False
    return formulation == "prompt" or not (spec.needs_label_words or spec.gradient_free)


@pytest.mark.parametrize("method", method_params(zoo.list_methods()))
@pytest.mark.parametrize("formulation,model", [("prompt", "tiny-llama"), ("head", "tiny-llama"), ("head", "tiny-bert")])
def test_every_method_with_every_formulation_it_can(tmp_path, method, formulation, model):
    if not _can(method, formulation, model):
        pytest.skip(f"{method} declares it cannot run {formulation} on {model}; the refusals are tested above")
    record = _run(tmp_path, f"method={method}", f"task.formulation={formulation}", f"model={model}", "trainer.max_steps=2")
    assert record.method == method and record.formulation == formulation
    assert record.trainable_params > 0 and 0.0 <= record.scores["accuracy"] <= 1.0
