"""Prefix tuning both ways, through the prefix table (P, layers·2·kv_heads·head_dim).

zoo and peft lay the table out alike, (layer, key/value, head, dim), and both place the real tokens
of a causal LM at positions P, P+1, …; peft saves the table itself (its MLP's output where it
reparameterises), so a zoo export writes its encoder's output and an import is zoo's
``reparameterize=False`` table. On an encoder the two differ: peft shifts the real tokens'
positions by P, zoo keeps 0 … T-1, so encoder prefixes do not convert.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from zoo.methods.prefix_tuning import PrefixTuningConfig
from zoo.models.arch import model_kind
from zoo.peft_interchange.format import PROMPT, ImportPlan, NotConvertible, PeftAdapter, refuse_options
from zoo.wrapped import ZooModel

SUPPORTED = {"num_transformer_submodules": (1, None), "modules_to_save": (None, [])}
ENCODER_POSITIONS = ("prefix tuning on an encoder does not convert: peft shifts the real tokens' positions by the number of "
                     "virtual tokens, zoo keeps 0..T-1 (the positions its embeddings were trained on)")


def export_prefix_tuning(model: ZooModel) -> PeftAdapter:
    if model.model_kind != "causal_lm":
        raise NotConvertible(ENCODER_POSITIONS)
    prefix = model.model  # the PrefixTuningModel
    with torch.no_grad():
        table = prefix.prefix_encoder().detach().clone()  # (P, layers·2·kv_heads·head_dim)
    config = {"num_virtual_tokens": prefix.num_virtual_tokens, "num_layers": prefix.num_layers,
              "num_attention_heads": prefix.kv_heads, "token_dim": prefix.kv_heads * prefix.head_dim,
              "encoder_hidden_size": model.method_config.projection_hidden_size, "prefix_projection": False,
              "num_transformer_submodules": 1}
    return PeftAdapter(config, {PROMPT: table})


def import_prefix_tuning(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    refuse_options(adapter.config, SUPPORTED, str(folder))
    if model_kind(base) != "causal_lm":
        raise NotConvertible(f"{folder}: {ENCODER_POSITIONS}")
    table = adapter.tensors.get(PROMPT)
    if set(adapter.tensors) != {PROMPT} or table.dim() != 2:
        raise NotConvertible(f"{folder}: expected one (P, layers·2·kv_heads·head_dim) tensor {PROMPT!r}, found "
                             f"{ {k: tuple(v.shape) for k, v in adapter.tensors.items()} }")
    cfg = PrefixTuningConfig(num_virtual_tokens=table.shape[0], reparameterize=False)
    return ImportPlan(cfg, lambda _: {"prefix_encoder.prefix": table})
