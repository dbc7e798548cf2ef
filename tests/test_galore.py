"""GaLore: full fine-tuning stepped by galore-torch's GaLoreAdamW on the block matrices, and the optimiser-state memory
the run records against AdamW's."""

from __future__ import annotations

import sys

import galore_torch
import pytest
import torch
from conftest import make_model
from contract_helpers import output

import zoo
from zoo.inject import LINEAR_TYPES
from zoo.models.arch import blocks
from zoo.training.optimizer import build_optimizer, method_groups, optimizer_of
from zoo.training.optimizer_state import adamw_state_bytes, state_bytes


def _stepped(kind: str = "tiny-llama", **config):
    """A galore-wrapped tiny model, the optimiser a run builds for it, after one step on one batch."""
    model = zoo.wrap(make_model(kind), "galore", **config)
    run = build_optimizer(method_groups(model, 1e-3), optimizer_of(model.spec), 0.0)
    out = output(model.eval(), {"input_ids": torch.tensor([[5, 9, 12, 7, 30], [8, 8, 21, 40, 6]])})
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
    run.optimizer.step()
    return model, run


def _block_weight_deltas(model: zoo.ZooModel) -> set[int]:
    return {
        id(m.parametrizations.weight[0].delta)
        for _, block in blocks(model.model)
        for m in block.modules()
        if isinstance(m, LINEAR_TYPES)
    }


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2", "tiny-bert"])
def test_block_matrices_are_projected_and_every_other_parameter_steps_as_adamw(kind):
    model, run = _stepped(kind)
    plain, projected = run.optimizer.param_groups
    assert isinstance(run.optimizer, galore_torch.GaLoreAdamW)
    assert {id(p) for p in projected["params"]} == _block_weight_deltas(model) and "rank" not in plain
    assert (projected["rank"], projected["update_proj_gap"], projected["scale"], projected["proj_type"]) == (4, 500, 4.0, "std")
    assert all(p.ndim == 2 for p in projected["params"])
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in plain["params"]} == trainable - _block_weight_deltas(model)
    for p in projected["params"]:  # the moments live in the rank-4 subspace: (m, 4) or (4, n)
        assert 4 in run.optimizer.state[p]["exp_avg"].shape and run.optimizer.state[p]["exp_avg"].numel() < p.numel()
    for p in plain["params"]:
        assert run.optimizer.state[p]["exp_avg"].shape == p.shape


def test_the_recorded_state_is_the_sum_of_its_tensors_and_smaller_than_adamw_s():
    model, run = _stepped()
    figures = run.record()
    by_hand = 0
    for state in run.optimizer.state.values():  # the moments, and the projection matrix's storage (a slice of the SVD's factor)
        tensors = [state["exp_avg"], state["exp_avg_sq"], *([state["projector"].ortho_matrix] if "projector" in state else [])]
        by_hand += sum(t.untyped_storage().nbytes() for t in tensors)
    assert figures["state_bytes"] == by_hand
    params = [p for p in model.parameters() if p.requires_grad]
    assert figures["adamw_state_bytes"] == sum(2 * p.numel() * p.element_size() + 4 for p in params)  # two moments, a step
    assert figures["state_bytes"] < figures["adamw_state_bytes"]
    assert figures["name"] == "galore_torch.adamw.AdamW"
    assert [(g["tensors"], g.get("rank")) for g in figures["groups"]] == [
        (len(run.optimizer.param_groups[0]["params"]), None),
        (len(_block_weight_deltas(model)), 4),
    ]


def test_state_bytes_counts_each_storage_once_and_looks_inside_objects():
    class Holder:
        def __init__(self, matrix):
            self.matrix = matrix

    factor = torch.zeros(6, 6)
    state = {0: {"m": torch.zeros(3, 2), "slice": factor[:2], "holder": Holder(factor[2:]), "step": 4}}
    assert state_bytes(state) == 3 * 2 * 4 + 6 * 6 * 4  # the factor's storage once, whole


def test_adamw_reference_leaves_the_parameters_and_gradients_as_they_were():
    p = torch.nn.Parameter(torch.randn(4, 3))
    p.grad = torch.randn(4, 3)
    before, grad = p.detach().clone(), p.grad.clone()
    assert adamw_state_bytes([p, torch.nn.Parameter(torch.ones(2))]) == 2 * 12 * 4 + 4  # the one without a gradient: none
    assert torch.equal(p, before) and torch.equal(p.grad, grad)


def test_galore_is_full_fine_tuning_at_init_and_trains_every_weight():
    model, run = _stepped()
    deltas = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in deltas) == sum(p.numel() for p in make_model("tiny-llama").parameters())
    assert all(p.abs().max() > 0 for p in deltas if p.grad is not None and p.grad.abs().max() > 0)


def test_a_missing_galore_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "galore_torch", None)
    model = zoo.wrap(make_model("tiny-llama"), "galore")
    with pytest.raises(
        ImportError, match=r"galore-torch's GaLoreAdamW, which could not be imported .*pip install 'zoo-peft\[galore\]'"
    ):
        optimizer_of(model.spec)(method_groups(model, 1e-3), weight_decay=0.0)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("rank", 0, "rank must be a positive integer, got 0"),
        ("update_proj_gap", 2.5, "update_proj_gap must be an int, got 2.5"),
        ("scale", -1.0, r"scale must be a number above 0 \(the paper's α\), got -1.0"),
        ("proj_type", "diagonal", r"proj_type 'diagonal' is not one of \('std', 'reverse_std', 'right', 'left', 'full'\)"),
    ],
)
def test_the_config_is_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        zoo.wrap(make_model("tiny-llama"), "galore", **{field: value})
