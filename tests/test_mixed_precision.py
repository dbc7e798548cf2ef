"""``trainer.mixed_precision``: bf16 autocasts on CPU too, fp16 is refused where accelerate would silently train in float32."""

from __future__ import annotations

import pytest
import torch
from accelerate.state import AcceleratorState
from conftest import make_model
from train_helpers import train_adapter

import zoo
from zoo.training.loop import TrainerConfig, make_accelerator


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps one process-wide state that refuses a second mixed precision: start and leave it unset."""
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def _batches():
    g = torch.Generator().manual_seed(0)
    return [
        {"input_ids": torch.randint(4, 60, (4, 6), generator=g), "attention_mask": torch.ones(4, 6, dtype=torch.long)}
        for _ in range(2)
    ]


def _squared_logits(m, batch):
    return m(**batch).logits.float().pow(2).mean()


def _trained(precision: str, tmp_path) -> tuple[zoo.ZooModel, set[torch.dtype], float]:
    """A LoRA-wrapped tiny Llama after 3 steps at ``precision``, the dtypes its query projection computed in, its last loss."""
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    seen: set[torch.dtype] = set()
    model.model.model.layers[0].self_attn.q_proj.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
    cfg = TrainerConfig(max_steps=3, checkpoint_every=0, progress=False, device="cpu", mixed_precision=precision)
    result = train_adapter(model, _batches(), _squared_logits, cfg, tmp_path)
    AcceleratorState._reset_state(True)
    return model, seen, result.final_loss


def test_bf16_autocasts_on_cpu_and_keeps_float32_weights(tmp_path):
    start = zoo.wrap(make_model("tiny-llama"), "lora").adapter_state_dict()
    model, seen, loss = _trained("bf16", tmp_path / "bf16")
    _, seen_fp32, loss_fp32 = _trained("no", tmp_path / "no")
    assert seen == {torch.bfloat16} and seen_fp32 == {torch.float32}
    trained = model.adapter_state_dict()
    assert all(t.dtype == torch.float32 for t in trained.values())  # autocast computes in bf16; the weights stay float32
    assert any(not torch.equal(trained[n], start[n]) for n in trained)
    assert loss != loss_fp32 and loss == pytest.approx(loss_fp32, rel=0.05)  # bf16 rounding, not another computation


def test_unknown_mixed_precision_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"mixed_precision 'fp8' is not one of \('no', 'fp16', 'bf16'\)"):
        TrainerConfig(mixed_precision="fp8")


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_fp16_on_cpu_is_refused(device, monkeypatch):
    """accelerate accepts fp16 on CPU and then trains in float32 (no autocast): zoo says so instead."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ValueError, match=r"trainer.mixed_precision='fp16' needs a CUDA device.*use trainer.mixed_precision=bf16 or no"
    ):
        make_accelerator(TrainerConfig(device=device, mixed_precision="fp16"))
