"""IA3: the scaling formula, placement by role, merge/unmerge, and peft as an oracle.

peft comparisons copy the same random vectors into both models and compare logits with
atol 1e-5 (rtol 0): the computations are the same products in a different order.
"""

from __future__ import annotations

import copy

import peft
import pytest
import torch
from attention_capture import CAPTURED, captured_first, capturing
from conftest import make_model
from contract_helpers import output

import zoo
from zoo.methods.ia3 import IA3Config, IA3Linear
from zoo.models.arch import blocks, roles_of
from zoo.models.tiny import TINY_FAMILIES

ATOL = 1e-5


def _randomise(model, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.adapter_state_dict().values():
            p.copy_(1 + 0.5 * torch.randn(p.shape, generator=g))


def _ia3_modules(model) -> dict[str, IA3Linear]:
    return {n: m for n, m in model.model.named_modules() if isinstance(m, IA3Linear)}


def _base_weights(model) -> dict[str, torch.Tensor]:
    """The frozen weights of a wrapped model, named as in the base model."""
    return {n.replace(".base.", "."): p for n, p in model.model.named_parameters() if not p.requires_grad}


def _peft_vector(peft_model, name: str) -> torch.Tensor:
    return peft_model.get_submodule(f"base_model.model.{name}").ia3_l["default"]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("tiny-llama", {"self_attn.k_proj": ["l_k"], "self_attn.v_proj": ["l_v"], "mlp.down_proj": ["l_ff"]}),
        ("tiny-gpt2", {"attn.c_attn": ["l_k", "l_v"], "mlp.c_proj": ["l_ff"]}),
        ("tiny-bert", {"attention.self.key": ["l_k"], "attention.self.value": ["l_v"], "output.dense": ["l_ff"]}),
    ],
)
def test_default_placement_by_role(kind, expected):
    model = zoo.wrap(make_model(kind), "ia3")
    prefix = {"tiny-llama": "model.layers", "tiny-gpt2": "transformer.h", "tiny-bert": "encoder.layer"}[kind]
    found = {name: m.adapter_params() for name, m in _ia3_modules(model).items()}
    assert found == {f"{prefix}.{i}.{path}": params for i in range(2) for path, params in expected.items()}
    # trainable: keys and values (2 kv heads x 16 for llama, 64 otherwise) and the inner width
    per_block = {"tiny-llama": 32 + 32 + 128, "tiny-gpt2": 64 + 64 + 256, "tiny-bert": 64 + 64 + 128}[kind]
    assert zoo.count_parameters(model)[0] == 2 * per_block


def test_scaling_formula_per_module():
    model = zoo.wrap(make_model("tiny-llama"), "ia3")
    _randomise(model)
    modules = _ia3_modules(model)
    k, ff = modules["model.layers.0.self_attn.k_proj"], modules["model.layers.0.mlp.down_proj"]
    x = torch.randn(2, 3, 64)  # (B, T, d)
    torch.testing.assert_close(k(x), (x @ k.base.weight.T) * k.l_k, atol=1e-6, rtol=0)
    inner = torch.randn(2, 3, 128)  # γ(W_1 x): the input of down_proj
    torch.testing.assert_close(ff(inner), (inner * ff.l_ff) @ ff.base.weight.T, atol=1e-6, rtol=0)


def test_gpt2_fused_qkv_keeps_the_query_third_at_one():
    model = zoo.wrap(make_model("tiny-gpt2"), "ia3")
    _randomise(model)
    c_attn = _ia3_modules(model)["transformer.h.0.attn.c_attn"]
    assert c_attn.l_k.shape == c_attn.l_v.shape == (64,)
    x = torch.randn(2, 3, 64)
    base = c_attn.base(x)  # (B, T, 3d): [q | k | v]
    got = c_attn(x)
    torch.testing.assert_close(got[..., :64], base[..., :64], atol=0, rtol=0)
    torch.testing.assert_close(got[..., 64:128], base[..., 64:128] * c_attn.l_k, atol=1e-6, rtol=0)
    torch.testing.assert_close(got[..., 128:], base[..., 128:] * c_attn.l_v, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", [k for k in TINY_FAMILIES if k != "tiny-deberta-v2"])  # DeBERTa's attention is not pluggable
def test_keys_and_values_are_scaled_inside_the_models_own_attention(kind):
    """Every family, fused q/k/v included (GPT-2 [q|k|v], Phi-3 with grouped-query widths, GPT-NeoX and ModernBERT):
    what the model's first attention computes is its base queries, its values times l_v per (kv head, feature)
    and, where no key norm follows the projection, its keys times l_k at position 0 (rotary leaves it unrotated)."""
    ids = torch.randint(4, 69, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        capturing(make_model(kind))(input_ids=ids)
        base_q, base_k, base_v, _ = captured_first(kind)
        model = zoo.wrap(make_model(kind), "ia3")
        _randomise(model)
        capturing(model.model)(input_ids=ids)
        q, k, v, _ = next(iter(CAPTURED.values()))
    roles = roles_of(make_model(kind))
    modules = _ia3_modules(model)
    first = blocks(model.model)[0][0]
    l_k, l_v = modules[f"{first}.{roles.key}"].l_k, modules[f"{first}.{roles.value}"].l_v
    heads = (1, roles.num_kv_heads, roles.head_dim)
    torch.testing.assert_close(q, base_q, atol=0, rtol=0)
    torch.testing.assert_close(v, base_v * l_v.view(*heads).unsqueeze(2), atol=1e-6, rtol=1e-6)
    if roles.key_norm is None:
        torch.testing.assert_close(k[:, :, 0], base_k[:, :, 0] * l_k.view(*heads), atol=1e-6, rtol=1e-6)
    assert not torch.allclose(v, base_v)


def test_matches_peft_on_tiny_llama(batch):
    base = make_model("tiny-llama")
    reference = peft.get_peft_model(
        copy.deepcopy(base), peft.IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"])
    )
    model = zoo.wrap(base, "ia3")
    _randomise(model)
    with torch.no_grad():
        for name, module in _ia3_modules(model).items():
            _peft_vector(reference, name).copy_(module.scale().reshape(_peft_vector(reference, name).shape))
        expected = output(reference, batch)
        diff = (output(model, batch) - expected).abs().max().item()
    assert diff <= ATOL, f"max abs difference {diff} against peft"
    assert not torch.allclose(expected, output(make_model("tiny-llama"), batch), atol=1e-3)


def test_gpt2_differs_from_peft_only_by_the_query_third(batch):
    """peft scales the whole fused c_attn output; zoo fixes its query third at one.
    With peft's query third set to one the two agree; with it trained they do not."""
    base = make_model("tiny-gpt2")
    reference = peft.get_peft_model(
        copy.deepcopy(base), peft.IA3Config(target_modules=["c_attn", "mlp.c_proj"], feedforward_modules=["mlp.c_proj"])
    )
    model = zoo.wrap(base, "ia3")
    _randomise(model)
    with torch.no_grad():
        for name, module in _ia3_modules(model).items():
            vector = _peft_vector(reference, name)
            assert vector.numel() == module.scale().numel()
            vector.copy_(module.scale().reshape(vector.shape))
        expected = output(reference, batch)
        diff = (output(model, batch) - expected).abs().max().item()
        assert diff <= ATOL, f"max abs difference {diff} against peft"
        _peft_vector(reference, "transformer.h.0.attn.c_attn")[:64] = 1.5  # peft's l_q, which zoo has not
        assert not torch.allclose(output(reference, batch), expected, atol=1e-3)
    n_zoo = zoo.count_parameters(model)[0]
    n_peft = sum(p.numel() for p in reference.parameters() if p.requires_grad)
    assert n_peft - n_zoo == 2 * 64


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_merge_folds_into_weights_and_unmerge_restores_them(kind, batch):
    base = make_model(kind)
    with torch.no_grad():  # tiny GPT-2 starts with zero biases, which would hide a bias left unscaled
        for name, p in base.named_parameters():
            if name.endswith("bias"):
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    original = {n: p.detach().clone() for n, p in base.named_parameters()}
    model = zoo.wrap(base, "ia3").eval()
    _randomise(model)
    expected = output(model, batch)
    modules = _ia3_modules(model)
    zoo.merge(model)
    assert not _ia3_modules(model)  # merged, the IA3 modules leave the forward pass: the base's own layers run
    changed = {n for n, p in _base_weights(model).items() if not torch.equal(p, original[n])}
    assert changed == {f"{name}.weight" for name in modules} | (
        {f"{name}.bias" for name, m in modules.items() if m.base.bias is not None and not m.on_input}
    )
    torch.testing.assert_close(output(model, batch), expected, atol=ATOL, rtol=1e-4)
    if kind == "tiny-gpt2":  # the query columns of the fused Conv1D weight and bias stay untouched
        c_attn = modules["transformer.h.0.attn.c_attn"].base
        torch.testing.assert_close(c_attn.weight[:, :64], original["transformer.h.0.attn.c_attn.weight"][:, :64], atol=0, rtol=0)
        torch.testing.assert_close(c_attn.bias[:64], original["transformer.h.0.attn.c_attn.bias"][:64], atol=0, rtol=0)
    zoo.unmerge(model)
    assert _ia3_modules(model).keys() == modules.keys()  # and come back on unmerging
    for name, p in _base_weights(model).items():
        torch.testing.assert_close(p, original[name], atol=1e-6, rtol=1e-6)


def test_unmerge_refuses_a_zero_scale():
    model = zoo.wrap(make_model("tiny-llama"), "ia3")
    module = _ia3_modules(model)["model.layers.0.self_attn.v_proj"]
    with torch.no_grad():
        module.l_v[3] = 0.0
    zoo.merge(model)
    with pytest.raises(ValueError, match="scaling entry is exactly 0"):
        module.unmerge()


def test_custom_targets_and_feedforward_modules():
    model = zoo.wrap(make_model("tiny-llama"), "ia3", target_modules=["v_proj", "up_proj"], feedforward_modules=["up_proj"])
    modules = _ia3_modules(model)
    assert sorted(modules) == [f"model.layers.{i}.{p}" for i in range(2) for p in ("mlp.up_proj", "self_attn.v_proj")]
    up = modules["model.layers.0.mlp.up_proj"]
    assert up.on_input and up.adapter_params() == ["l_ff"] and up.l_ff.shape == (64,)
    assert modules["model.layers.0.self_attn.v_proj"].adapter_params() == ["l_v"]
    # targets that play no k/v/ff role are output-scaled by a vector named l
    other = zoo.wrap(make_model("tiny-llama"), "ia3", target_modules=["q_proj"])
    assert [m.adapter_params() for m in _ia3_modules(other).values()] == [["l"], ["l"]]


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(target_modules=[]), "target_modules must be a non-empty list"),
        (dict(feedforward_modules=[""]), "feedforward_modules must be a non-empty list"),
    ],
)
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        IA3Config(**overrides)


@pytest.mark.parametrize(
    "kind, overrides, match",
    [
        ("tiny-llama", dict(target_modules=["k_proj"], feedforward_modules=["down_proj"]), "not targeted"),
        ("tiny-llama", dict(target_modules=["nonexistent"]), "matched no"),
        ("tiny-gpt2", dict(target_modules=["c_attn"], feedforward_modules=["c_attn"]), "fused q/k/v projection"),
    ],
)
def test_bad_targets_are_refused(kind, overrides, match):
    with pytest.raises(ValueError, match=match):
        zoo.wrap(make_model(kind), "ia3", **overrides)
