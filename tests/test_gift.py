"""GIFT: the formula against explicit weight matrices, sharing, merging and the clustering head.

No peft implementation of GIFT exists: the oracle is a hand computation,
y = (x + x·φ·ψ)·Wᵀ + b = F.linear(x, W·(I + φψ)ᵀ, b), at float32 tolerance atol 1e-5.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import WORDS, make_model
from contract_helpers import perturb
from transformers.pytorch_utils import Conv1D

import zoo
from zoo.methods.gift import GIFTLinear, GIFTTheta, gift_clusters
from zoo.models.tiny import tiny_model

ATOL = 1e-5


def _thetas(model) -> dict[str, GIFTTheta]:
    return dict(model.model.gift_thetas.items())


def _layers(model) -> dict[str, GIFTLinear]:
    return {n: m for n, m in model.model.named_modules() if isinstance(m, GIFTLinear)}


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_layer_output_is_the_hand_formula(kind):
    model = zoo.wrap(make_model(kind), "gift")
    perturb(model)
    layer = next(iter(_layers(model).values()))
    phi, psi = layer.theta.phi.detach(), layer.theta.psi.detach()
    w = layer.base.weight.detach()
    w = w.T if isinstance(layer.base, Conv1D) else w  # (d_out, d_in)
    x = torch.randn(2, 5, w.shape[1])
    expected = F.linear(x + x @ phi @ psi, w, layer.base.bias)
    torch.testing.assert_close(layer(x), expected, atol=ATOL, rtol=0)
    d_in = w.shape[1]
    torch.testing.assert_close(layer(x), F.linear(x, w @ (torch.eye(d_in) + phi @ psi).T, layer.base.bias), atol=ATOL, rtol=0)
    assert (layer(x) - layer.base(x)).abs().max() > 1e-2, "the perturbed adapter must change the output"


def test_whole_model_equals_explicitly_modified_weights(batch):
    """The wrapped model equals the base model with every q/v weight replaced by W·(I + φψ)ᵀ."""
    model = zoo.wrap(make_model("tiny-llama"), "gift", share="per_type")
    perturb(model)
    reference = make_model("tiny-llama")
    with torch.no_grad():
        for name, layer in _layers(model).items():
            theta = layer.theta
            target = reference.get_submodule(name)
            target.weight.copy_(target.weight @ (torch.eye(64) + theta.phi @ theta.psi).T)
    torch.testing.assert_close(model(**batch).logits, reference(**batch).logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2", "tiny-bert"])
def test_trainable_count_does_not_grow_with_depth(kind):
    vocab = len(WORDS) + 4
    counts = [zoo.count_parameters(zoo.wrap(tiny_model(kind, vocab, layers=n), "gift"))[0] for n in (2, 4)]
    assert counts[0] == counts[1] == 2 * 64 * 8


@pytest.mark.parametrize("kind, per_type", [("tiny-llama", 2), ("tiny-gpt2", 1), ("tiny-bert", 2)])
def test_shared_vs_per_type_counts(kind, per_type):
    shared = zoo.wrap(make_model(kind), "gift", share="all")
    typed = zoo.wrap(make_model(kind), "gift", share="per_type")
    assert zoo.count_parameters(shared)[0] == 2 * 64 * 8
    assert zoo.count_parameters(typed)[0] == per_type * 2 * 64 * 8
    assert set(_thetas(shared)) == {"all_d64"}
    if kind == "tiny-llama":
        assert set(_thetas(typed)) == {"q_proj_d64", "v_proj_d64"}
        for name, layer in _layers(typed).items():
            assert layer.theta is _thetas(typed)[name.rsplit(".", 1)[-1] + "_d64"]


def test_shared_parameters_are_stored_once():
    model = zoo.wrap(make_model("tiny-llama"), "gift")
    state = model.adapter_state_dict()
    assert set(state) == {"gift_thetas.all_d64.phi", "gift_thetas.all_d64.psi"}
    full = model.model.state_dict()
    assert [k for k in full if k.endswith((".phi", ".psi"))] == ["gift_thetas.all_d64.phi", "gift_thetas.all_d64.psi"]
    layers = list(_layers(model).values())
    assert len(layers) == 4 and all(layer.theta is layers[0].theta for layer in layers)
    assert sum(1 for _, m in model.named_modules() if isinstance(m, GIFTTheta)) == 1


def test_different_input_widths_get_one_theta_each():
    model = zoo.wrap(make_model("tiny-llama"), "gift", target_modules=["q_proj", "down_proj"], r=4)
    thetas = _thetas(model)
    assert set(thetas) == {"all_d64", "all_d128"}
    assert thetas["all_d128"].phi.shape == (128, 4) and thetas["all_d128"].psi.shape == (4, 128)
    assert zoo.count_parameters(model)[0] == 2 * 4 * (64 + 128)


def test_identity_at_init_and_gradients_reach_both_factors():
    model = zoo.wrap(make_model("tiny-bert"), "gift")
    theta = _thetas(model)["all_d64"]
    assert torch.count_nonzero(theta.psi) == 0 and torch.count_nonzero(theta.phi) == theta.phi.numel()
    perturb(model)
    ids = torch.randint(4, len(WORDS) + 4, (2, 6), generator=torch.Generator().manual_seed(0))
    probe = torch.randn(64, generator=torch.Generator().manual_seed(1))
    # A projection, not a squared norm: the final LayerNorm makes ‖h‖² constant.
    (model(input_ids=ids).last_hidden_state @ probe).sum().backward()
    assert theta.phi.grad.abs().max() > 1e-4 and theta.psi.grad.abs().max() > 1e-4


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_merge_folds_the_formula_and_unmerge_restores(kind, batch):
    model = zoo.wrap(make_model(kind), "gift", share="per_type")
    perturb(model)
    model.eval()
    base_weights = {n: layer.base.weight.detach().clone() for n, layer in _layers(model).items()}
    unmerged = model(**batch).logits
    zoo.merge(model)
    for name, layer in _layers(model).items():
        phi, psi, w0 = layer.theta.phi.detach(), layer.theta.psi.detach(), base_weights[name]
        eye = torch.eye(phi.shape[0])
        expected = (eye + phi @ psi) @ w0 if isinstance(layer.base, Conv1D) else w0 @ (eye + phi @ psi).T
        torch.testing.assert_close(layer.base.weight, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(model(**batch).logits, unmerged, atol=1e-5, rtol=1e-4)
    zoo.unmerge(model)
    for name, layer in _layers(model).items():
        torch.testing.assert_close(layer.base.weight, base_weights[name], atol=1e-6, rtol=0)


def test_clusters_match_the_captured_layer_input(batch):
    model = zoo.wrap(make_model("tiny-llama"), "gift", r=4)
    perturb(model)
    name = "model.layers.1.self_attn.v_proj"
    layer = model.model.get_submodule(name)
    seen = []
    handle = layer.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        model(**batch)
    handle.remove()
    x_in = seen[0]  # (3, 7, 64)
    projection, assignment = gift_clusters(model, batch["input_ids"], batch["attention_mask"], layer=name)
    assert projection.shape == (3, 7, 4) and assignment.shape == (3, 7)
    torch.testing.assert_close(projection, x_in @ layer.theta.phi.detach(), atol=ATOL, rtol=0)
    real = batch["attention_mask"].bool()
    assert torch.equal(assignment[real], projection.argmax(-1)[real])
    assert (assignment[~real] == -1).all() and (assignment[real] >= 0).all()
    by_index, _ = gift_clusters(model, batch["input_ids"], batch["attention_mask"], layer=3)
    torch.testing.assert_close(by_index, projection, atol=0, rtol=0)
    other, _ = gift_clusters(model, batch["input_ids"], batch["attention_mask"], layer="layers.0.self_attn.q_proj")
    assert (other - projection).abs().max() > 1e-3


def test_clusters_errors(batch):
    model = zoo.wrap(make_model("tiny-llama"), "gift")
    with pytest.raises(ValueError, match="matches 2 GIFT layers"):
        gift_clusters(model, batch["input_ids"], layer="q_proj")
    with pytest.raises(IndexError, match="out of range"):
        gift_clusters(model, batch["input_ids"], layer=4)
    with pytest.raises(ValueError, match="no GIFT layer"):
        gift_clusters(make_model("tiny-llama"), batch["input_ids"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"r": 0}, "r must be a positive integer"),
        ({"share": "per_layer"}, "share must be one of"),
        ({"target_modules": []}, "target_modules is empty"),
        ({"target_modules": ["nope"]}, "matched no"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.wrap(make_model("tiny-llama"), "gift", **overrides)
