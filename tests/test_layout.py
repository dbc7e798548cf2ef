"""zoo.merge runs the base model's own modules (zoo.models.layout): the method's modules and parametrisations leave the forward
pass, keep their tensors (saving a merged model's adapter works), and come back on unmerging, trainable as before."""

from __future__ import annotations

import copy

import torch
from conftest import make_model
from contract_helpers import output
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

import zoo
from zoo.testing.helpers import perturb


def _layout(model: torch.nn.Module) -> dict[str, type]:
    return {name: type(module) for name, module in model.named_modules()}


def test_merged_lora_is_the_base_layout_and_unmerging_brings_the_same_adapter_back(batch):
    base = make_model("tiny-llama")
    plain = _layout(base)
    model = zoo.wrap(base, "lora")
    perturb(model)
    wrapped, params, expected = _layout(model.model), dict(model.model.named_parameters()), output(model, batch)
    adapter = {k: v.clone() for k, v in model.adapter_state_dict().items()}
    zoo.merge(model)
    assert _layout(model.model) == plain  # no LoRALinear left to call
    torch.testing.assert_close(output(model, batch), expected, atol=1e-5, rtol=1e-4)
    assert model.adapter_state_dict().keys() == adapter.keys()  # merged, the adapter can still be saved
    assert all(torch.equal(model.adapter_state_dict()[k], v) for k, v in adapter.items())
    zoo.unmerge(model)
    assert _layout(model.model) == wrapped
    assert all(p is params[n] for n, p in model.model.named_parameters())  # the same tensors: an optimiser's still train
    assert [n for n, p in model.model.named_parameters() if p.requires_grad] == list(adapter)
    torch.testing.assert_close(output(model, batch), expected, atol=1e-5, rtol=1e-4)


def test_merged_full_finetune_drops_its_parametrisations_and_unmerging_registers_the_same_ones(batch):
    base = make_model("tiny-llama")
    model = zoo.wrap(base, "full_finetune")
    perturb(model)
    deltas = {n: p for n, p in model.model.named_parameters() if n.endswith(".delta")}
    expected = output(model, batch)
    zoo.merge(model)
    assert not any(parametrize.is_parametrized(m) for m in model.model.modules())
    assert not any(n.endswith(".delta") for n, _ in model.model.named_parameters())
    embed, head = base.get_input_embeddings(), base.get_output_embeddings()
    assert (embed.weight is head.weight) == (base.config.tie_word_embeddings is True)  # tied weights stay one tensor
    torch.testing.assert_close(output(model, batch), expected, atol=1e-5, rtol=1e-4)
    zoo.unmerge(model)
    assert {n: p for n, p in model.model.named_parameters() if n.endswith(".delta")} == deltas
    torch.testing.assert_close(output(model, batch), expected, atol=1e-5, rtol=1e-4)
    fresh = zoo.wrap(make_model("tiny-llama"), "full_finetune")
    perturb(fresh)
    torch.testing.assert_close(output(fresh, batch), expected, atol=1e-5, rtol=1e-4)  # unmerged: the weights as they were


def test_a_parametrisation_of_the_base_model_itself_stays_through_merge_and_unmerge(batch):
    base = make_model("tiny-llama")
    weight_norm(base.model.layers[0].self_attn.o_proj)  # the base's own (LoRA targets q and v)
    reference = copy.deepcopy(base)
    model = zoo.wrap(base, "lora")
    zoo.merge(model)
    assert parametrize.is_parametrized(base.model.layers[0].self_attn.o_proj)
    torch.testing.assert_close(output(model, batch), output(reference, batch))  # LoRA's B is 0: the base's outputs
    zoo.unmerge(model)
    assert parametrize.is_parametrized(base.model.layers[0].self_attn.o_proj)


def test_merging_twice_and_unmerging_an_unmerged_model_change_nothing(batch):
    model = zoo.wrap(make_model("tiny-gpt2"), "ia3")
    perturb(model)
    expected, layout = output(model, batch), _layout(model.model)
    zoo.unmerge(model)
    assert _layout(model.model) == layout
    zoo.merge(zoo.merge(model))
    torch.testing.assert_close(output(model, batch), expected, atol=1e-5, rtol=1e-4)
    zoo.unmerge(model)
    assert _layout(model.model) == layout and not model.merged
    torch.testing.assert_close(output(model, batch), expected, atol=1e-5, rtol=1e-4)
