"""LLaMA-Adapter: exact identity at init, peft as oracle (scalar gate), per-head tanh gates, GQA, the model's own
queries and prompt keys on every decoder family, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from attention_capture import CAPTURED, capturing
from conftest import make_model
from contract_helpers import generates
from peft import AdaptionPromptConfig, get_peft_model
from test_prefix_tuning import _mha_twin
from torch import nn
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaAttention

import zoo
from zoo.methods.llama_adapter import AdaptedAttention, LlamaAdapterConfig
from zoo.models.tiny import TINY_FAMILIES

ATOL = 1e-5  # float32 on tiny models; measured against peft: about 1e-7


def _adapted(model) -> list[AdaptedAttention]:
    return [m for m in model.modules() if isinstance(m, AdaptedAttention)]


def _wrap(kind: str, **overrides):
    return zoo.wrap(make_model(kind), "llama_adapter", adapter_len=4, **overrides).eval()


@torch.no_grad()
def _set(model, prompts: list[torch.Tensor], gate) -> None:
    for module, prompt in zip(_adapted(model), prompts):
        module.adaption_prompt.copy_(prompt)
        module.gate.copy_(torch.as_tensor(gate, dtype=module.gate.dtype).expand_as(module.gate))


def _prompts(layers: int = 2, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 64, generator=g) for _ in range(layers)]


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_exact_identity_at_init(kind, batch):
    base = make_model(kind)
    model = _wrap(kind)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, base(**batch).logits)
    settings = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(model.generate(**batch, **settings), base.generate(**batch, **settings))


def test_zero_gate_passes_gradient_to_the_gate_only(batch):
    """Zero-init gating: at init the loss moves the gate, and the prompt gets no gradient yet."""
    model = _wrap("tiny-llama")
    model(**batch).logits.pow(2).mean().backward()
    for module in _adapted(model):
        assert module.gate.grad.abs().max() > 0
        assert torch.equal(module.adaption_prompt.grad, torch.zeros_like(module.adaption_prompt))


@pytest.mark.parametrize("layers", [1, 2])
def test_scalar_gate_matches_peft_on_grouped_query_llama(layers, batch):
    """tiny-llama has 4 query heads and 2 key/value heads; peft 0.21 handles that shape too."""
    base = make_model("tiny-llama")
    peft_model = get_peft_model(
        copy.deepcopy(base),
        AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=4, adapter_layers=layers),
    ).eval()
    ours = zoo.wrap(copy.deepcopy(base), "llama_adapter", adapter_len=4, adapter_layers=layers, gate="scalar").eval()
    prompts = _prompts(layers)
    with torch.no_grad():
        peft_modules = [m for m in peft_model.modules() if hasattr(m, "adaption_gate")]
        assert len(peft_modules) == len(_adapted(ours)) == layers
        for module, prompt in zip(peft_modules, prompts):
            module.adaption_prompt.copy_(prompt.unsqueeze(0))
            module.adaption_gate.fill_(0.7)
        _set(ours, prompts, 0.7)
        got, expected = ours(**batch).logits, peft_model(**batch).logits
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
        assert (got - base(**batch).logits).abs().max() > 1e-2, "a non-zero gate must change the output"
    settings = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(**batch, **settings), peft_model.generate(**batch, **settings))


def test_gpt2_adds_through_c_proj_where_peft_does_not(batch):
    """Deliberate difference: zoo projects the prompt attention by the frozen output map (the
    paper; peft's Llama path) on GPT-2 too; peft's GPT-2 path adds it unprojected."""
    base = make_model("tiny-gpt2")
    peft_model = get_peft_model(
        copy.deepcopy(base),
        AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=4, adapter_layers=1),
    ).eval()
    ours = zoo.wrap(copy.deepcopy(base), "llama_adapter", adapter_len=4, adapter_layers=1, gate="scalar").eval()
    (peft_attention,) = [m for m in peft_model.modules() if hasattr(m, "adaption_gate")]
    (our_attention,) = _adapted(ours)
    prompt = _prompts(1)[0]
    hidden = torch.randn(3, 7, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        peft_attention.adaption_prompt.copy_(prompt.unsqueeze(0))
        peft_attention.adaption_gate.fill_(0.7)
        _set(ours, [prompt], 0.7)
        plain = our_attention.attention(hidden)[0]
        ours_delta = our_attention(hidden)[0] - plain
        peft_delta = peft_attention(hidden)[0] - plain
        torch.testing.assert_close(ours_delta, peft_delta @ our_attention.attention.c_proj.weight, atol=ATOL, rtol=0)
        assert (ours_delta - peft_delta).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_equal_per_head_gates_equal_the_scalar_gate_through_tanh(kind, batch):
    prompts, g = _prompts(), 0.9
    per_head = _wrap(kind)
    scalar = _wrap(kind, gate="scalar")
    _set(per_head, prompts, g)
    _set(scalar, prompts, torch.tanh(torch.tensor(g)))
    assert _adapted(per_head)[0].gate.shape == (4,) and _adapted(scalar)[0].gate.shape == (1,)
    with torch.no_grad():
        torch.testing.assert_close(per_head(**batch).logits, scalar(**batch).logits, atol=ATOL, rtol=0)
        _set(scalar, prompts, g)  # without tanh the two differ
        assert (per_head(**batch).logits - scalar(**batch).logits).abs().max() > 1e-3


def test_heads_are_gated_independently():
    """The prompt's contribution is a sum over heads, each scaled by its own tanh(gate)."""
    model = _wrap("tiny-llama")
    module = _adapted(model)[0]
    hidden = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(3))
    rotary = model.model.model.rotary_emb(hidden, torch.arange(5).unsqueeze(0))
    _set(model, _prompts(), 0.0)

    @torch.no_grad()
    def delta(gates: list[float]) -> torch.Tensor:
        module.gate.copy_(torch.atanh(torch.tensor(gates)))
        return (
            module(hidden_states=hidden, position_embeddings=rotary, attention_mask=None)[0]
            - module.attention(hidden_states=hidden, position_embeddings=rotary, attention_mask=None)[0]
        )

    both = delta([0.5, -0.3, 0.0, 0.0])
    torch.testing.assert_close(both, delta([0.5, 0.0, 0.0, 0.0]) + delta([0.0, -0.3, 0.0, 0.0]), atol=1e-6, rtol=0)
    assert delta([0.5, 0.0, 0.0, 0.0]).abs().max() > 1e-3
    assert torch.equal(delta([0.0, 0.0, 0.0, 0.0]), torch.zeros_like(both))


def test_grouped_query_prompt_keys_repeat_like_the_model(batch):
    """On the equivalent multi-head model (k/v weights repeated per query head) the output is the same."""
    gqa_base = make_model("tiny-llama")
    twin: LlamaForCausalLM = _mha_twin(gqa_base)
    gqa = zoo.wrap(gqa_base, "llama_adapter", adapter_len=4).eval()
    mha = zoo.wrap(twin, "llama_adapter", adapter_len=4).eval()
    prompts = _prompts()
    g = torch.tensor([0.4, -0.8, 1.2, 0.1])
    _set(gqa, prompts, g)
    _set(mha, prompts, g)
    with torch.no_grad():
        torch.testing.assert_close(mha(**batch).logits, gqa(**batch).logits, atol=ATOL, rtol=0)


def test_only_the_top_layers_are_adapted():
    model = _wrap("tiny-llama", adapter_layers=1)
    names = [n for n, m in model.named_modules() if isinstance(m, AdaptedAttention)]
    assert names == ["model.model.layers.1.self_attn"]
    assert zoo.count_parameters(model)[0] == 4 * 64 + 4
    assert zoo.count_parameters(_wrap("tiny-gpt2", gate="scalar"))[0] == 2 * (4 * 64 + 1)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("adapter_len", 0, "adapter_len must be a positive integer, got 0"),
        ("adapter_layers", 0, r"adapter_layers must be a positive integer or None \(every layer\), got 0"),
        ("gate", "tanh", r"gate must be one of \['per_head_tanh', 'scalar'\], got 'tanh'"),
    ],
)
def test_bad_config_is_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        LlamaAdapterConfig(**{field: value})


def test_too_many_layers_and_encoders_are_refused():
    with pytest.raises(ValueError, match="adapter_layers=3 exceeds the 2 layers of this llama model"):
        _wrap("tiny-llama", adapter_layers=3)
    with pytest.raises(ValueError, match=r"supports \['causal_lm'\] models, not a encoder"):
        zoo.wrap(make_model("tiny-bert"), "llama_adapter")


@pytest.mark.parametrize("kind", [k for k in TINY_FAMILIES if generates(k)])
def test_queries_and_prompt_maps_are_the_models_own(kind):
    """On every decoder family, against the model's own attention: the wrapper's queries (projected,
    normed, rotated, scaled) equal the queries the model computes, and a prompt row equal to the
    first token's hidden state gets that token's key and value (position 0: rotary leaves it unrotated)."""
    model = zoo.wrap(make_model(kind), "llama_adapter", adapter_len=1, adapter_layers=1).eval()
    capturing(model.model)
    (adapted,) = _adapted(model)
    arguments = {}
    adapted.register_forward_pre_hook(lambda mod, args, kwargs: arguments.update(kwargs, args=args), with_kwargs=True)
    ids = torch.randint(4, 69, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(input_ids=ids)
        query, key, value, scaling = CAPTURED[adapted.attention]
        hidden = arguments["hidden_states"] if "hidden_states" in arguments else arguments["args"][0]  # (B, T, d)
        ours = adapted.queries(hidden, arguments.get("position_embeddings"))
        torch.testing.assert_close(ours * adapted.scaling, query * scaling, atol=1e-5, rtol=1e-5)
        adapted.adaption_prompt.copy_(hidden[0, :1])
        keys, values = adapted.prompt_keys_values()  # (H, 1, hd), kv heads repeated
        repeat = adapted.num_heads // adapted.kv_heads
        torch.testing.assert_close(keys[::repeat, 0], key[0, :, 0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(values[::repeat, 0], value[0, :, 0], atol=1e-5, rtol=1e-5)


def test_rotary_attention_without_the_models_rotation_is_refused():
    """A rotary model whose attention code offers no apply_rotary_pos_emb cannot have its queries reproduced."""
    model = make_model("tiny-llama")
    attention = model.model.layers[0].self_attn
    attention.__class__ = type("ForeignAttention", (nn.Module,), {"forward": LlamaAttention.forward, "__module__": __name__})
    with pytest.raises(
        ValueError,
        match=r"ForeignAttention at model.layers.0.self_attn takes no position_embeddings "
        r"or its code \(test_llama_adapter\) has no apply_rotary_pos_emb",
    ):
        zoo.wrap(model, "llama_adapter")
