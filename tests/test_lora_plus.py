"""LoRA+ against peft's own optimiser (``peft.optimizers.create_loraplus_optimizer``) on the same model: the same
parameter groups, learning rates and weight decays, and the same parameters after three steps on the same batches."""

from __future__ import annotations

import copy

import peft
import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb
from peft.optimizers import create_loraplus_optimizer

import zoo
from zoo.methods.lora import LoRALinear
from zoo.training.optimizer import build_optimizer, method_groups, optimizer_of

TARGETS = {"tiny-llama": ["q_proj", "v_proj"], "tiny-gpt2": ["c_attn"]}
LR, WEIGHT_DECAY = 3e-3, 0.05


def _pair(kind: str, lr_ratio: float) -> tuple[zoo.ZooModel, peft.PeftModel]:
    """zoo's LoRA+ and peft's LoRA on copies of one tiny model, their factors equal (B moved off zero, so A has gradients)."""
    base = make_model(kind)
    ours = zoo.wrap(copy.deepcopy(base), "lora_plus", r=4, alpha=8.0, target_modules=TARGETS[kind], lr_ratio=lr_ratio)
    perturb(ours)
    theirs = peft.get_peft_model(
        base,
        peft.LoraConfig(r=4, lora_alpha=8.0, target_modules=TARGETS[kind], lora_dropout=0.0, fan_in_fan_out=kind == "tiny-gpt2"),
    )
    with torch.no_grad():
        for name, module in ours.model.named_modules():
            if isinstance(module, LoRALinear):
                target = theirs.base_model.model.get_submodule(name)
                target.lora_A["default"].weight.copy_(module.lora_A)
                target.lora_B["default"].weight.copy_(module.lora_B)
    return ours, theirs


def _zoo_names(model: zoo.ZooModel) -> dict[int, str]:
    return {id(p): name for name, p in model.model.named_parameters()}


def _peft_names(model: peft.PeftModel) -> dict[int, str]:
    """peft's parameter names as zoo's: ``base_model.model.<module>.lora_A.default.weight`` -> ``<module>.lora_A``."""
    return {id(p): name.removeprefix("base_model.model.").replace(".default.weight", "") for name, p in model.named_parameters()}


def _groups(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> list[tuple[list[str], float, float]]:
    """Each non-empty group's parameter names, rate and weight decay, in the optimiser's order."""
    return [
        (sorted(names[id(p)] for p in g["params"]), g["lr"], g["weight_decay"]) for g in optimizer.param_groups if g["params"]
    ]


def _zoo_optimizer(model: zoo.ZooModel) -> torch.optim.Optimizer:
    """The optimiser a zoo run builds for ``model`` (zoo.runner.pipeline.learner, zoo.training.loop)."""
    return build_optimizer(method_groups(model, LR), optimizer_of(model.spec), WEIGHT_DECAY).optimizer


@pytest.mark.parametrize("kind", list(TARGETS))
def test_the_groups_rates_and_weight_decays_are_peft_s(kind):
    ours, theirs = _pair(kind, lr_ratio=16.0)
    mine = _groups(_zoo_optimizer(ours), _zoo_names(ours))
    reference = create_loraplus_optimizer(
        theirs, torch.optim.AdamW, lr=LR, loraplus_lr_ratio=16.0, loraplus_weight_decay=WEIGHT_DECAY
    )
    assert mine == _groups(reference, _peft_names(theirs))
    layers = 2 * len(TARGETS[kind])  # two blocks
    assert [len(names) for names, _, _ in mine] == [layers, layers]
    assert all(name.endswith("lora_A") for name in mine[0][0]) and all(name.endswith("lora_B") for name in mine[1][0])
    assert [lr for _, lr, _ in mine] == [LR, 16 * LR] and {wd for _, _, wd in mine} == {WEIGHT_DECAY}


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("lr_ratio", [16.0, 4.0])
def test_three_steps_on_the_same_batches_reach_peft_s_parameters(kind, lr_ratio):
    ours, theirs = _pair(kind, lr_ratio)
    mine = _zoo_optimizer(ours)
    reference = create_loraplus_optimizer(
        theirs, torch.optim.AdamW, lr=LR, loraplus_lr_ratio=lr_ratio, loraplus_weight_decay=WEIGHT_DECAY
    )
    start = {name: p.detach().clone() for name, p in ours.model.named_parameters() if p.requires_grad}
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        batch = {"input_ids": torch.randint(4, 60, (3, 7), generator=g), "attention_mask": torch.ones(3, 7, dtype=torch.long)}
        probe = torch.randn(3, 7, output(ours, batch).shape[-1], generator=g)
        for model, optimizer in ((ours.eval(), mine), (theirs.eval(), reference)):  # eval: GPT-2's dropout would draw apart
            (output(model, batch) * probe).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    theirs_by_name = {_peft_names(theirs)[id(p)]: p for p in theirs.parameters() if p.requires_grad}
    for name, p in ours.model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p, theirs_by_name[name], atol=1e-6, rtol=1e-5, msg=name)
            assert not torch.equal(p, start[name]), f"{name} did not move: the comparison would be vacuous"


def test_b_moves_lr_ratio_times_as_far_as_with_plain_lora_on_the_first_step():
    """AdamW's first step moves each parameter by about its rate (the sign of its gradient): B at λ·η, A at η."""
    steps = {}
    for method, extra in (("lora", {}), ("lora_plus", {"lr_ratio": 16.0})):
        model = zoo.wrap(make_model("tiny-llama"), method, **extra)
        perturb(model)
        start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        optimizer = build_optimizer(method_groups(model, LR), optimizer_of(model.spec), 0.0).optimizer
        output(model.train(), {"input_ids": torch.tensor([[5, 9, 12, 7]])}).pow(2).mean().backward()
        optimizer.step()
        steps[method] = {n: (p - start[n]).abs().max().item() for n, p in model.named_parameters() if p.requires_grad}
    for name, moved in steps["lora_plus"].items():
        ratio = 16.0 if name.endswith("lora_B") else 1.0
        assert moved == pytest.approx(ratio * steps["lora"][name], rel=1e-3), name


def test_lr_ratio_is_validated():
    for bad in (0, -2.0):
        with pytest.raises(ValueError, match=r"lr_ratio must be a finite number above 0 .*got"):
            zoo.wrap(make_model("tiny-llama"), "lora_plus", lr_ratio=bad)
    for bad in (float("inf"), float("nan"), True, "16"):  # the type check every field has (zoo.runtime.typed_fields) comes first
        with pytest.raises(ValueError, match=r"lr_ratio must be a finite float, got"):
            zoo.wrap(make_model("tiny-llama"), "lora_plus", lr_ratio=bad)


def test_a_lora_plus_adapter_saves_loads_and_exports_as_lora(batch, tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora_plus", lr_ratio=8.0)
    perturb(model)
    zoo.save_adapter(model, tmp_path / "zoo")
    loaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "zoo")
    assert loaded.method == "lora_plus" and loaded.method_config.lr_ratio == 8.0
    zoo.export_peft(model, tmp_path / "peft")
    in_peft = peft.PeftModel.from_pretrained(make_model("tiny-llama"), tmp_path / "peft")
    torch.testing.assert_close(output(in_peft.eval(), batch), output(model.eval(), batch), atol=1e-6, rtol=0)
