"""LLaMA-Adapter both ways, as peft's ``AdaptionPromptConfig``: per adapted attention module one
``adaption_prompt`` (1, A, d) and one ``adaption_gate`` (1,), in the top ``adapter_layers`` layers.

peft's gate is one scalar with no tanh: zoo's ``gate="scalar"``; zoo's default per-head tanh gate has
no peft equivalent. peft adapts Llama and Mistral (``self_attn``) the way zoo does; on GPT-2 it adds
the prompt's attention without the output projection, so GPT-2 (and every other family) does not convert.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from zoo.methods.llama_adapter import AdaptedAttention, LlamaAdapterConfig
from zoo.peft_interchange.format import PREFIX, ImportPlan, NotConvertible, PeftAdapter, by_module, refuse_options
from zoo.wrapped import ZooModel

ATTENTION = {"llama": "self_attn", "mistral": "self_attn"}
"""Model types whose adaption prompts peft computes as zoo does, and the attention module peft targets."""
SUPPORTED = {"modules_to_save": (None, [])}


def _attention(model_type: str, source: str) -> str:
    if model_type not in ATTENTION:
        raise NotConvertible(f"{source}: peft's adaption prompt matches zoo's on model types {sorted(ATTENTION)} only, "
                             f"not {model_type!r}")
    return ATTENTION[model_type]


def export_llama_adapter(model: ZooModel) -> PeftAdapter:
    cfg: LlamaAdapterConfig = model.method_config
    if cfg.gate != "scalar":
        raise NotConvertible(f"llama_adapter with gate={cfg.gate!r} does not convert: peft's adaption prompt has one "
                             "scalar gate without tanh; wrap with gate='scalar' to export")
    target = _attention(model.config.model_type, "llama_adapter export")
    tensors = {}
    for name, module in model.model.named_modules():
        if isinstance(module, AdaptedAttention):
            tensors[f"{PREFIX}{name}.adaption_prompt"] = module.adaption_prompt.unsqueeze(0)  # (1, A, d)
            tensors[f"{PREFIX}{name}.adaption_gate"] = module.gate  # (1,)
    config = {"adapter_len": cfg.adapter_len, "adapter_layers": len(tensors) // 2, "target_modules": target}
    return PeftAdapter(config, tensors)


def import_adaption_prompt(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    source = str(folder)
    refuse_options(adapter.config, SUPPORTED, source)
    target = _attention(base.config.model_type, source)
    modules = by_module(adapter.tensors, ("adaption_prompt", "adaption_gate"), source)
    if any(not name.endswith("." + target) or len(parts) != 2 for name, parts in modules.items()):
        raise NotConvertible(f"{source}: expected an adaption_prompt and an adaption_gate per '{target}' module, found "
                             f"{ {name: sorted(parts) for name, parts in modules.items()} }")
    cfg = LlamaAdapterConfig(adapter_len=adapter.config["adapter_len"], adapter_layers=len(modules), gate="scalar")
    weights = {}
    for name, parts in modules.items():
        weights[f"{name}.adaption_prompt"] = parts["adaption_prompt"].squeeze(0)  # (A, d)
        weights[f"{name}.gate"] = parts["adaption_gate"]
    return ImportPlan(cfg, lambda _: weights)
