"""The optimiser a run trains with, built from its method's spec, and what the run's record says of it.

A method's spec may declare its optimiser (:class:`zoo.OptimizerRecipe`): its parameter groups and their
rates (LoRA+), or its optimiser class (GaLore). :func:`method_groups` asks the recipe for the groups
and checks that they hold exactly the parameters that train, each once; :func:`optimizer_of` is the
class (AdamW where the spec declares none, and for a baseline's head); :func:`build_optimizer` builds
it over the run's groups (a classification head's group too) for :func:`zoo.training.loop.train`,
with what the record keeps: the optimiser's class, each group's size and settings, its state's bytes
after the first step and, for an optimiser other than AdamW, AdamW's on the same gradients
(zoo.training.optimizer_state).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch

from zoo.method import MethodSpec
from zoo.optimizer_recipe import ParamGroups
from zoo.training.optimizer_state import StateMemory
from zoo.wrapped import ZooModel

MakeOptimizer = Callable[..., torch.optim.Optimizer]
RECORDED = ("lr", "weight_decay")
"""Settings of every group the record keeps, beside those the method's groups set themselves (GaLore's rank)."""


def optimizer_of(spec: MethodSpec | None) -> MakeOptimizer:
    """The optimiser class (or factory) of ``spec``; AdamW for a spec that declares none, or for no method (a baseline)."""
    return spec.optimizer.optimizer if spec is not None and spec.optimizer is not None else torch.optim.AdamW


def method_groups(model: ZooModel, lr: float) -> ParamGroups:
    """``model``'s trainable parameters as parameter groups: its spec's recipe's, else one group at ``lr``.

    Raises:
        ValueError: the recipe's groups leave out a trainable parameter, hold a frozen one (or another module's), or hold
            one twice, naming them.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    recipe = model.spec.optimizer
    if recipe is None or recipe.groups is None:
        return [{"params": trainable, "lr": lr}]
    groups = [{**group, "params": list(group["params"])} for group in recipe.groups(model.model, model.method_config, lr)]
    grouped = Counter(id(p) for group in groups for p in group["params"])
    names, wanted = {id(p): name for name, p in model.model.named_parameters()}, {id(p) for p in trainable}
    twice = sorted(names.get(i, "a tensor outside the model") for i, count in grouped.items() if count > 1)
    missing = sorted(names[i] for i in wanted - grouped.keys())
    extra = sorted(names.get(i, "a tensor outside the model") for i in grouped.keys() - wanted)
    if twice or missing or extra:
        raise ValueError(
            f"method {model.method!r}'s optimizer groups must hold each of its trainable parameters once; "
            f"twice: {twice[:5]}, left out: {missing[:5]}, not trainable: {extra[:5]}"
        )
    return [group for group in groups if group["params"]]


@dataclass
class RunOptimizer:
    """The optimiser a run steps, and what its record keeps of it."""

    optimizer: torch.optim.Optimizer
    settings: dict
    memory: StateMemory

    def record(self) -> dict:
        """``name``, ``groups`` (each: ``tensors``, ``parameters``, ``lr``, ``weight_decay`` and the group's own settings),
        ``state_bytes`` and, for an optimiser other than AdamW, ``adamw_state_bytes`` (after the first step)."""
        return {**self.settings, **self.memory.figures}


def build_optimizer(groups: ParamGroups, make: MakeOptimizer, weight_decay: float) -> RunOptimizer:
    """``make(groups, weight_decay=weight_decay)``, its settings and a meter of its state's memory.

    Raises:
        ValueError: no parameters, or a group without an ``lr``.
    """
    if not any(group.get("params") for group in groups) or any(group.get("lr") is None for group in groups):
        described = [{"params": len(list(g.get("params", []))), "lr": g.get("lr")} for g in groups]
        raise ValueError(f"nothing to train: give parameter groups with parameters and an lr each, got {described}")
    own = [set(group) - {"params"} for group in groups]  # before the optimiser fills in its defaults
    optimizer = make(groups, weight_decay=weight_decay)
    described = [
        {
            "tensors": len(group["params"]),
            "parameters": sum(p.numel() for p in group["params"]),
            **{key: _plain(group[key]) for key in sorted(set(RECORDED) | keys) if key in group},
        }
        for group, keys in zip(optimizer.param_groups, own)
    ]
    kind = type(optimizer)
    settings = {"name": f"{kind.__module__}.{kind.__qualname__}", "groups": described}
    return RunOptimizer(optimizer, settings, StateMemory(optimizer, compare_with_adamw=kind is not torch.optim.AdamW))


def _plain(value):
    """A group's setting as JSON holds it (a tuple as a list)."""
    return list(value) if isinstance(value, tuple) else value
