"""Forgetting: the next-token loss on held-out general text, before and after a run trains."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from test_tasks_prepared import fake_vader_sdist
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

import zoo.runner.pipeline.base
from zoo.evaluation.forgetting import ForgettingConfig, general_texts, next_token_loss, text_batches, text_source
from zoo.models.load import ModelConfig, load_model
from zoo.runner.config import store_configs
from zoo.runner.run import run
from zoo.tasks import nyt_snippets, prepared


def _cfg(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config",
            overrides=["trainer.progress=false", "trainer=smoke", "latency_batches=1", "model.pretrain_steps=0", *overrides],
        )


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelConfig(name="tiny-llama"))


def test_loss_is_the_models_own_and_padding_changes_nothing(tiny):
    model, tokenizer = tiny
    texts = general_texts("synthetic", 6, cache_dir="unused")
    together = next_token_loss(model, text_batches(texts, tokenizer, max_length=64, batch_size=6))
    alone = [next_token_loss(model, text_batches([t], tokenizer, max_length=64, batch_size=1)) for t in texts]
    assert together[1] == sum(n for _, n in alone)
    assert together[0] == pytest.approx(sum(loss * n for loss, n in alone) / together[1], rel=1e-5)
    ids = torch.tensor([tokenizer(texts[0])["input_ids"]])
    with torch.no_grad():
        assert alone[0][0] == pytest.approx(model(input_ids=ids, labels=ids).loss.item(), rel=1e-5)


def test_texts_are_cut_to_max_length(tiny):
    _, tokenizer = tiny
    [batch] = text_batches(general_texts("synthetic", 4, cache_dir="unused"), tokenizer, max_length=3, batch_size=4)
    assert batch["input_ids"].shape == (4, 3) and batch["attention_mask"].all()


def test_auto_is_synthetic_for_zoos_word_tokenizer_and_news_for_others(tiny):
    assert text_source(ForgettingConfig(), tiny[1]) == "synthetic"
    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), pad_token="<pad>")
    assert text_source(ForgettingConfig(), bpe) == "nyt_snippets"
    assert text_source(ForgettingConfig(text="none"), bpe) == "none"


def test_news_texts_come_from_the_nyt_snippets_test_split(tmp_path, monkeypatch):
    archive = fake_vader_sdist(tmp_path)
    fake = dataclasses.replace(nyt_snippets.NYT_SNIPPETS, sha256=hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(nyt_snippets, "NYT_SNIPPETS", fake)
    monkeypatch.setattr(prepared, "download_archive", lambda data, dest: Path(shutil.copy(archive, dest)))
    texts = general_texts("nyt_snippets", 3, cache_dir=str(tmp_path / "cache"))
    test_split = [e.text for e in prepared.load_prepared(fake, tmp_path / "cache").split("test")]
    assert texts == test_split[:3] and all(t.startswith("Editorial sentence number") for t in texts)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"forgetting.text 'wiki' is not one of \('auto', 'nyt_snippets', 'synthetic', 'none'\)"):
        ForgettingConfig(text="wiki")
    with pytest.raises(ValueError, match="forgetting.n_texts must be at least 1, got 0"):
        ForgettingConfig(n_texts=0)


def test_a_method_run_records_the_loss_before_and_after(tmp_path, tiny):
    record = run(_cfg("trainer.max_steps=20", "trainer.learning_rate=3e-2"), tmp_path)
    moved = record.forgetting
    base, tokenizer = load_model(ModelConfig(name="tiny-llama", pretrain_steps=0))
    batches = text_batches(general_texts("synthetic", 64, "unused"), tokenizer, max_length=64, batch_size=16)
    assert moved["text"] == "synthetic" and moved["tokens"] == next_token_loss(base, batches)[1]
    assert moved["loss_before"] == pytest.approx(next_token_loss(base, batches)[0], rel=1e-6)
    assert moved["delta"] == pytest.approx(moved["loss_after"] - moved["loss_before"]) and abs(moved["delta"]) > 1e-4
    assert record.train_tokens > 0 and record.train_examples == 20 * 8


@pytest.mark.parametrize("overrides", [("baseline=zero_shot",), ("forgetting.text=none",)])
def test_nothing_is_recorded_for_a_baseline_or_when_off(tmp_path, overrides):
    assert run(_cfg(*overrides), tmp_path).forgetting is None


def test_the_base_models_loss_is_read_from_the_cache_by_the_next_run(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = run(_cfg(f"predictions_cache={cache}"), tmp_path / "first").forgetting

    def computed_again(*args):
        raise AssertionError("the base model's loss was computed again")

    monkeypatch.setattr(zoo.runner.pipeline.base, "next_token_loss", computed_again)
    second = run(_cfg(f"predictions_cache={cache}"), tmp_path / "second").forgetting
    assert (second["loss_before"], second["tokens"]) == (first["loss_before"], first["tokens"])
    assert second["loss_after"] == pytest.approx(first["loss_after"], rel=1e-6)
    with pytest.raises(AssertionError, match="computed again"):
        run(_cfg("predictions_cache=null"), tmp_path / "uncached")
