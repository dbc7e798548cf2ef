"""Bottleneck adapter: the exact formula, its placement, sizing and config errors.

peft has no bottleneck adapter, so the oracle is a hand computation of h + up(act(down(h)))
on the sub-layer output, checked per module and end to end through forward hooks.
"""

from __future__ import annotations

import pytest
import torch
from conftest import make_model
from contract_helpers import output
from torch.nn import functional as F
from transformers.pytorch_utils import Conv1D

import zoo
from zoo.inject import linear_shape
from zoo.methods.adapter import AdapterConfig, BottleneckAdapter
from zoo.models.arch import blocks, roles_of


def _randomise(model, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.adapter_state_dict().values():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


def _linear(module, x):
    """The frozen projection computed by hand from its weights."""
    weight = module.weight if isinstance(module, Conv1D) else module.weight.T  # (d_in, d_out)
    return x @ weight if module.bias is None else x @ weight + module.bias


def _adapters(model) -> dict[str, BottleneckAdapter]:
    return {n: m for n, m in model.named_modules() if isinstance(m, BottleneckAdapter)}


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_module_computes_h_plus_up_act_down_h(kind, activation, layer_norm):
    act = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}[activation]
    model = zoo.wrap(make_model(kind), "adapter", activation=activation, bottleneck_size=5, layer_norm=layer_norm)
    _randomise(model)
    module = next(iter(_adapters(model).values()))
    x = torch.randn(2, 3, linear_shape(module.base)[0])  # (B, T, d_in)
    h = _linear(module.base, x)
    z = F.layer_norm(h, h.shape[-1:], module.norm.weight, module.norm.bias, module.norm.eps) if layer_norm else h
    assert (module.norm is not None) == layer_norm
    expected = h + act(z @ module.down.weight.T + module.down.bias) @ module.up.weight.T + module.up.bias
    torch.testing.assert_close(module(x), expected, atol=1e-6, rtol=0)
    assert module.down.weight.shape == (5, h.shape[-1])


@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_whole_model_equals_base_with_adapters_hooked_on_sublayer_outputs(kind, batch, placement):
    """Placement: the wrapped model equals the base with the adapter applied to the output of
    attn_out (houlsby only) and ff_out, before the block's residual add."""
    wrapped = zoo.wrap(make_model(kind), "adapter", placement=placement, layer_norm=False)
    _randomise(wrapped)
    base = make_model(kind)
    arch = roles_of(base)
    roles = [arch.attn_out, arch.ff_out] if placement == "houlsby" else [arch.ff_out]
    adapters = _adapters(wrapped.model)
    for block_name, _ in blocks(base):
        for role in roles:
            adapter = adapters[f"{block_name}.{role}"]
            w_down, b_down, w_up, b_up = adapter.down.weight, adapter.down.bias, adapter.up.weight, adapter.up.bias
            base.get_submodule(f"{block_name}.{role}").register_forward_hook(
                lambda _m, _i, h, w_down=w_down, b_down=b_down, w_up=w_up, b_up=b_up: (
                    h + F.relu(h @ w_down.T + b_down) @ w_up.T + b_up
                )
            )
    with torch.no_grad():
        torch.testing.assert_close(output(wrapped, batch), output(base, batch), atol=1e-5, rtol=0)
        assert not torch.allclose(output(wrapped, batch), output(make_model(kind), batch), atol=1e-3)


def test_pfeiffer_places_half_as_many_adapters_as_houlsby(kind):
    houlsby = zoo.wrap(make_model(kind), "adapter", placement="houlsby")
    pfeiffer = zoo.wrap(make_model(kind), "adapter", placement="pfeiffer")
    arch = roles_of(make_model(kind))
    n_blocks = len(blocks(houlsby.model))
    assert len(_adapters(houlsby.model)) == 2 * n_blocks == 4
    assert len(_adapters(pfeiffer.model)) == n_blocks
    assert all(name.endswith(arch.ff_out) for name in _adapters(pfeiffer.model))
    assert zoo.count_parameters(houlsby)[0] == 2 * zoo.count_parameters(pfeiffer)[0]


def test_bottleneck_size_and_reduction_factor(kind):
    # width 64: the default reduction factor 16 gives a bottleneck of 4 -> LN (2*64) + (64*4 + 4) + (4*64 + 64) per adapter
    default = zoo.wrap(make_model(kind), "adapter")
    assert {m.down.out_features for m in _adapters(default.model).values()} == {4}
    assert zoo.count_parameters(default)[0] == 4 * (2 * 64 + 64 * 4 + 4 + 4 * 64 + 64)
    by_factor = zoo.wrap(make_model(kind), "adapter", reduction_factor=8)
    assert {m.down.out_features for m in _adapters(by_factor.model).values()} == {8}
    # bottleneck_size takes precedence over reduction_factor (which keeps its default here)
    by_size = zoo.wrap(make_model(kind), "adapter", bottleneck_size=3, reduction_factor=2)
    assert {m.down.out_features for m in _adapters(by_size.model).values()} == {3}


def test_up_projection_gets_a_gradient_at_init():
    model = zoo.wrap(make_model("tiny-llama"), "adapter")
    ids = torch.randint(4, 60, (2, 5), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids).logits.pow(2).mean().backward()
    module = next(iter(_adapters(model.model).values()))
    assert module.up.weight.grad.abs().max() > 0
    assert module.down.weight.grad.abs().max() == 0  # up is zero, so nothing flows back yet


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(bottleneck_size=0), "bottleneck_size must be a positive integer"),
        (dict(bottleneck_size=-2), "bottleneck_size must be a positive integer"),
        (dict(bottleneck_size=2.5), "bottleneck_size must be an int or None, got 2.5"),
        (dict(reduction_factor=0), "reduction_factor must be a positive number"),
        (dict(reduction_factor=-4.0), "reduction_factor must be a positive number"),
        (dict(bottleneck_size=None, reduction_factor=None), "set bottleneck_size .* or reduction_factor"),
        (dict(activation="swish"), "activation 'swish' is unknown; valid: \\['gelu', 'relu', 'silu', 'tanh'\\]"),
        (dict(placement="after_attention"), "placement 'after_attention' is unknown; valid: \\['houlsby', 'pfeiffer'\\]"),
    ],
)
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        AdapterConfig(**overrides)


def test_reduction_factor_wider_than_the_model_is_refused():
    with pytest.raises(ValueError, match="leaves a bottleneck of 0; use a factor <= 64"):
        zoo.wrap(make_model("tiny-gpt2"), "adapter", reduction_factor=200.0)
