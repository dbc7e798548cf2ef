"""``model.device_map``: passed to from_pretrained, and a model it placed is never moved by the run."""

from __future__ import annotations

import pytest
import torch
import transformers
from hydra import compose, initialize_config_module

from zoo.models.language import VOCABULARY
from zoo.models.load import ModelConfig, load_model
from zoo.models.placement import to_device
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.runner.config import store_configs
from zoo.runner.run import run


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tokenizer = word_tokenizer(VOCABULARY)
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("tiny-llama", vocab_size=len(tokenizer), seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_device_map_reaches_from_pretrained(folder, monkeypatch):
    original, seen = transformers.AutoModelForCausalLM.from_pretrained, []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device_map"))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    load_model(ModelConfig(name=str(folder), device_map="cpu"))
    load_model(ModelConfig(name=str(folder)))
    assert seen == ["cpu", None]


def test_a_placed_model_is_left_where_it_is():
    model = torch.nn.Linear(2, 2)
    model.to = lambda *a, **k: pytest.fail("a placed model was moved")
    assert to_device(model, torch.device("cpu"), placed=True) is model


def test_a_placed_model_on_another_device_than_the_trainer_is_refused():
    with pytest.raises(ValueError, match=r"put the model on cpu, but the run trains on cuda \(trainer.device\)"):
        to_device(torch.nn.Linear(2, 2), torch.device("cuda"), placed=True)


def _cfg(folder, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config",
            overrides=[
                "trainer.progress=false",
                "trainer=smoke",
                "latency_batches=1",
                "trainer.max_steps=2",
                "task.n_train=16",
                "task.n_eval=16",
                "predictions_cache=null",
                "trainer.device=cpu",
                f"model.name={folder}",
                *overrides,
            ],
        )


def _never_moved(*args, **kwargs):
    raise AssertionError("the run moved the base model with .to()")


def test_a_run_never_moves_a_model_its_device_map_placed(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(transformers.PreTrainedModel, "to", _never_moved)
    record = run(_cfg(folder, "model.device_map=cpu"), tmp_path)
    assert record.train_steps == 2 and 0.0 <= record.scores["accuracy"] <= 1.0
    with pytest.raises(AssertionError, match="moved the base model"):  # without a device_map the run moves it: the spy sees that
        run(_cfg(folder), tmp_path / "moved")
