"""zoo's LoRA against peft's: same A and B give the same outputs; export loads in peft."""

from __future__ import annotations

import copy

import peft
import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb

import zoo
from zoo.io.peft_interchange import export_peft
from zoo.methods.lora import LoRALinear

TARGETS = {"tiny-llama": ["q_proj", "v_proj"], "tiny-gpt2": ["c_attn"]}


def _peft_model(base, kind, r=4, alpha=8.0):
    cfg = peft.LoraConfig(
        r=r, lora_alpha=alpha, target_modules=TARGETS[kind], lora_dropout=0.0, fan_in_fan_out=kind == "tiny-gpt2"
    )  # GPT-2's Conv1D stores its weight transposed
    return peft.get_peft_model(base, cfg)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_same_factors_same_outputs(kind, batch):
    base = make_model(kind)
    ours = zoo.wrap(copy.deepcopy(base), "lora", r=4, alpha=8.0, target_modules=TARGETS[kind])
    perturb(ours)
    theirs = _peft_model(base, kind)
    with torch.no_grad():
        for name, module in ours.model.named_modules():
            if isinstance(module, LoRALinear):
                target = theirs.base_model.model.get_submodule(name)
                target.lora_A["default"].weight.copy_(module.lora_A)
                target.lora_B["default"].weight.copy_(module.lora_B)
    torch.testing.assert_close(output(ours.eval(), batch), output(theirs.eval(), batch), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_export_loads_in_peft_to_the_same_outputs(kind, batch, tmp_path):
    ours = zoo.wrap(make_model(kind), "lora", r=4, target_modules=TARGETS[kind])
    perturb(ours)
    export_peft(ours, tmp_path / "peft")
    loaded = peft.PeftModel.from_pretrained(make_model(kind), tmp_path / "peft")
    torch.testing.assert_close(output(loaded.eval(), batch), output(ours.eval(), batch), atol=1e-6, rtol=0)


def test_export_refuses_other_methods_and_merged_models(tmp_path):
    with pytest.raises(TypeError, match="needs a model returned by zoo.wrap, got LlamaForCausalLM"):
        export_peft(make_model("tiny-llama"), tmp_path)
    merged = zoo.merge(zoo.wrap(make_model("tiny-llama"), "lora"))
    with pytest.raises(ValueError, match="unmerge"):
        export_peft(merged, tmp_path)


def test_lora_update_is_alpha_over_r_times_BA():
    base = make_model("tiny-llama")
    q = base.model.layers[0].self_attn.q_proj
    x = torch.randn(2, 5, q.in_features)
    expected_base = q(x)
    model = zoo.wrap(base, "lora", r=2, alpha=6.0)
    perturb(model)
    layer = model.model.model.layers[0].self_attn.q_proj
    expected = expected_base + 3.0 * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=0)
