"""Proxy tuning scored by a task's kind (zoo.research.proxy.score_task) on tiny models: the run's metrics, from the combined logits."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import zoo
from zoo.research.proxy import ProxyTunedModel, score_task
from zoo.tasks.config import TaskConfig
from zoo.tasks.data import ClassificationData, Example
from zoo.tasks.formulation import formulation_for
from zoo.tasks.generation import generation_formulation
from zoo.tasks.generation_metrics import example_scores, generation_metrics
from zoo.tasks.pairs import GenerationData, Pair
from zoo.testing.contract import NO_PAST_KEY_VALUES
from zoo.testing.helpers import perturb
from zoo.testing.models import make_model

pytestmark = NO_PAST_KEY_VALUES
TASK = TaskConfig(
    name="synthetic_generation", kind="generation", template="w1 w2 {text} . {answer}", max_new_tokens=5, max_length=24
)
PAIRS = [Pair(" ".join(f"w{(5 * i + j) % 60}" for j in range(2 + 2 * i)), f"w{i} w{i + 1}") for i in range(5)]
DATA = GenerationData(PAIRS[:2], PAIRS)


def _proxy(alpha: float) -> ProxyTunedModel:
    small = make_model("tiny-llama", seed=0)
    tuned = zoo.wrap(copy.deepcopy(small), "lora")
    perturb(tuned, seed=3)
    return ProxyTunedModel(make_model("tiny-llama", seed=1), tuned.eval(), small.eval(), alpha)


@torch.no_grad()
def _reference(proxy: ProxyTunedModel, tokenizer) -> tuple[list[str], float, int]:
    """Greedy decoding one prompt at a time by whole forward passes of the combined logits, and the teacher-forced sum."""
    form = generation_formulation(TASK, tokenizer, DATA.train)
    responses, total, count = [], 0.0, 0
    for pair in PAIRS:
        ids = torch.tensor([form.encode_prompt(pair.text)])
        for _ in range(TASK.max_new_tokens):
            token = proxy(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].argmax()
            ids = torch.cat([ids, token.view(1, 1)], dim=1)
            if token == tokenizer.eos_token_id:
                break
        responses.append(form.decode(ids[0, len(form.encode_prompt(pair.text)) :].tolist()))
        prompt, response = form.encode_prompt(pair.text), form.encode_response(pair.response)
        full = torch.tensor([prompt + response])
        logp = proxy(input_ids=full, attention_mask=torch.ones_like(full)).logits[0].log_softmax(-1)
        total += sum(logp[len(prompt) + k - 1, t].item() for k, t in enumerate(response))
        count += len(response)
    return responses, total, count


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_a_proxy_is_scored_on_its_own_greedy_responses_and_likelihood(alpha, tokenizer):
    proxy = _proxy(alpha)
    evaluation = score_task(proxy, tokenizer, TASK, DATA, batch_size=3)
    responses, metrics = evaluation.outputs, {**evaluation.scores, **evaluation.details}
    expected, total, count = _reference(proxy, tokenizer)
    assert responses == expected and any(responses)
    assert metrics == pytest.approx(
        generation_metrics(example_scores(expected, [p.response for p in PAIRS]), total, count), rel=1e-4
    )
    assert math.isfinite(metrics["log_likelihood_per_token"]) and metrics["response_tokens"] == count == 5 * 3


def test_alpha_zero_scores_as_the_large_model_alone(tokenizer):
    proxy = _proxy(0.0)
    proxied = score_task(proxy, tokenizer, TASK, DATA, batch_size=5)
    alone = score_task(proxy.large, tokenizer, TASK, DATA, batch_size=5)
    assert proxied.outputs == alone.outputs and proxied.scores == pytest.approx(alone.scores, rel=1e-5)
    steered = score_task(_proxy(1.0), tokenizer, TASK, DATA, batch_size=5)
    assert steered.scores["log_likelihood_per_token"] != pytest.approx(alone.scores["log_likelihood_per_token"], rel=1e-3)


@torch.no_grad()
def test_a_classification_task_is_scored_by_the_label_words_of_the_combined_logits(tokenizer):
    """score_task scores any kind: a classification task by the label words' combined logits after the template, one
    unpadded prompt at a time here."""
    task = TaskConfig(template="w1 w2 {text} . it was {answer}", max_length=24)
    examples = [Example(p.text, i % 2) for i, p in enumerate(PAIRS)]
    data = ClassificationData(examples[:2], examples, ["negative", "positive"])
    proxy = _proxy(1.0)
    evaluation = score_task(proxy, tokenizer, task, data, batch_size=3)
    form = formulation_for(task, tokenizer, "causal_lm", train=data.train)
    words = tokenizer.convert_tokens_to_ids(["bad", "good"])
    expected = [proxy(input_ids=torch.tensor([form.encode(e.text)])).logits[0, -1, words].argmax().item() for e in examples]
    assert form.label_token_ids == words and evaluation.outputs == expected
    correct = [int(p == e.label) for p, e in zip(expected, examples, strict=True)]
    assert evaluation.example_scores == {"accuracy": correct} and evaluation.scores["accuracy"] == sum(correct) / 5
    assert 0.0 <= evaluation.scores["macro_f1"] <= 1.0
