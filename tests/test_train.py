"""The training loop's guarantees: stop on a non-finite loss keeping the last good checkpoint."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import make_model

import zoo
from zoo.atomic import write_json
from zoo.train import NonFiniteLossError, TrainerConfig, make_accelerator, train


def _batches():
    g = torch.Generator().manual_seed(0)
    return [{"input_ids": torch.randint(4, 60, (4, 6), generator=g), "attention_mask": torch.ones(4, 6, dtype=torch.long)} for _ in range(3)]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        loss = m(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits.pow(2).mean()
        return loss * float("nan") if calls["n"] == 4 else loss

    cfg = TrainerConfig(max_steps=10, checkpoint_every=1, progress=False, device="cpu")
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 4; training stopped; the last good adapter \(step 3\)"):
        train(model, _batches(), loss_fn, cfg, make_accelerator(cfg), tmp_path)
    saved = json.loads((tmp_path / "checkpoint" / "adapter_config.json").read_text())
    assert saved["method"] == "lora"
    reloaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "checkpoint")
    assert all(torch.isfinite(t).all() for t in reloaded.adapter_state_dict().values())


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    seen = []

    def loss_fn(m, batch):
        seen.append(1)
        return m(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits.pow(2).mean()

    cfg = TrainerConfig(max_steps=2, gradient_accumulation_steps=3, checkpoint_every=0, progress=False, device="cpu")
    result = train(model, _batches(), loss_fn, cfg, make_accelerator(cfg), tmp_path)
    assert (result.steps, len(seen)) == (2, 6)


@pytest.mark.parametrize("field,value,match", [
    ("schedule", "exp", "schedule 'exp' is not one of"),
    ("device", "tpu", "device 'tpu' is not one of"),
    ("max_steps", 0, "max_steps must be at least 1, got 0"),
])
def test_trainer_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig(**{field: value})


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.5})

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("zoo.atomic.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"accuracy": 0.9})
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
