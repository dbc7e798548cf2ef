"""The pipeline's hooks: a method config bound to its task, baselines as registered strategies, the typed run record."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from conftest import make_model
from hydra import compose, initialize_config_module
from records_helpers import record_dict

import zoo
from zoo.io.records import RunRecord, UnusableRecord
from zoo.method import MethodConfig, TaskContext
from zoo.methods.prompt_tuning import PromptTuningConfig
from zoo.runner.baselines import BaselineSpec, list_baselines, register_baseline
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
                "task.n_eval=16",
                "save_adapter=false",
                f"predictions_cache={tmp_path / 'cache'}",
                *overrides,
            ],
        )


def test_a_method_needing_label_words_must_bind_them_at_register_time():
    @dataclass
    class Unbound(MethodConfig):
        label_token_ids: list[int] | None = None

    with pytest.raises(TypeError, match=r"method 'unbound_head' declares needs_label_words but Unbound does not override bind"):
        zoo.register("unbound_head", config=Unbound, needs_label_words=True)(lambda model, cfg: model)
    assert "unbound_head" not in zoo.list_methods()


@pytest.mark.parametrize("init_text,words", [(None, ["bad", "good"]), ("great film", ["great", "film"])])
def test_prompt_tuning_init_text_comes_from_the_task_or_the_given_text(tmp_path, init_text, words):
    """``method.init=text`` needs no token ids: the run binds the label words (or ``init_text``) to them, and the prompt starts there."""
    text = [] if init_text is None else [f"method.init_text='{init_text}'"]
    record = run(
        _cfg(
            tmp_path,
            "method=prompt_tuning",
            "method.init=text",
            "method.num_virtual_tokens=4",
            "trainer.max_steps=1",
            "trainer.learning_rate=1e-9",
            *text,
        ),
        tmp_path,
    )
    tokenizer = zoo.models.load.load_model(zoo.models.load.ModelConfig())[1]
    ids = tokenizer.convert_tokens_to_ids(words)
    assert record.method_config["init_token_ids"] == ids and record.method_config["init_text"] == init_text
    model = zoo.wrap(make_model("tiny-llama"), PromptTuningConfig(**record.method_config))
    table = model.model.get_input_embeddings().weight
    assert torch.equal(model.adapter_state_dict()["prompt.embedding"], table[(ids * 4)[:4]])


def test_prompt_tuning_text_init_without_a_task_says_what_to_give():
    cfg = PromptTuningConfig(init="text")
    with pytest.raises(ValueError, match=r"init='text' has no init_token_ids: give them .* or run through zoo"):
        zoo.wrap(make_model("tiny-llama"), cfg)


def test_bind_leaves_a_config_that_takes_nothing_from_the_task():
    cfg = zoo.get_method("lora").config()
    assert cfg.bind(TaskContext(["bad", "good"], [5, 6], None)) is cfg


@pytest.mark.parametrize(
    "spec,message",
    [
        (BaselineSpec("Few", "prompt"), "baseline name 'Few' is invalid"),
        (BaselineSpec("zero_shot", "prompt"), "baseline 'zero_shot' is already registered"),
        (BaselineSpec("probe2", "logits"), "formulation 'logits' is not one of prompt, head"),
        (BaselineSpec("probe2", "head"), "trains_head must say whether formulation 'head' trains a head"),
        (BaselineSpec("probe2", "prompt", trains_head=True), "trains_head must say whether formulation 'prompt' trains a head"),
        (BaselineSpec("probe2", "prompt", model_kinds=("seq2seq",)), "model_kinds \\('seq2seq',\\) must be a non-empty subset"),
    ],
)
def test_a_bad_baseline_is_refused_at_registration(spec, message):
    with pytest.raises(ValueError, match=message):
        register_baseline(spec)
    assert "probe2" not in list_baselines()


@pytest.mark.full  # the suite's tests sweep every baseline by name by default; here through Hydra's glob of the group
def test_every_registered_baseline_is_a_sweep_choice(tmp_path):
    """``baseline=glob(*)`` sweeps every registered baseline, as ``+sweep=all_methods`` does methods."""
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo.runner.run",
            "-m",
            "baseline=glob(*,exclude=in_context)",
            "trainer=smoke",
            "model.pretrain_steps=0",
            "task.n_train=16",
            "task.n_eval=8",
            "save_adapter=false",
            "predictions_cache=null",
            "trainer.progress=false",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    methods = {RunRecord.read(p).method for p in sweep.rglob("metrics.json")}
    assert methods == set(list_baselines()) - {"in_context"}


def test_a_record_of_the_wrong_types_is_refused_naming_each_field(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(
        json.dumps(record_dict(seed="0", trainable_percent=True, learning_rate=1))
    )  # a str, a bool for a float, an int for a float
    with pytest.raises(UnusableRecord, match=r"wrong type for seed \('0'\), trainable_percent \(True\)$"):
        RunRecord.read(path)
    path.write_text(json.dumps(record_dict(scores={"accuracy": 0.25, "macro_f1": 0.2})))
    assert RunRecord.read(path).scores["accuracy"] == RunRecord.read(path).objective == 0.25
