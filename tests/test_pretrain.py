"""The default tiny model is pretrained once on the synthetic language, cached, and knows polarity."""
from __future__ import annotations

import random

import pytest
import torch

from zoo.models.load import ModelConfig, load_model
from zoo.models.pretrain import VERDICTS, corpus
from zoo.tasks.synthetic import review


def _verdict_accuracy(model, tokenizer, fmt: str, words: tuple[str, str], n: int = 100) -> float:
    rng = random.Random(123)
    right = 0
    for _ in range(n):
        positive = rng.random() < 0.5
        prefix = fmt.format(r=review(rng, positive), v="").strip()
        ids = torch.tensor([tokenizer(prefix, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1]
        bad, good = tokenizer.convert_tokens_to_ids(list(words))
        right += int(bool(logits[good] > logits[bad]) == positive)
    return right / n


def test_pretrained_default_model_predicts_the_pretraining_verdicts_but_not_the_task_template():
    model, tokenizer = load_model(ModelConfig(name="tiny-llama"))
    for fmt, words in VERDICTS[:3]:
        assert _verdict_accuracy(model, tokenizer, fmt, words) > 0.8, fmt
    # the task's own template was never seen: zero-shot stays near chance
    assert _verdict_accuracy(model, tokenizer, "review : {r} . it was {v}", ("bad", "good")) < 0.7


def test_pretrained_model_is_cached_and_reloads_identically():
    first, _ = load_model(ModelConfig(name="tiny-llama"))
    second, _ = load_model(ModelConfig(name="tiny-llama"))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_random_weights_when_pretraining_is_off():
    pretrained, _ = load_model(ModelConfig(name="tiny-llama"))
    random_model, _ = load_model(ModelConfig(name="tiny-llama", pretrain_steps=0))
    w = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(pretrained.state_dict()[w], random_model.state_dict()[w])


def test_corpus_is_seeded_and_mixes_the_verdict_formats():
    texts = corpus(400, seed=1)
    assert texts == corpus(400, seed=1) and texts != corpus(400, seed=2)
    for marker in (" overall : ", " verdict : ", " liked ? "):
        assert any(marker in t for t in texts), marker
    assert any(t.endswith(" .") for t in texts)
    assert not any(" it was " in t for t in texts)


@pytest.mark.parametrize("overrides,message", [
    (dict(name="tiny-llama", pretrain_steps=-1), "pretrain_steps must be >= 0"),
    (dict(name="tiny-bert", pretrain_steps=10), "model.pretrain_steps=0"),
])
def test_bad_pretraining_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_model(ModelConfig(**overrides))
