"""LoRA both ways: zoo's ``lora_A``/``lora_B`` are peft's ``lora_A.weight``/``lora_B.weight``, same layout.

Both scale the update by ``alpha / r``; peft's rank-stabilised variant (``use_rslora``, ``alpha / √r``)
imports exactly as zoo's ``alpha = lora_alpha · √r``. GPT-2's Conv1D needs no conversion: both keep
A as (r, d_in) and B as (d_out, r) (peft's ``fan_in_fan_out`` only describes the base weight).
"""
from __future__ import annotations

import math
from pathlib import Path

from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo.methods.lora import LoRAConfig, LoRALinear
from zoo.peft_interchange.format import PREFIX, ImportPlan, NotConvertible, PeftAdapter, by_module, refuse_options
from zoo.wrapped import ZooModel

SUPPORTED = {
    "use_dora": (False,), "bias": ("none",), "lora_bias": (False,), "rank_pattern": ({}, None), "alpha_pattern": ({}, None),
    "layer_replication": (None,), "modules_to_save": (None, []), "use_qalora": (False,), "alora_invocation_tokens": (None,),
}
"""peft options zoo's LoRA has no equivalent of, and the values at which they change nothing."""


def export_lora(model: ZooModel) -> PeftAdapter:
    tensors, targets, fan_in_fan_out = {}, [], False
    for name, module in model.model.named_modules():
        if isinstance(module, LoRALinear):
            targets.append(name)
            fan_in_fan_out |= isinstance(module.base, Conv1D)
            tensors[f"{PREFIX}{name}.lora_A.weight"] = module.lora_A
            tensors[f"{PREFIX}{name}.lora_B.weight"] = module.lora_B
    cfg: LoRAConfig = model.method_config
    config = {"r": cfg.r, "lora_alpha": cfg.alpha, "lora_dropout": cfg.dropout, "target_modules": sorted(targets),
              "fan_in_fan_out": fan_in_fan_out, "bias": "none"}
    return PeftAdapter(config, tensors)


def import_lora(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    config, source = adapter.config, str(folder)
    refuse_options(config, SUPPORTED, source)
    modules = by_module(adapter.tensors, ("lora_A.weight", "lora_B.weight"), source)
    r = config.get("r", 8)
    for name, pair in modules.items():
        if set(pair) != {"lora_A.weight", "lora_B.weight"} or pair["lora_A.weight"].shape[0] != r:
            raise NotConvertible(f"{source}: module {name!r} does not hold an A of rank r={r} and a B; found "
                                 f"{ {k: tuple(v.shape) for k, v in pair.items()} }")
    alpha = float(config.get("lora_alpha", 8))
    cfg = LoRAConfig(r=r, alpha=alpha * math.sqrt(r) if config.get("use_rslora") else alpha,
                     dropout=float(config.get("lora_dropout", 0.0)), target_modules=sorted(modules))
    weights = {f"{name}.lora_{part}": pair[f"lora_{part}.weight"] for name, pair in modules.items() for part in "AB"}
    return ImportPlan(cfg, lambda _: weights)
