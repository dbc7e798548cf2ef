"""A method that declares its optimiser (``zoo.OptimizerRecipe``): the registry checks the declaration, the trainer builds
what it declares (its groups checked to hold exactly the parameters that train), a run records the optimiser, its groups
and its state's memory. Two processes: tests/test_distributed.py."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch
from app_config import app_config
from conftest import make_model

import zoo
from zoo import registry
from zoo.io.records import RunRecord
from zoo.methods.lora import LoRAConfig, LoRALinear, wrap_lora
from zoo.runner.run import run
from zoo.training.optimizer import method_groups


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))


@dataclass
class ToyConfig(LoRAConfig):
    pass


def _cfg(tmp_path, *overrides: str):
    return app_config(
        "trainer=smoke",
        "task.n_train=32",
        "task.n_eval=24",
        "save_adapter=false",
        "latency=false",
        "forgetting.text=none",
        f"predictions_cache={tmp_path / 'cache'}",
        *overrides,
    )


def test_register_refuses_what_is_not_a_recipe_and_a_recipe_on_a_gradient_free_method(clean_registry):
    with pytest.raises(
        TypeError,
        match=r"optimizer for method 'toy' must be a zoo.OptimizerRecipe \(groups, optimizer\) or None, "
        r"got <class 'torch.optim.sgd.SGD'>",
    ):
        zoo.register("toy", config=ToyConfig, optimizer=torch.optim.SGD)
    with pytest.raises(ValueError, match="method 'toy' is gradient_free .* it cannot declare an optimizer"):
        zoo.register("toy", config=ToyConfig, gradient_free=True, optimizer=zoo.OptimizerRecipe())
    assert "toy" not in zoo.list_methods()


@pytest.mark.parametrize(
    "groups,message",
    [
        (
            lambda model, cfg, lr: [{"params": [m.lora_A for m in model.modules() if isinstance(m, LoRALinear)], "lr": lr}],
            r"left out: \['model.layers.0.self_attn.q_proj.lora_B', ",
        ),
        (
            lambda model, cfg, lr: [
                {"params": [p for p in model.parameters() if p.requires_grad], "lr": lr},
                {"params": [next(m.lora_B for m in model.modules() if isinstance(m, LoRALinear))], "lr": lr},
            ],
            r"twice: \['model.layers.0.self_attn.q_proj.lora_B'\]",
        ),
        (
            lambda model, cfg, lr: [
                {"params": [p for p in model.parameters() if p.requires_grad] + [model.lm_head.weight], "lr": lr}
            ],
            r"not trainable: \['lm_head.weight'\]",
        ),
    ],
)
def test_groups_that_are_not_exactly_the_trainable_parameters_are_refused_naming_them(clean_registry, groups, message):
    zoo.register("toy", config=ToyConfig, optimizer=zoo.OptimizerRecipe(groups=groups))(wrap_lora)
    model = zoo.wrap(make_model("tiny-llama"), "toy")
    with pytest.raises(
        ValueError, match=r"method 'toy''s optimizer groups must hold each of its trainable parameters once; .*" + message
    ):
        method_groups(model, 1e-3)


def test_a_plugin_s_optimizer_class_is_what_its_run_trains_with_and_what_its_record_says(tmp_path, clean_registry, monkeypatch):
    built = []

    def sgd(groups, weight_decay):
        built.append([{k: v for k, v in g.items() if k != "params"} for g in groups])
        return torch.optim.SGD(groups, weight_decay=weight_decay, momentum=0.9)

    zoo.register("toy", config=ToyConfig, learning_rate=0.05, optimizer=zoo.OptimizerRecipe(optimizer=sgd))(wrap_lora)
    record = run(_cfg(tmp_path, "method=toy", "trainer.weight_decay=0.01"), tmp_path)
    assert built == [[{"lr": 0.05}]]
    trainable = record.trainable_params
    assert record.optimizer["name"] == "torch.optim.sgd.SGD"
    assert record.optimizer["groups"] == [{"tensors": 8, "parameters": trainable, "lr": 0.05, "weight_decay": 0.01}]
    assert record.optimizer["state_bytes"] == 4 * trainable  # SGD's momentum buffers, float32
    assert record.optimizer["adamw_state_bytes"] == 8 * trainable + 4 * 8  # AdamW: two moments and a step per tensor


def test_a_lora_plus_run_trains_b_at_lr_ratio_times_a_s_rate_and_records_both(tmp_path, monkeypatch):
    seen, init = [], torch.optim.AdamW.__init__

    def spy(self, params, *args, **kwargs):
        params = list(params)
        seen.append([(len(group["params"]), group["lr"]) for group in params])
        init(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "__init__", spy)
    record = run(_cfg(tmp_path, "method=lora_plus", "method.lr_ratio=8", "trainer.learning_rate=2e-3"), tmp_path)
    assert seen == [[(4, 2e-3), (4, 8 * 2e-3)]]  # A of q and v in both blocks, then their B
    assert record.learning_rate == 2e-3
    assert [(g["tensors"], g["lr"]) for g in record.optimizer["groups"]] == [(4, 2e-3), (4, 8 * 2e-3)]
    assert record.optimizer["state_bytes"] == 8 * record.trainable_params + 4 * 8 and "adamw_state_bytes" not in record.optimizer


def test_a_galore_run_records_its_state_smaller_than_adamw_s_measured_in_the_same_run(tmp_path):
    record = run(_cfg(tmp_path, "method=galore"), tmp_path)
    optimizer = record.optimizer
    assert optimizer["name"] == "galore_torch.adamw.AdamW"
    assert optimizer["groups"][1]["rank"] == 4 and "rank" not in optimizer["groups"][0]
    assert optimizer["adamw_state_bytes"] == 8 * record.trainable_params + 4 * sum(g["tensors"] for g in optimizer["groups"])
    assert 0 < optimizer["state_bytes"] < optimizer["adamw_state_bytes"]
    saved = json.loads((tmp_path / "metrics.json").read_text())["optimizer"]
    assert saved == optimizer


def test_a_record_without_an_optimizer_reads_as_none(tmp_path):
    record = run(_cfg(tmp_path, "baseline=zero_shot"), tmp_path)
    assert record.optimizer is None
    data = dataclasses.asdict(record)
    del data["optimizer"]  # a record of an earlier zoo
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert RunRecord.read(tmp_path / "old.json").optimizer is None
