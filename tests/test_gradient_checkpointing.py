"""``model.gradient_checkpointing``: the same step as without it, for adapters in a frozen base; refused where it cannot work."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

import zoo
from zoo.models.load import ModelConfig, load_model
from zoo.testing.helpers import output, perturb, wrap_for_test

TRAINED = [m for m in zoo.list_methods() if zoo.get_method(m).source == "zoo" and not zoo.get_method(m).gradient_free]
"""zoo's own methods that train by gradient steps (the peft bridge's wrap peft's modules, whose checkpointing is peft's)."""


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 60, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _one_step(method: str, kind: str, checkpointed: bool) -> tuple[dict, dict, int]:
    """Gradients and updated weights of the method's parameters after one SGD step, and how often a part of block 0 ran."""
    model, _ = load_model(ModelConfig(name=kind, pretrain_steps=0, gradient_checkpointing=checkpointed))
    block = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList))[0]
    calls = []
    # inside the block (transformers checkpoints its forward, keeping its own hooks out), a pre-hook (the recomputation
    # stops early, once it has what the backward pass needs)
    next(block.children()).register_forward_pre_hook(lambda *_: calls.append(1))
    torch.manual_seed(0)  # adapters initialise from the global generator
    wrapped = wrap_for_test(method, model)
    perturb(wrapped)
    wrapped.train()
    torch.manual_seed(0)  # the same dropout masks in both runs (GPT-2 drops out; checkpointing replays the masks)
    out = output(wrapped, _batch()).float()
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
    torch.optim.SGD([p for p in wrapped.parameters() if p.requires_grad], lr=0.1).step()
    trained = {n: p for n, p in wrapped.named_parameters() if p.requires_grad}
    return {n: p.grad for n, p in trained.items()}, {n: p.detach() for n, p in trained.items()}, len(calls)


@pytest.mark.parametrize(
    "method,kind",
    [
        *((m, "tiny-llama") for m in TRAINED if not zoo.get_method(m).uses_cache),
        ("lora", "tiny-gpt2"),
        ("prompt_tuning", "tiny-gpt2"),
        ("prompt_tuning", "tiny-bert"),
    ],
)
def test_one_step_equals_the_step_without_checkpointing(method, kind):
    grads, weights, calls = _one_step(method, kind, checkpointed=False)
    grads_ckpt, weights_ckpt, calls_ckpt = _one_step(method, kind, checkpointed=True)
    assert (calls, calls_ckpt) == (1, 2)  # the checkpointed block ran again in the backward pass
    assert grads.keys() == grads_ckpt.keys() and all(g is not None for g in grads_ckpt.values())
    for name in grads:
        torch.testing.assert_close(
            grads_ckpt[name], grads[name], atol=1e-5, rtol=1e-5, msg=name
        )  # float rounding of a recomputation
        torch.testing.assert_close(
            weights_ckpt[name], weights[name], atol=1e-5, rtol=1e-5, msg=name
        )  # float rounding of a recomputation


@pytest.mark.parametrize("method", [m for m in TRAINED if zoo.get_method(m).uses_cache])
def test_a_method_entering_through_the_cache_is_refused(method):
    """transformers drops the key/value cache in checkpointed blocks, and with it the method's prefixes."""
    model, _ = load_model(ModelConfig(name="tiny-llama", pretrain_steps=0, gradient_checkpointing=True))
    with pytest.raises(
        ValueError, match=f"method '{method}' supports models without gradient checkpointing.*model.gradient_checkpointing=false"
    ):
        wrap_for_test(method, model)


def test_a_model_without_checkpointing_is_refused(monkeypatch):
    monkeypatch.setattr(LlamaForCausalLM, "supports_gradient_checkpointing", False)
    with pytest.raises(ValueError, match="model.gradient_checkpointing=true, but LlamaForCausalLM does not support gradient"):
        load_model(ModelConfig(name="tiny-llama", pretrain_steps=0, gradient_checkpointing=True))
