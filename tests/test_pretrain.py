"""The default tiny model ships with zoo and knows polarity; any other pretrained model is built, checked and cached."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers

import zoo.models.default_model as default_model
from zoo.models.default_model import DEFAULT_STEPS, SHIPPED, Recipe, load_shipped, pretrained_tiny
from zoo.models.language import VOCABULARY
from zoo.models.load import ModelConfig, load_model
from zoo.models.pretrain import VERDICTS, PretrainingFailedError, check_learnt, corpus, pretrain, verdict_accuracy
from zoo.models.tokenizer import word_tokenizer


@pytest.fixture
def no_pretraining(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the default model must not be pretrained on this machine: it ships")

    monkeypatch.setattr(default_model, "pretrain", refuse)


def test_default_model_ships_learnt_and_needs_no_pretraining_or_cache(no_pretraining, tmp_path):
    model, tokenizer = load_model(ModelConfig(name="tiny-llama", cache_dir=str(tmp_path / "models")))
    scores = check_learnt(model, tokenizer, "the shipped tiny-llama")
    assert min(scores.values()) >= 0.9 and len(scores) == 2
    # the task's own template and label words were never seen: zero-shot stays near chance
    assert verdict_accuracy(model, tokenizer, "review : {r} . it was {v}", ("bad", "good")) < 0.7
    assert not (tmp_path / "models").exists()


def test_shipped_weights_match_their_recorded_recipe_and_checksum():
    meta = json.loads(SHIPPED["tiny-llama"].with_suffix(".json").read_text())
    assert meta["recipe"] == Recipe("tiny-llama", len(word_tokenizer(VOCABULARY)), 0, DEFAULT_STEPS).__dict__
    assert min(meta["verdict_accuracy"].values()) >= 0.9


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "tiny-llama.safetensors"
    shutil.copy(SHIPPED["tiny-llama"], damaged)
    shutil.copy(SHIPPED["tiny-llama"].with_suffix(".json"), damaged.with_suffix(".json"))
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setitem(SHIPPED, "tiny-llama", damaged)
    with pytest.raises(ValueError, match="does not match its checksum"):
        load_shipped(Recipe("tiny-llama", len(word_tokenizer(VOCABULARY)), 0, DEFAULT_STEPS))


def test_a_recipe_that_does_not_learn_is_refused_and_not_cached(tmp_path):
    tokenizer = word_tokenizer(VOCABULARY)
    with pytest.raises(PretrainingFailedError, match=r"did not learn the polarity.*not cached"):
        pretrained_tiny("tiny-llama", tokenizer, seed=0, steps=20, cache_dir=tmp_path, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_another_recipe_is_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    tokenizer = word_tokenizer(VOCABULARY)
    shipped = load_shipped(Recipe("tiny-llama", len(tokenizer), 0, DEFAULT_STEPS))
    calls = []
    monkeypatch.setattr(default_model, "pretrain", lambda *args, **kwargs: calls.append(args) or shipped)
    first = pretrained_tiny("tiny-llama", tokenizer, seed=7, steps=DEFAULT_STEPS, cache_dir=tmp_path, progress=False)
    second = pretrained_tiny("tiny-llama", tokenizer, seed=7, steps=DEFAULT_STEPS, cache_dir=tmp_path, progress=False)
    assert len(calls) == 1
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_pretraining_is_deterministic():
    tokenizer = word_tokenizer(VOCABULARY)
    first, second = (pretrain("tiny-llama", tokenizer, seed=3, steps=20, progress=False) for _ in range(2))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_the_recipe_rebuilds_the_shipped_weights_bit_for_bit(capsys):
    meta = json.loads(SHIPPED["tiny-llama"].with_suffix(".json").read_text())
    if (torch.__version__, transformers.__version__) != (meta["torch"], meta["transformers"]):
        pytest.skip(
            f"bits are reproducible with the versions that made them: torch {meta['torch']}, transformers {meta['transformers']}"
        )
    assert default_model.main(["--check"]) == 0, capsys.readouterr().out


def test_random_weights_when_pretraining_is_off():
    pretrained, _ = load_model(ModelConfig(name="tiny-llama"))
    random_model, _ = load_model(ModelConfig(name="tiny-llama", pretrain_steps=0))
    w = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(pretrained.state_dict()[w], random_model.state_dict()[w])


def test_corpus_is_seeded_mixes_the_verdict_formats_and_never_uses_the_task_words():
    texts = corpus(400, seed=1)
    assert texts == corpus(400, seed=1) and texts != corpus(400, seed=2)
    for fmt, _ in VERDICTS[:2]:
        marker = fmt.removeprefix("{r}").removesuffix("{v}")
        assert any(marker in t for t in texts), marker
    assert any(t.endswith(" .") for t in texts)
    assert not any(" it was " in t or " good" in t or " bad" in t for t in texts)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(name="tiny-llama", pretrain_steps=-1), "pretrain_steps must be 0 .random weights. or at least 20, got -1"),
        (dict(name="tiny-llama", pretrain_steps=5), "at least 20, got 5"),
        (dict(name="tiny-bert", pretrain_steps=100), "model.pretrain_steps=0"),
    ],
)
def test_bad_pretraining_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_model(ModelConfig(**overrides))
