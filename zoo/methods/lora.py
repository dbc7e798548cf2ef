"""LoRA: Low-Rank Adaptation (Hu et al., 2021, arXiv:2106.09685).

Each targeted linear map gets a trainable low-rank update beside its frozen weight::

    x ──► W x ─────────────┐
    │                      (+) ──► h = W x + (alpha / r) · B A x
    └─► dropout ─► A ─► B ─┘      A: (r, d_in), B: (d_out, r), B = 0 at init

B starts at zero so the wrapped model equals the base; merging adds (alpha/r)·B·A to W.
Works on ``nn.Linear``, GPT-2's ``Conv1D`` (whose weight is stored transposed) and bitsandbytes' 4- and 8-bit
layers (QLoRA, ``model.quantization``): A and B are then float32, and merging is refused.
Defaults (r=8, alpha=16, query and value projections, lr 5e-3; the placement follows the
paper) learn the built-in default task in seconds: 0.971 ± 0.006 from 0.512 zero-shot on the
default (pretrained) tiny-llama, seeds 0-2 (``benchmarks/results/default_task/RESULTS.md``, ``python benchmarks/suite.py --profile default``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo.inject import adapter_factory, linear_shape, match_targets, replace_module
from zoo.method import MethodConfig
from zoo.models.arch import query_value_targets
from zoo.registry import register


@dataclass
class LoRAConfig(MethodConfig):
    r: int = 8
    """Rank of the update B·A."""
    alpha: float = 16.0
    """Scale numerator: the update is multiplied by alpha / r."""
    dropout: float = 0.0
    """Dropout on the input of A during training."""
    target_modules: list[str] | None = None
    """Module names or suffixes (``q_proj``), or ``re:<regex>``; None: every block's query and value projections
    (one fused q/k/v projection where the model has one), found by :func:`zoo.models.arch.roles_of`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"r must be a positive integer, got {self.r!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.target_modules is not None and len(self.target_modules) == 0:
            raise ValueError("target_modules is empty; give module names, or None for the default")


class LoRALinear(nn.Module):
    """A frozen linear map plus its low-rank update."""

    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float):
        super().__init__()
        d_in, d_out = linear_shape(base)
        factory = adapter_factory(base)  # float32 beside a quantized (packed) weight, which is never read
        self.base = base
        self.lora_A = nn.Parameter(torch.empty(r, d_in, **factory))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear inits a (d_in -> r) map
        self.scaling = alpha / r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def adapter_params(self) -> list[str]:
        return ["lora_A", "lora_B"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        update = F.linear(F.linear(self.dropout(x.to(self.lora_A.dtype)), self.lora_A), self.lora_B) * self.scaling
        return out + update.to(out.dtype)  # the casts do nothing unless the base is quantized

    def delta_weight(self) -> torch.Tensor:
        """The update in the base weight's own layout."""
        delta = (self.lora_B @ self.lora_A) * self.scaling  # (d_out, d_in)
        return delta.T if isinstance(self.base, Conv1D) else delta

    def merge(self) -> None:
        self.base.weight.data += self.delta_weight()
        self.merged = True

    def unmerge(self) -> None:
        self.base.weight.data -= self.delta_weight()
        self.merged = False


@register("lora", config=LoRAConfig, identity_at_init=True, mergeable=True, quantized_base=True, learning_rate=5e-3)
def wrap_lora(model: nn.Module, cfg: LoRAConfig) -> nn.Module:
    targets = cfg.target_modules or query_value_targets(model)
    for name in match_targets(model, targets):
        replace_module(model, name, LoRALinear(model.get_submodule(name), cfg.r, cfg.alpha, cfg.dropout))
    return model


def export_peft(model: nn.Module, path: str | Path) -> Path:
    """Write a zoo LoRA adapter in peft's format, for ``peft.PeftModel.from_pretrained`` (see :func:`zoo.export_peft`)."""
    from zoo.peft_interchange import export_peft as export
    from zoo.wrapped import ZooModel

    if not isinstance(model, ZooModel) or model.method != "lora":
        raise TypeError(f"export_peft needs a model wrapped with zoo's 'lora', got {getattr(model, 'method', type(model).__name__)!r}")
    return export(model, path)
