"""``zoo model.name=<local folder>`` runs every registered method on tiny Gemma 3, Qwen3 and Phi-3 models
saved with ``save_pretrained`` (plus a word-level tokenizer), with the default targets: the roles
are found from each model's structure, not from a table of families. The default tier runs the Phi-3 folder (fused
projections, the hardest to find), the full tier (``--full``) the other two as well."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_module
from tiers import FULL, method_params

import zoo
from zoo.models.language import VOCABULARY
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.runner.config import store_configs
from zoo.runner.run import run

FAMILIES = ("tiny-gemma3", "tiny-qwen3", "tiny-phi3")
CHEAP = [
    "trainer=smoke",
    "trainer.max_steps=2",
    "task.n_train=16",
    "task.n_eval=16",
    "predictions_cache=null",
    "latency_batches=1",
]  # the latency record is not under test: one timed batch


@pytest.fixture(scope="module", params=[pytest.param(f, marks=[] if f == "tiny-phi3" else [FULL]) for f in FAMILIES])
def folder(request, tmp_path_factory):
    tokenizer = word_tokenizer(VOCABULARY)
    path = tmp_path_factory.mktemp(request.param)
    tiny_model(request.param, vocab_size=len(tokenizer), seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("method", method_params(zoo.list_methods()))
def test_every_method_runs_on_a_saved_model(folder, method, tmp_path):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose("config", overrides=["trainer.progress=false", *CHEAP, f"method={method}", f"model.name={folder}"])
    record = run(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["method"] == method and on_disk["model"] == str(folder)
    spec = zoo.get_method(method)
    assert record.train_steps == (0 if spec.gradient_free else 2)
    assert record.trainable_params > 0 and 0.0 <= record.scores["accuracy"] <= 1.0
    meta = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert meta["method"] == method
