"""IA3 both ways: zoo's vectors (l_k, l_v, l_ff, or the pieces of a fused q/k/v projection) are
peft's one ``ia3_l`` per module, shaped (d_out, 1) where it scales the output and (1, d_in) where it
scales the input (peft's feedforward modules).

The placement travels as module names, so zoo's role-based defaults and peft's per-family table
(which puts l on the query for Qwen and Gemma) both convert exactly. The one difference: on a fused
q/k/v projection (GPT-2's ``c_attn``) zoo fixes the query features at one, peft trains them too; a
zoo export writes those ones, and a peft adapter imports only where its query features are still 1.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo.methods.ia3 import IA3Config, IA3Linear
from zoo.peft_interchange.format import PREFIX, ImportPlan, NotConvertible, PeftAdapter, by_module, peft_matches, refuse_options
from zoo.wrapped import ZooModel

SUPPORTED = {"modules_to_save": (None, []), "exclude_modules": (None, [])}


def export_ia3(model: ZooModel) -> PeftAdapter:
    tensors, targets, feedforward, fan_in_fan_out = {}, [], [], False
    for name, module in model.model.named_modules():
        if isinstance(module, IA3Linear):
            targets.append(name)
            fan_in_fan_out |= isinstance(module.base, Conv1D)
            scale = module.scale().detach()
            if module.on_input:
                feedforward.append(name)
            tensors[f"{PREFIX}{name}.ia3_l"] = scale.reshape(1, -1) if module.on_input else scale.reshape(-1, 1)
    config = {"target_modules": sorted(targets), "feedforward_modules": sorted(feedforward),
              "fan_in_fan_out": fan_in_fan_out, "init_ia3_weights": True}
    return PeftAdapter(config, tensors)


def import_ia3(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    source = str(folder)
    refuse_options(adapter.config, SUPPORTED, source)
    vectors = {name: parts["ia3_l"] for name, parts in by_module(adapter.tensors, ("ia3_l",), source).items()}
    feedforward = sorted(n for n in vectors if peft_matches(n, adapter.config.get("feedforward_modules")))
    cfg = IA3Config(target_modules=sorted(vectors), feedforward_modules=feedforward or None)

    def weights(model: ZooModel) -> dict[str, torch.Tensor]:
        found = {}
        for name, module in model.model.named_modules():
            if not isinstance(module, IA3Linear):
                continue
            if module.on_input != (name in feedforward):  # only where peft names no feedforward module: zoo's default then
                raise NotConvertible(f"{source}: peft scales the output of {name!r} and names no feedforward_modules; zoo's IA3 "
                                     "then scales the input of every feed-forward output projection (its default), so an "
                                     "adapter scaling one's output does not convert")
            try:
                weight = module.base.weight
                pieces = module.split_scale(vectors[name].flatten().to(device=weight.device, dtype=weight.dtype))
            except ValueError as err:
                raise NotConvertible(f"{source}: {name}: {err}; an IA3 adapter trained on this fused projection by peft "
                                     "cannot be imported") from err
            found.update({f"{name}.{piece}": value for piece, value in pieces.items()})
        return found

    return ImportPlan(cfg, weights)
