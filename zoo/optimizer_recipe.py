"""A method's optimiser, declared where the method is registered (``zoo.register(..., optimizer=OptimizerRecipe(...))``).

Most methods train their parameters with AdamW at one learning rate and declare nothing. A method
whose recipe lies in the optimiser declares it: LoRA+ trains B at a higher rate than A (its own
parameter groups), GaLore steps full-rank weights with an optimiser that projects their gradients
to a low rank (its own optimiser class). The trainer builds what the spec declares, on one process
and under accelerate (zoo.training.optimizer): ``groups(model, cfg, lr)``, checked to hold exactly
the parameters that train, each once, then ``optimizer(groups, weight_decay=trainer.weight_decay)``.
This module imports nothing of zoo above it (the types of its annotations are imported for type
checkers only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from torch import nn

    from zoo.method import MethodConfig

ParamGroups = list[dict[str, Any]]
"""torch optimiser parameter groups: each a dict with ``params`` (a list of tensors), ``lr`` and optionally more settings."""


@dataclass(frozen=True)
class OptimizerRecipe:
    """How a method's parameters are stepped: their parameter groups and the optimiser."""

    groups: Callable[[nn.Module, MethodConfig, float], ParamGroups] | None = None
    """``groups(model, cfg, lr)``: the method's trainable parameters as torch parameter groups, each with its ``lr``
    (worked out from ``lr``, the run's resolved rate for the method: zoo.training.learning_rate) and any setting the
    optimiser reads per group (its ``weight_decay``, GaLore's ``rank``). ``model`` is what the method's wrap function
    returned, ``cfg`` the config it wrapped with. None: one group of every trainable parameter at ``lr``."""
    optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.AdamW
    """A torch optimiser class, or a factory, called as ``optimizer(groups, weight_decay=...)``; a group that sets no
    ``weight_decay`` of its own takes ``trainer.weight_decay``. A factory is where an optional package is imported
    (and where its absence is explained, with the command that installs it)."""
