"""peft's hand-kept tables as the oracle for zoo's discovered default targets, family by family.

peft lists default target modules per ``model_type`` and per method; zoo finds the same roles
from the model's structure. For every tiny family peft lists, the modules each library wraps
with its defaults must be the same, except where peft's IA3 table departs from the paper's
placement (keys, values, feed-forward input), which the test states exactly.
"""

from __future__ import annotations

import peft
import pytest
from conftest import make_model
from peft.tuners.ia3 import IA3Layer
from peft.tuners.lora import LoraLayer
from peft.utils.constants import (
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_IA3,
)
from peft.utils.constants import (
    TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_LORA,
)

import zoo
from zoo.methods.gift import GIFTLinear
from zoo.methods.ia3 import IA3Linear
from zoo.methods.lora import LoRALinear
from zoo.models.arch import block_names, roles_of
from zoo.models.tiny import TINY_FAMILIES

MODEL_TYPES = {kind: make_model(kind).config.model_type for kind in TINY_FAMILIES}
KEY_NOT_QUERY = (("key",), ("query",))
ATTN_OUT_TOO = ((), ("attn_out",))
IA3_PEFT_DEPARTS = {
    # model_type: (roles only zoo scales, roles only peft scales)
    "qwen2": KEY_NOT_QUERY,
    "qwen3": KEY_NOT_QUERY,
    "gemma": KEY_NOT_QUERY,
    "gemma2": KEY_NOT_QUERY,
    "gemma3_text": KEY_NOT_QUERY,  # peft's table names q_proj where the paper scales keys
    "opt": (("value",), ("query",)),  # peft's table names q_proj and k_proj, no v_proj
    # peft's suffix "output.dense" also matches "attention.output.dense": it scales the attention output's input too
    "bert": ATTN_OUT_TOO,
    "roberta": ATTN_OUT_TOO,
    "deberta-v2": ATTN_OUT_TOO,
}


def _listed(table: dict) -> list[str]:
    return [kind for kind in TINY_FAMILIES if MODEL_TYPES[kind] in table]


def _peft_wrapped(kind: str, config, layer: type) -> set[str]:
    model = peft.get_peft_model(make_model(kind), config).base_model.model
    return {name for name, module in model.named_modules() if isinstance(module, layer)}


def _zoo_wrapped(kind: str, method: str, layer: type) -> dict[str, object]:
    model = zoo.wrap(make_model(kind), method).model
    return {name: module for name, module in model.named_modules() if isinstance(module, layer)}


def test_most_families_are_compared():
    assert len(_listed(PEFT_LORA)) >= 12 and len(_listed(PEFT_IA3)) >= 12


@pytest.mark.parametrize("kind", _listed(PEFT_LORA))
def test_lora_default_targets_equal_peft(kind):
    ours = set(_zoo_wrapped(kind, "lora", LoRALinear))
    assert ours == _peft_wrapped(kind, peft.LoraConfig(r=2), LoraLayer)
    assert ours == set(_zoo_wrapped(kind, "gift", GIFTLinear))  # GIFT defaults to the LoRA placement


@pytest.mark.parametrize("kind", _listed(PEFT_IA3))
def test_ia3_default_targets_equal_peft_or_depart_as_stated(kind):
    ours = _zoo_wrapped(kind, "ia3", IA3Linear)
    peft_model = peft.get_peft_model(make_model(kind), peft.IA3Config()).base_model.model
    theirs = {n: m for n, m in peft_model.named_modules() if isinstance(m, IA3Layer)}
    model = make_model(kind)
    roles = roles_of(model)

    def modules(role_names: tuple[str, ...]) -> set[str]:
        return {name for role in role_names for name in block_names(model, getattr(roles, role))}

    zoo_only, peft_only = IA3_PEFT_DEPARTS.get(MODEL_TYPES[kind], ((), ()))
    assert {n for n, m in ours.items() if m.on_input} == modules(("ff_out",))
    peft_feedforward = ("ff_out", "attn_out") if "attn_out" in peft_only else ("ff_out",)  # the suffix matches both
    assert {n for n, m in theirs.items() if m.is_feedforward} == modules(peft_feedforward)
    assert set(ours) - set(theirs) == modules(zoo_only)
    assert set(theirs) - set(ours) == modules(peft_only)
