"""Role discovery (zoo.models.arch): the parts of every tiny family, found from structure; roles named by hand."""

from __future__ import annotations

import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn
from transformers.models.llama.modeling_llama import LlamaAttention

import zoo
from zoo.inject import linear_shape
from zoo.methods.lora import LoRALinear
from zoo.models.arch import ROLES_ATTR, Roles, blocks, model_kind, roles_of, set_roles
from zoo.models.discover import find_blocks
from zoo.models.load import ModelConfig, RolesConfig, load_model
from zoo.models.tiny import TINY_FAMILIES, is_causal
from zoo.runner.config import store_configs


@pytest.mark.parametrize("kind", TINY_FAMILIES)
def test_every_role_names_a_part_of_the_right_shape(kind):
    model = make_model(kind)
    roles = roles_of(model)
    block = blocks(model)[0][1]
    hidden = model.get_input_embeddings().embedding_dim
    queries, keys = roles.num_heads * roles.head_dim, roles.num_kv_heads * roles.head_dim
    if roles.fused_qkv:
        assert linear_shape(block.get_submodule(roles.query)) == (hidden, queries + 2 * keys)
    else:
        assert linear_shape(block.get_submodule(roles.query)) == (hidden, queries)
        assert linear_shape(block.get_submodule(roles.key)) == linear_shape(block.get_submodule(roles.value)) == (hidden, keys)
    assert linear_shape(block.get_submodule(roles.attn_out)) == (queries, hidden)
    assert linear_shape(block.get_submodule(roles.ff_out))[1] == hidden
    assert roles.ff_in and all(linear_shape(block.get_submodule(p))[0] == hidden for p in roles.ff_in)
    inside = [roles.query, roles.key, roles.value, roles.attn_out]
    assert all(p.startswith(roles.attention + ".") for p in inside)
    assert not any(p.startswith(roles.attention + ".") for p in (roles.ff_out, *roles.ff_in))
    assert roles.norms and all(block.get_submodule(p) is not None for p in roles.norms)
    assert model.get_submodule(roles.embedding) is model.get_input_embeddings()
    assert (model.get_submodule(roles.lm_head) is model.get_output_embeddings()) if roles.lm_head else not model.can_generate()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "tiny-llama",
            dict(
                blocks="model.layers",
                attention="self_attn",
                query="self_attn.q_proj",
                value="self_attn.v_proj",
                ff_in=("mlp.gate_proj", "mlp.up_proj"),
                ff_out="mlp.down_proj",
                num_kv_heads=2,
                positional="rotary",
            ),
        ),
        (
            "tiny-gpt2",
            dict(
                blocks="transformer.h",
                query="attn.c_attn",
                key="attn.c_attn",
                attn_out="attn.c_proj",
                ff_out="mlp.c_proj",
                qkv_layout="concat",
                positional="absolute",
                final_norm="transformer.ln_f",
            ),
        ),
        (
            "tiny-bert",
            dict(
                blocks="encoder.layer",
                attention="attention",
                key="attention.self.key",
                attn_out="attention.output.dense",
                ff_in=("intermediate.dense",),
                ff_out="output.dense",
                lm_head=None,
            ),
        ),
        ("tiny-opt", dict(attention="self_attn", attn_out="self_attn.out_proj", ff_in=("fc1",), ff_out="fc2")),
        ("tiny-gpt-neox", dict(query="attention.query_key_value", attn_out="attention.dense", qkv_layout="grouped")),
        ("tiny-phi3", dict(query="self_attn.qkv_proj", qkv_layout="concat", num_kv_heads=2, ff_in=("mlp.gate_up_proj",))),
        ("tiny-qwen3", dict(query_norm="self_attn.q_norm", key_norm="self_attn.k_norm")),
        (
            "tiny-gemma3",
            dict(
                head_dim=8,
                norms=("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
            ),
        ),
        ("tiny-modernbert", dict(query="attn.Wqkv", attn_out="attn.Wo", ff_out="mlp.Wo", positional="rotary")),
        ("tiny-deberta-v2", dict(query="attention.self.query_proj", positional="relative")),
    ],
)
def test_roles_of_known_families(kind, expected):
    roles = roles_of(make_model(kind))
    assert {name: getattr(roles, name) for name in expected} == expected


class ExoticAttention(LlamaAttention):
    """Llama attention whose projections carry names no convention knows."""

    q_proj = property(lambda self: self.to_queries)
    k_proj = property(lambda self: self.to_keys)
    v_proj = property(lambda self: self.to_values)
    o_proj = property(lambda self: self.to_out)


def _exotic():
    model = make_model("tiny-llama")
    for _, block in blocks(model):
        attention = block.self_attn
        attention.__class__ = ExoticAttention
        for old, new in (("q_proj", "to_queries"), ("k_proj", "to_keys"), ("v_proj", "to_values"), ("o_proj", "to_out")):
            attention._modules[new] = attention._modules.pop(old)
    return model


def test_an_exotic_model_says_which_role_is_missing_and_how_to_name_it(batch):
    model = _exotic()
    torch.testing.assert_close(output(model, batch), output(make_model("tiny-llama"), batch), atol=0, rtol=0)
    with pytest.raises(
        ValueError,
        match=r"could not find the query projection \(role 'query'\) in LlamaForCausalLM "
        r"\(blocks: model.layers\); name it as a path inside a block: model.roles.query=<path> "
        r"on the command line, or zoo.models.arch.set_roles\(model, query=...\) in Python",
    ):
        zoo.wrap(model, "lora")
    with pytest.raises(ValueError, match=r"could not find the key projection \(role 'key'\)"):
        zoo.wrap(_exotic(), "ia3")
    with pytest.raises(ValueError, match=r"could not find the attention output projection \(role 'attn_out'\)"):
        zoo.wrap(_exotic(), "adapter")  # to_queries and to_out are both square maps: a tie is not guessed
    roles = roles_of(_exotic())
    assert (roles.attn_out, roles.attention, roles.ff_out) == (None, None, "mlp.down_proj")


def test_roles_named_by_hand_reach_every_method(batch):
    named = dict(query="self_attn.to_queries", key="self_attn.to_keys", value="self_attn.to_values", attn_out="self_attn.to_out")
    roles = roles_of(set_roles(_exotic(), **named))
    assert (roles.attention, roles.query, roles.ff_out) == ("self_attn", "self_attn.to_queries", "mlp.down_proj")
    lora = zoo.wrap(set_roles(_exotic(), **named), "lora")
    assert sorted(n for n, m in lora.model.named_modules() if isinstance(m, LoRALinear)) == [
        f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("to_queries", "to_values")
    ]
    expected = output(make_model("tiny-llama"), batch)
    for method in ("ia3", "adapter", "llama_adapter", "gift"):
        model = zoo.wrap(set_roles(_exotic(), **named), method).eval()
        torch.testing.assert_close(output(model, batch), expected, atol=1e-6, rtol=0)
        perturb(model)
        assert not torch.allclose(output(model, batch), expected, atol=1e-4)


def test_model_config_roles_are_stored_on_the_loaded_model():
    model, _ = load_model(
        ModelConfig(name="tiny-llama", pretrain_steps=0, roles={"value": "self_attn.k_proj", "ff_in": ["mlp.up_proj"]})
    )
    assert getattr(model, ROLES_ATTR) == {"value": "self_attn.k_proj", "ff_in": ("mlp.up_proj",)}
    roles = roles_of(model)
    assert (roles.query, roles.value, roles.ff_in) == ("self_attn.q_proj", "self_attn.k_proj", ("mlp.up_proj",))
    lora = zoo.wrap(model, "lora")
    assert {n.rsplit(".", 1)[-1] for n, m in lora.model.named_modules() if isinstance(m, LoRALinear)} == {"q_proj", "k_proj"}
    plain, _ = load_model(ModelConfig(name="tiny-llama", pretrain_steps=0))
    assert not hasattr(plain, ROLES_ATTR)


def test_roles_compose_from_the_command_line():
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config", overrides=["model.roles.query=self_attn.wq", "model.roles.ff_in=[mlp.w1,mlp.w3]", "model.roles.num_heads=8"]
        )
    assert OmegaConf.to_object(cfg.model).roles.given() == {
        "query": "self_attn.wq",
        "ff_in": ["mlp.w1", "mlp.w3"],
        "num_heads": 8,
    }
    assert set(RolesConfig().__dataclass_fields__) == set(Roles.__dataclass_fields__) - {"model_name"}


def test_bad_roles_are_refused():
    with pytest.raises(ValueError, match=r"unknown role\(s\) \['querry'\]; roles: \['blocks', 'attention', 'query'"):
        set_roles(make_model("tiny-llama"), querry="self_attn.q_proj")
    with pytest.raises(ValueError, match=r"model.roles names unknown role\(s\) \['querry'\]"):
        ModelConfig(roles={"querry": "x"})
    with pytest.raises(ValueError, match=r"qkv_layout 'interleaved' is not one of \('separate', 'concat', 'grouped'\)"):
        set_roles(make_model("tiny-llama"), qkv_layout="interleaved")
    with pytest.raises(
        ValueError,
        match=r"role 'query' names 'self_attn.wq', which is no module of a block; linear maps in a "
        r"block: \['self_attn.q_proj', 'self_attn.k_proj'",
    ):
        roles_of(set_roles(make_model("tiny-llama"), query="self_attn.wq"))
    with pytest.raises(ValueError, match=r"'heads' is not a role"):
        roles_of(make_model("tiny-llama")).require("heads")


def test_a_model_without_repeated_blocks_says_how_to_name_them():
    with pytest.raises(
        ValueError,
        match=r"Sequential has no nn.ModuleList of repeated blocks holding linear layers; name it "
        r"with model.roles.blocks=<full module path>",
    ):
        find_blocks(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))


def test_fused_qkv_positions_per_layout():
    def positions(layout: str) -> list[list[int]]:
        roles = Roles(blocks="b", qkv_layout=layout, num_heads=4, num_kv_heads=2, head_dim=1)
        return [index.tolist() for index in roles.qkv_indices(8)]

    assert positions("concat") == [[0, 1, 2, 3], [4, 5], [6, 7]]
    assert positions("grouped") == [[0, 1, 4, 5], [2, 6], [3, 7]]  # per kv head: its two query heads, its key, its value
    with pytest.raises(ValueError, match=r"fused q/k/v output of width 9 does not hold 4 query and 2 key/value heads"):
        Roles(blocks="b", qkv_layout="concat", num_heads=4, num_kv_heads=2, head_dim=1).qkv_indices(9)


@pytest.mark.parametrize("kind", TINY_FAMILIES)
def test_every_tiny_family_loads_by_name(kind):
    model, tokenizer = load_model(ModelConfig(name=kind, pretrain_steps=0))
    assert model_kind(model) == ("causal_lm" if is_causal(kind) else "encoder")
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    if not is_causal(kind):
        with pytest.raises(ValueError, match=f"{kind} is an encoder: it is not pretrained here"):
            load_model(ModelConfig(name=kind, pretrain_steps=20))
