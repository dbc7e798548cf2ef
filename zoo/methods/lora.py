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
default (pretrained) tiny-llama, seeds 0-2 (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``).

peft's format (``PeftFormat("LORA")``): zoo's ``lora_A``/``lora_B`` are peft's ``lora_A.weight``/``lora_B.weight``,
same layout. Both scale the update by ``alpha / r``; peft's rank-stabilised variant (``use_rslora``, ``alpha / √r``)
imports exactly as zoo's ``alpha = lora_alpha · √r``. GPT-2's Conv1D needs no conversion: both keep A as (r, d_in) and
B as (d_out, r) (peft's ``fan_in_fan_out`` only describes the base weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo.inject import adapter_factory, linear_shape, match_targets, replace_module
from zoo.method import MethodConfig
from zoo.models.arch import query_value_targets
from zoo.peft_format import (
    PREFIX,
    ImportPlan,
    NotConvertible,
    PeftAdapter,
    PeftFormat,
    by_module,
    check_numbers,
    peft_modules,
    refuse_options,
)
from zoo.registry import register

if TYPE_CHECKING:
    import peft
    from transformers import PretrainedConfig

    from zoo.wrapped import ZooModel

PEFT_SUPPORTED = {
    "use_dora": (False,),
    "bias": ("none",),
    "lora_bias": (False,),
    "rank_pattern": ({}, None),
    "alpha_pattern": ({}, None),
    "layer_replication": (None,),
    "modules_to_save": (None, []),
    "use_qalora": (False,),
    "alora_invocation_tokens": (None,),
    "target_parameters": (None, []),
}
"""peft options zoo's LoRA has no equivalent of, and the values at which they change nothing."""


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


def export_lora(model: ZooModel) -> PeftAdapter:
    tensors, targets, fan_in_fan_out = {}, [], False
    for name, module in model.model.named_modules():
        if isinstance(module, LoRALinear):
            targets.append(name)
            fan_in_fan_out |= isinstance(module.base, Conv1D)
            tensors[f"{PREFIX}{name}.lora_A.weight"] = module.lora_A
            tensors[f"{PREFIX}{name}.lora_B.weight"] = module.lora_B
    cfg: LoRAConfig = model.method_config
    config = {
        "r": cfg.r,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "target_modules": sorted(targets),
        "fan_in_fan_out": fan_in_fan_out,
        "bias": "none",
    }
    return PeftAdapter(config, tensors)


def import_lora(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    config, source = adapter.config, str(folder)
    refuse_options(config, PEFT_SUPPORTED, source)
    check_numbers(config, {"r": int, "lora_alpha": float, "lora_dropout": float}, source)
    held = by_module(adapter.tensors, ("lora_A.weight", "lora_B.weight"), source)
    modules = peft_modules(base, config, held, source)
    r = config.get("r", 8)
    for name, pair in modules.items():
        if set(pair) != {"lora_A.weight", "lora_B.weight"} or pair["lora_A.weight"].shape[0] != r:
            raise NotConvertible(
                f"{source}: module {name!r} does not hold an A of rank r={r} and a B; found "
                f"{ {k: tuple(v.shape) for k, v in pair.items()} }"
            )
    alpha = float(config.get("lora_alpha", 8))
    cfg = LoRAConfig(
        r=r,
        alpha=alpha * math.sqrt(r) if config.get("use_rslora") else alpha,
        dropout=float(config.get("lora_dropout", 0.0)),
        target_modules=sorted(modules),
    )
    weights = {f"{name}.lora_{part}": pair[f"lora_{part}.weight"] for name, pair in modules.items() for part in "AB"}
    return ImportPlan(cfg, lambda _: weights)


def peft_equivalent(cfg: LoRAConfig, config: PretrainedConfig) -> peft.PeftConfig:
    """peft's LoRA of ``cfg``'s size on a Llama-style model (its query and value projections, zoo's default there)."""
    import peft  # only here: zoo itself never needs peft

    return peft.LoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )


@register(
    "lora",
    config=LoRAConfig,
    identity_at_init=True,
    mergeable=True,
    quantized_base=True,
    learning_rate=5e-3,
    peft=PeftFormat("LORA", export=export_lora, import_=import_lora, equivalent_config=peft_equivalent),
)
def wrap_lora(model: nn.Module, cfg: LoRAConfig) -> nn.Module:
    targets = cfg.target_modules or query_value_targets(model)
    for name in match_targets(model, targets):
        replace_module(model, name, LoRALinear(model.get_submodule(name), cfg.r, cfg.alpha, cfg.dropout))
    return model
