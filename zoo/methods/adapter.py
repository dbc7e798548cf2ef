"""Bottleneck adapters (Houlsby et al., 2019, arXiv:1902.00751; Pfeiffer et al., 2020, arXiv:2005.00247).

A small residual bottleneck is inserted on the output of a sub-layer's output projection,
before the block adds its skip connection (and, in post-LN models such as BERT, normalises)::

    x ──► W_out ──► h ───────────────────────────────┐
                    │                               (+) ──► h + up(act(down(h))) ──► dropout/residual/LN
                    └─► down ─► act ─► up ──────────┘
                        (d -> b)       (b -> d), up = 0 at init

placement="houlsby" puts one adapter after the attention output projection and one after the
feed-forward output projection of every block (the paper's Figure 2); placement="pfeiffer"
keeps only the feed-forward one (Pfeiffer et al.'s AdapterFusion configuration), half as many.
Only down and up (weights and biases) train. The up-projection starts at zero so the wrapped
model equals the base; down keeps nn.Linear's default init so up receives a gradient at once.
The nonlinearity makes the adapter impossible to fold into the base weights: not mergeable.

``layer_norm=True`` (the default) normalises the adapter's input, down(LN(h)), the
``ln_before`` variant of AdapterHub's configurations; the residual still adds to h itself, so
the wrapped model equals the base at init either way. ``layer_norm=False`` is Houlsby's exact
formula.

Defaults: reduction factor 16 and relu (Pfeiffer et al.), Houlsby placement (the paper's), and
lr 3e-3, the best of 1e-3/3e-3/1e-2/3e-2 on ``zoo method=adapter`` with a *random* tiny-llama
(500 AdamW steps). The input LayerNorm is on by default because of that measurement: without
it the adapter learned little there (accuracy ~0.52), since the sub-layer outputs of a randomly
initialised model are tiny (std-0.02 weights) and Adam needs many steps to grow the
projections; with it, ~0.61. On the default (pretrained) tiny-llama, seeds 0-2: 0.979 ± 0.008
from 0.512 zero-shot (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``).

AdapterHub (``adapters`` 1.3) is the oracle: tests/test_adapter_adapterhub.py matches its outputs on a tiny BERT within
1e-5 (the fixture is written by tests/fixtures/adapterhub/make_fixture.py in AdapterHub's own environment). zoo covers
``DoubleSeqBnConfig`` (Houlsby; ``activation="silu"`` for its swish) with ``ln_before`` off or on (``layer_norm``), and
``SeqBnConfig(original_ln_before=False)`` (``placement="pfeiffer"``), at AdapterHub's ``scaling=1.0``,
``residual_before_ln=True``, ``original_ln_after=True``, sequential, and without gating, ``ln_after``, PHM layers
(Compacter), invertible adapters, ``leave_out`` or adapter dropout. It does not cover AdapterHub's default
``SeqBnConfig`` (``original_ln_before=True``: the adapter reads LayerNorm(h + x), and the block's norm runs again after
it), ``residual_before_ln=False``/``"post_add"``, ``adapter_residual_before_ln``, ``ln_after``, another or learned
``scaling``, ``use_gating``, parallel adapters (``ParBnConfig``), PHM layers, invertible adapters, a ``leave_out`` of
layers, adapter dropout and per-layer reduction factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from zoo.inject import adapter_factory, linear_shape, replace_module
from zoo.method import MethodConfig
from zoo.models.arch import blocks, roles_of
from zoo.registry import register

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh}
PLACEMENTS = ("houlsby", "pfeiffer")


@dataclass
class AdapterConfig(MethodConfig):
    bottleneck_size: int | None = None
    """Width b of the bottleneck. When set it takes precedence over ``reduction_factor``."""
    reduction_factor: float | None = 16.0
    """d / b: the bottleneck is round(d / reduction_factor) wide; used when ``bottleneck_size`` is None."""
    activation: str = "relu"
    """Nonlinearity between the projections: one of relu, gelu, silu, tanh."""
    placement: str = "houlsby"
    """``houlsby``: after attention and feed-forward; ``pfeiffer``: after feed-forward only."""
    layer_norm: bool = True
    """Normalise the adapter's input (trainable LayerNorm, AdapterHub's ``ln_before``); False: Houlsby's exact formula."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bottleneck_size is None and self.reduction_factor is None:
            raise ValueError("set bottleneck_size (an int) or reduction_factor (d / bottleneck); both are None")
        if self.bottleneck_size is not None and self.bottleneck_size < 1:
            raise ValueError(f"bottleneck_size must be a positive integer or None, got {self.bottleneck_size!r}")
        if self.reduction_factor is not None and not self.reduction_factor > 0:
            raise ValueError(f"reduction_factor must be a positive number or None, got {self.reduction_factor!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is unknown; valid: {sorted(ACTIVATIONS)}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement {self.placement!r} is unknown; valid: {list(PLACEMENTS)}")

    def bottleneck_for(self, width: int) -> int:
        """The bottleneck width for a sub-layer output of ``width`` features.

        Raises:
            ValueError: ``reduction_factor`` leaves less than one feature.
        """
        if self.bottleneck_size is not None:
            return self.bottleneck_size
        size = round(width / self.reduction_factor)
        if size < 1:
            raise ValueError(
                f"reduction_factor={self.reduction_factor!r} on width {width} leaves a bottleneck of {size}; use a factor <= {width}"
            )
        return size


class BottleneckAdapter(nn.Module):
    """A frozen output projection followed by its residual bottleneck adapter."""

    def __init__(self, base: nn.Module, bottleneck_size: int, activation: str, layer_norm: bool):
        super().__init__()
        width = linear_shape(base)[1]
        factory = adapter_factory(base)  # float32 beside a quantized (packed) weight, which is never read
        self.base = base
        self.norm = nn.LayerNorm(width, **factory) if layer_norm else None
        self.down = nn.Linear(width, bottleneck_size, **factory)
        self.up = nn.Linear(bottleneck_size, width, **factory)
        nn.init.zeros_(self.up.weight)  # the residual branch is zero: the wrapped model equals the base
        nn.init.zeros_(self.up.bias)
        self.activation = activation

    def adapter_params(self) -> list[str]:
        norm = ["norm.weight", "norm.bias"] if self.norm is not None else []
        return [*norm, "down.weight", "down.bias", "up.weight", "up.bias"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)  # (B, T, d)
        z = h.to(self.down.weight.dtype)  # the casts do nothing unless the base is quantized (a float32 adapter)
        z = self.norm(z) if self.norm is not None else z
        return h + self.up(ACTIVATIONS[self.activation](self.down(z))).to(h.dtype)  # (B, T, d) via (B, T, b)


@register("adapter", config=AdapterConfig, identity_at_init=True, mergeable=False, quantized_base=True, learning_rate=3e-3)
def wrap_adapter(model: nn.Module, cfg: AdapterConfig) -> nn.Module:
    roles = roles_of(model).require(*(("attn_out", "ff_out") if cfg.placement == "houlsby" else ("ff_out",)))
    for block_name, _ in blocks(model):
        for path in roles:
            name = f"{block_name}.{path}"
            base = model.get_submodule(name)
            size = cfg.bottleneck_for(linear_shape(base)[1])
            replace_module(model, name, BottleneckAdapter(base, size, cfg.activation, cfg.layer_norm))
    return model
