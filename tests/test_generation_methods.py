"""Every registered gradient method trains on a generation task and writes with ``generate`` (the default tiny-llama).

Parametrised over ``zoo.list_methods()``: a new method (or plugin) is checked with no edit here.
A method that declares it cannot (``task_kinds`` without ``generation``) is checked to be refused
when a run is planned (tests/test_generation_runs.py).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from tiers import method_params

import zoo
from zoo.evaluation.generation import evaluate_generation
from zoo.models.arch import refusal
from zoo.models.load import ModelConfig, load_model
from zoo.tasks.config import TaskConfig
from zoo.tasks.generation import generation_formulation, response_loss
from zoo.tasks.generation_tasks import build_generation_task
from zoo.training.loop import TrainerConfig, make_accelerator, train
from zoo.training.optimizer import method_groups, optimizer_of

TASK = TaskConfig(
    name="synthetic_generation",
    kind="generation",
    template="review : {text} . answer : {answer}",
    max_new_tokens=6,
    max_length=40,
    n_train=32,
    n_eval=3,
)
TRAINER = TrainerConfig(max_steps=10, batch_size=8, progress=False, checkpoint_every=0, warmup_ratio=0.0)
GENERATING = [name for name in zoo.list_methods() if "generation" in (zoo.get_method(name).task_kinds or ("generation",))]
"""The methods that declare generation, or every kind (``task_kinds`` None)."""


@pytest.fixture(scope="module")
def setting():
    base, tokenizer = load_model(ModelConfig())
    data = build_generation_task(TASK)
    form = generation_formulation(TASK, tokenizer, data.train)
    return base, data, form


def test_only_methods_that_can_write_declare_generation():
    assert "lora" in GENERATING and "prefix_tuning" in GENERATING and "peft_vera" in GENERATING
    assert "closed_form_head" not in GENERATING
    assert all(not zoo.get_method(name).gradient_free for name in GENERATING)


@pytest.mark.parametrize("method", method_params(GENERATING))
def test_the_method_learns_the_responses_and_generates(method, setting):
    base, data, form = setting
    spec = zoo.get_method(method)
    model = copy.deepcopy(base)
    if (why := refusal(spec, model)) is not None:
        pytest.skip(f"{method} refuses tiny-llama: {why}")
    torch.manual_seed(0)
    wrapped = zoo.wrap(model, method)
    batches = form.training_batches(data.train, TRAINER.batch_size, seed=0)
    with torch.no_grad():
        before = response_loss(wrapped.eval(), batches[0]).item()
    result = train(
        wrapped,
        method_groups(wrapped, spec.learning_rate),
        batches,
        response_loss,
        TRAINER,
        make_accelerator(TRAINER),
        make_optimizer=optimizer_of(spec),
    )  # the method's own optimiser, where it declares one (LoRA+, GaLore)
    with torch.no_grad():
        after = response_loss(wrapped.eval(), batches[0]).item()
    assert math.isfinite(result.final_loss) and math.isfinite(after)
    assert after < before, f"{method}: the response loss went from {before:.4f} to {after:.4f} in {TRAINER.max_steps} steps"

    prompt = form.prompt_batches(data.eval[:1], 1)[0]
    tokens = wrapped.generate(
        input_ids=prompt["input_ids"],
        attention_mask=prompt["attention_mask"],
        max_new_tokens=form.max_new_tokens,
        do_sample=False,
        eos_token_id=form.eos_token_id,
        pad_token_id=form.pad_token_id,
    )
    width = prompt["input_ids"].shape[1]
    assert tokens[0, :width].tolist() == prompt["input_ids"][0].tolist() and 1 <= tokens.shape[1] - width <= form.max_new_tokens
    evaluation = evaluate_generation(wrapped, data.eval, form, batch_size=3)
    responses, scores = evaluation.outputs, evaluation.scores
    assert len(responses) == 3 and all(isinstance(r, str) for r in responses) and any(responses)
    assert 0 <= scores["rouge_l"] <= 1 and scores["log_likelihood_per_token"] < 0
