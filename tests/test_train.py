"""The training loop's guarantees: stop on a non-finite loss keeping the last good checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_model
from train_helpers import train_adapter

import zoo
from zoo.runtime.atomic import write_json
from zoo.training.loop import NonFiniteLossError, TrainerConfig, make_accelerator, train


def _batches():
    g = torch.Generator().manual_seed(0)
    return [
        {"input_ids": torch.randint(4, 60, (4, 6), generator=g), "attention_mask": torch.ones(4, 6, dtype=torch.long)}
        for _ in range(3)
    ]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += torch.is_grad_enabled()  # training calls only, not a checkpoint's check of the weights
        loss = m(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits.pow(2).mean()
        return loss * float("nan") if calls["n"] == 4 else loss

    cfg = TrainerConfig(max_steps=10, checkpoint_every=1, progress=False, device="cpu")
    with pytest.raises(
        NonFiniteLossError,
        match=r"loss became nan at step 4; training stopped; the last good checkpoint \(step 3\) is in .*checkpoint",
    ):
        train_adapter(model, _batches(), loss_fn, cfg, tmp_path)
    saved = json.loads((tmp_path / "checkpoint" / "adapter_config.json").read_text())
    assert saved["method"] == "lora"
    reloaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "checkpoint")
    assert all(torch.isfinite(t).all() for t in reloaded.adapter_state_dict().values())


@pytest.mark.parametrize("accumulation", [1, 3])
def test_gradient_accumulation_steps_the_optimizer_once_per_step(tmp_path, monkeypatch, accumulation):
    """Counted on the optimizer itself: accumulating batches must not step it per batch, nor skip it."""
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    before = {name: t.clone() for name, t in model.adapter_state_dict().items()}
    adamw_step, stepped = torch.optim.AdamW.step, []

    def counted(self, *args, **kwargs):
        stepped.append(1)
        return adamw_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    cfg = TrainerConfig(max_steps=2, gradient_accumulation_steps=accumulation, checkpoint_every=0, progress=False, device="cpu")
    result = train_adapter(model, _batches(), _squared_logits, cfg, tmp_path)
    assert (result.steps, len(stepped)) == (2, 2)
    assert any(not torch.equal(before[name], t) for name, t in model.adapter_state_dict().items())


def test_train_trains_exactly_its_parameter_groups_at_their_rates(tmp_path):
    """The loop knows no head: a second group (here the LM head) trains at its own rate, nothing else moves."""
    model = make_model("tiny-llama")
    zoo.inject.freeze(model)
    head = model.get_output_embeddings().weight
    head.requires_grad_(True)
    frozen = {n: p.clone() for n, p in model.named_parameters() if p is not head}
    start = head.detach().clone()
    cfg = TrainerConfig(
        max_steps=1,
        warmup_ratio=0.0,
        schedule="constant_with_warmup",
        checkpoint_every=0,
        progress=False,
        device="cpu",
        max_grad_norm=0.0,
    )
    train(model, [{"params": [head], "lr": 1e-3}], _batches(), _squared_logits, cfg, make_accelerator(cfg))
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if p is not head)
    assert torch.allclose((head - start).abs().max(), torch.tensor(1e-3), rtol=1e-3)  # Adam's first step moves each weight by lr


def test_train_refuses_groups_without_parameters_or_a_rate(tmp_path):
    cfg = TrainerConfig(max_steps=1, progress=False, device="cpu")
    model = make_model("tiny-llama")
    with pytest.raises(ValueError, match=r"nothing to train: give parameter groups with parameters and an lr each, got \[\]"):
        train(model, [], _batches(), _squared_logits, cfg, make_accelerator(cfg))
    with pytest.raises(ValueError, match=r"got \[\{'params': 1, 'lr': None\}\]"):
        train(
            model, [{"params": [next(model.parameters())], "lr": None}], _batches(), _squared_logits, cfg, make_accelerator(cfg)
        )


def _squared_logits(m, batch):
    return m(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits.pow(2).mean()


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("schedule", "exp", "schedule 'exp' is not one of"),
        ("device", "tpu", "device 'tpu' is not one of"),
        ("max_steps", 0, "max_steps must be at least 1, got 0"),
    ],
)
def test_trainer_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig(**{field: value})


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.5})

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("zoo.runtime.atomic.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"accuracy": 0.9})
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
