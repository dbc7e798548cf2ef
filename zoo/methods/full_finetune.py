"""Full fine-tuning: every weight of the base model trains — the upper baseline of every comparison.

Under the zoo contract the base model stays as it was loaded and the method brings its own
parameters, so full fine-tuning is written as a trainable difference on every base tensor::

    W_eff = W + ΔW        ΔW = 0 at init; one ΔW per base parameter (tied weights share one)

∂L/∂ΔW = ∂L/∂W, so AdamW takes exactly the steps it would take on W itself: this *is* full
fine-tuning, except that weight decay pulls W_eff towards the pretrained W instead of
towards 0. What it buys: the base stays intact (its fingerprint still matches, merge and
unmerge are W ± ΔW, the structural analysis can compare tuned and base weights); what it
costs: one more copy of the weights in memory, so the parameter count doubles (trainable =
the base model's size). ``zoo.save_adapter`` writes every ΔW: a file as large as the model.
ΔW enters through ``torch.nn.utils.parametrize``, so ``forward``, ``generate`` and every
architecture work unchanged. The default learning rate (1e-3) learns the built-in synthetic
task (0.999 ± 0.002 from 0.512 zero-shot on the default tiny-llama, seeds 0-2 (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``)); a large pretrained model
wants far less (1e-5 to 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from zoo.method import MethodConfig
from zoo.registry import register


@dataclass
class FullFinetuneConfig(MethodConfig):
    """No options: every parameter of the base model trains."""


class WeightDelta(nn.Module):
    """The parametrization ``W -> W + ΔW`` of one base tensor."""

    def __init__(self, original: nn.Parameter):
        super().__init__()
        self.delta = nn.Parameter(torch.zeros_like(original))
        self.__dict__["original"] = original  # not registered: it stays the base model's parameter
        self.merged = False

    def adapter_params(self) -> list[str]:
        return ["delta"]

    def forward(self, original: Tensor) -> Tensor:
        return original if self.merged else original + self.delta

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.original.add_(self.delta)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.original.sub_(self.delta)
            self.merged = False


@register("full_finetune", config=FullFinetuneConfig, identity_at_init=True, mergeable=True, learning_rate=1e-3)
def wrap_full_finetune(model: nn.Module, cfg: FullFinetuneConfig) -> nn.Module:
    deltas: dict[int, WeightDelta] = {}  # by the id of the base tensor: tied weights get one shared ΔW
    for module in list(model.modules()):
        for name, param in list(module.named_parameters(recurse=False)):
            delta = deltas.setdefault(id(param), WeightDelta(param))
            parametrize.register_parametrization(module, name, delta)
    return model
