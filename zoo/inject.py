"""Shared helpers to find, replace and freeze modules, and to collect adapter parameters."""

from __future__ import annotations

import re
from collections.abc import Iterator

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo.method import Adapter

LINEAR_TYPES = (nn.Linear, Conv1D)


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """``(in_features, out_features)`` of an ``nn.Linear`` or GPT-2 ``Conv1D``."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    raise TypeError(f"{type(module).__name__} is neither nn.Linear nor Conv1D")


def quantized(module: nn.Module) -> bool:
    """Whether ``module`` or one of its submodules stores its weight packed in integers (bitsandbytes' 4- and 8-bit layers):
    such a weight cannot be read as a matrix, changed or merged into, only called."""
    return any(
        isinstance(w := getattr(m, "weight", None), torch.Tensor) and not w.dtype.is_floating_point for m in module.modules()
    )


def adapter_factory(base: nn.Module) -> dict:
    """``device`` and ``dtype`` for new adapter tensors beside the layer ``base``: its weight's, float32 where that is packed.

    A quantized layer's adapter trains in float32 as QLoRA's does; the adapter casts its input to that and its result
    back to the activations' dtype, which for any other layer are its own, so nothing is cast there.
    """
    weight = base.weight
    return {"device": weight.device, "dtype": weight.dtype if weight.dtype.is_floating_point else torch.float32}


def match_targets(
    model: nn.Module, target_modules: list[str], types: tuple[type, ...] = LINEAR_TYPES, field: str = "target_modules"
) -> list[str]:
    """Names of modules of ``types`` selected by ``target_modules`` (the config field ``field``).

    An entry selects modules whose name equals it or ends with ``.<entry>`` (as peft does);
    an entry written ``re:<pattern>`` is a regular expression matching the whole name.

    Raises:
        ValueError: an invalid regular expression, or nothing matched; the message names ``field``
            and lists what could be targeted.
    """
    names = [n for n, m in model.named_modules() if isinstance(m, types)]
    try:
        patterns = [re.compile(t[3:]) for t in target_modules if t.startswith("re:")]
    except re.error as err:
        raise ValueError(f"{field}={list(target_modules)!r} holds an invalid regular expression ({err})") from err
    plain = [t for t in target_modules if not t.startswith("re:")]
    chosen = [n for n in names if any(n == t or n.endswith("." + t) for t in plain) or any(p.fullmatch(n) for p in patterns)]
    if not chosen:
        suffixes = sorted({n.rsplit(".", 1)[-1] for n in names})
        raise ValueError(
            f"{field}={list(target_modules)!r} matched no {'/'.join(t.__name__ for t in types)} module; "
            f"targetable names: {suffixes} (or 're:<regex>' over full names)"
        )
    return chosen


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where ``model.get_submodule(name)`` is."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def adapter_modules(model: nn.Module) -> Iterator[tuple[str, Adapter]]:
    """``(name, module)`` for every module implementing the :class:`Adapter` protocol."""
    for name, module in model.named_modules():
        if isinstance(module, Adapter):
            yield name, module


def adapter_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every adapter parameter of ``model`` by its full name."""
    params = {}
    for name, module in adapter_modules(model):
        for local in module.adapter_params():
            params[f"{name}.{local}" if name else local] = module.get_parameter(local)
    return params
