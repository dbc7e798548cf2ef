"""IA3: Infused Adapter by Inhibiting and Amplifying Inner Activations (Liu et al., 2022,
"Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning",
arXiv:2205.05638).

Three learned vectors rescale activations elementwise, in every block::

    attention:    softmax(Q (l_k ⊙ K)ᵀ / √d) (l_v ⊙ V)      K = W_k x + b_k,  V = W_v x + b_v
    feed-forward: (l_ff ⊙ γ(W_1 x)) W_2                   γ(W_1 x) is the input of the down projection
                                                          (act(gate) * up for Llama)

l_k and l_v scale the outputs of the key and value projections (bias included); l_ff scales
the input of the feed-forward output projection. All start at one, so the wrapped model equals
the base; only the vectors train. Merging folds each vector into its projection: l_k, l_v
multiply the output rows (and bias), l_ff multiplies the input columns; unmerging divides.

Where one projection computes q, k and v (GPT-2 ``c_attn`` [q | k | v], Phi-3 ``qkv_proj`` with
grouped-query widths, GPT-NeoX ``query_key_value`` laid out head by head), zoo scales its output
by l_k on the key positions and l_v on the value positions, the query positions fixed at one and
not trained, as the paper has no l_q; the layout comes from ``zoo.models.arch``. peft instead
trains one vector over the whole fused output, query part included.

Defaults: the paper's placement (keys, values, feed-forward inner activation) found by role via
``zoo.models.arch`` in any architecture (peft's table puts l on the query instead of the key for
Qwen2/3 and Gemma, and drops the value for OPT); lr 2e-2, the best of 1e-2/2e-2/3e-2/5e-2/1e-1 on ``zoo method=ia3`` with a random tiny-llama
(500 AdamW steps); on the default (pretrained) tiny-llama, seeds 0-2: 0.960 ± 0.009 from 0.512
zero-shot, with 384 parameters (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``). A
multiplicative vector near 1 needs far larger steps than an additive update starting at 0
(the paper uses 3e-3 on T0-3B). Weight decay would pull the vectors towards 0, not towards
the identity; the default trainer uses none.

peft's format (``PeftFormat("IA3")``): zoo's vectors (l_k, l_v, l_ff, or the pieces of a fused q/k/v projection) are
peft's one ``ia3_l`` per module, shaped (d_out, 1) where it scales the output and (1, d_in) where it scales the input
(peft's feedforward modules). The placement travels as module names, so zoo's role-based defaults and peft's per-family
table both convert exactly. On a fused q/k/v projection zoo fixes the query features at one, peft trains them too: a zoo
export writes those ones, and a peft adapter imports only where its query features are still 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo.inject import adapter_factory, linear_shape, match_targets, replace_module
from zoo.method import MethodConfig
from zoo.models.arch import Roles, blocks, roles_of
from zoo.peft_format import (
    PREFIX,
    ImportPlan,
    NotConvertible,
    PeftAdapter,
    PeftFormat,
    by_module,
    peft_matches,
    peft_modules,
    refuse_options,
)
from zoo.registry import register

if TYPE_CHECKING:
    import peft
    from transformers import PretrainedConfig

    from zoo.wrapped import ZooModel

PEFT_SUPPORTED = {"modules_to_save": (None, []), "exclude_modules": (None, [])}
"""peft options zoo's IA3 has no equivalent of, and the values at which they change nothing."""


@dataclass
class IA3Config(MethodConfig):
    target_modules: list[str] | None = None
    """Module names or suffixes (``k_proj``), or ``re:<regex>``; None: every block's key, value and feed-forward output projections."""
    feedforward_modules: list[str] | None = None
    """Targets whose INPUT is scaled (l_ff); the others have their output scaled. None: the feed-forward output projections."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("target_modules", "feedforward_modules"):
            value = getattr(self, field)
            if value is not None and (len(value) == 0 or not all(isinstance(t, str) and t for t in value)):
                raise ValueError(f"{field} must be a non-empty list of module names, or None for the default; got {value!r}")


class IA3Linear(nn.Module):
    """A frozen linear map whose output (or input) is rescaled by learned vectors.

    ``parts`` names the pieces of the scaling vector in order, with their widths; a piece
    named ``None`` is a fixed block of ones (the query part of a fused q/k/v projection).
    ``order``, where given, places the concatenated pieces: feature j is scaled by ``cat(parts)[order[j]]``
    (a fused projection whose q, k and v are interleaved head by head).
    """

    def __init__(self, base: nn.Module, parts: list[tuple[str | None, int]], on_input: bool, order: torch.Tensor | None = None):
        super().__init__()
        d_in, d_out = linear_shape(base)
        if sum(width for _, width in parts) != (d_in if on_input else d_out):
            raise ValueError(
                f"scaling parts {parts} do not cover the {'input' if on_input else 'output'} width of {type(base).__name__}"
            )
        self.base = base
        self.on_input = on_input
        self.merged = False
        self._parts: list[str] = []
        for i, (name, width) in enumerate(parts):
            ones = torch.ones(width, **adapter_factory(base))  # float32 beside a quantized (packed) weight
            if name is None:
                name = f"fixed_ones_{i}"
                self.register_buffer(name, ones, persistent=False)  # not trained, not saved: it is always one
            else:
                self.register_parameter(name, nn.Parameter(ones))
            self._parts.append(name)
        self.register_buffer("order", None if order is None else order.to(base.weight.device), persistent=False)

    def adapter_params(self) -> list[str]:
        return [name for name in self._parts if name in self._parameters]

    def scale(self) -> torch.Tensor:
        if len(self._parts) == 1:  # the common case: no copy, no extra autograd node per call
            return getattr(self, self._parts[0])
        scale = torch.cat([getattr(self, name) for name in self._parts])  # (d_in,) or (d_out,)
        return scale if self.order is None else scale[self.order]

    def split_scale(self, scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """The trained pieces whose :meth:`scale` is ``scale`` (a whole vector, as peft stores one).

        Raises:
            ValueError: ``scale`` is not 1 where this module fixes it at one (the queries of a fused projection).
        """
        joined = scale if self.order is None else scale[self.order.argsort()]
        widths = [getattr(self, name).numel() for name in self._parts]
        pieces = dict(zip(self._parts, joined.split(widths)))
        for name in self._parts:
            if name not in self._parameters and not bool((pieces.pop(name) == 1).all()):
                raise ValueError(
                    "the scaling vector is not 1 on the query features of this fused q/k/v projection, "
                    "which zoo's IA3 fixes at one (it has no l_q)"
                )
        return pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base(x)
        # the casts back to the activations' dtype do nothing unless the base is quantized (float32 vectors)
        if self.on_input:
            return self.base((x * self.scale()).to(x.dtype))  # x: (B, T, d_in)
        out = self.base(x)
        return (out * self.scale()).to(out.dtype)  # (B, T, d_out)

    def _fold(self, factor: torch.Tensor) -> None:
        """Multiply the base weight (and, for output scaling, the bias) by ``factor``."""
        out_axis = 1 if isinstance(self.base, Conv1D) else 0  # Conv1D stores its weight as (d_in, d_out)
        axis = 1 - out_axis if self.on_input else out_axis
        self.base.weight.data *= factor.unsqueeze(1 - axis)
        if not self.on_input and self.base.bias is not None:
            self.base.bias.data *= factor

    def merge(self) -> None:
        self._fold(self.scale().detach())
        self.merged = True

    def unmerge(self) -> None:
        scale = self.scale().detach()
        if (scale == 0).any():
            raise ValueError("cannot unmerge IA3: a scaling entry is exactly 0, so the base weight it zeroed is lost")
        self._fold(1.0 / scale)
        self.merged = False


def _roles(found: Roles, model: nn.Module) -> dict[str, set[str]]:
    """Full module name -> the roles ({"k", "v", "ff"}) it plays in its block."""
    roles: dict[str, set[str]] = {}
    for block_name, _ in blocks(model):
        for role, path in zip(("k", "v", "ff"), found.require("key", "value", "ff_out")):
            roles.setdefault(f"{block_name}.{path}", set()).add(role)
    return roles


def _fused_parts(found: Roles, width: int) -> tuple[list[tuple[str | None, int]], torch.Tensor | None]:
    """Pieces [1 (queries) | l_k | l_v] of a fused q/k/v output and where they go in it."""
    q, k, v = found.qkv_indices(width)
    position = torch.cat([q, k, v])  # piece index -> output feature
    order = None if torch.equal(position, torch.arange(width, device=position.device)) else position.argsort()
    return [(None, len(q)), ("l_k", len(k)), ("l_v", len(v))], order


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
    config = {
        "target_modules": sorted(targets),
        "feedforward_modules": sorted(feedforward),
        "fan_in_fan_out": fan_in_fan_out,
        "init_ia3_weights": True,
    }
    return PeftAdapter(config, tensors)


def import_ia3(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    source = str(folder)
    refuse_options(adapter.config, PEFT_SUPPORTED, source)
    held = by_module(adapter.tensors, ("ia3_l",), source)
    vectors = {name: parts["ia3_l"] for name, parts in peft_modules(base, adapter.config, held, source).items()}
    feedforward = sorted(n for n in vectors if peft_matches(n, adapter.config.get("feedforward_modules")))
    cfg = IA3Config(target_modules=sorted(vectors), feedforward_modules=feedforward or None)

    def weights(model: ZooModel) -> dict[str, torch.Tensor]:
        found = {}
        for name, module in model.model.named_modules():
            if not isinstance(module, IA3Linear):
                continue
            if module.on_input != (name in feedforward):  # only where peft names no feedforward module: zoo's default then
                raise NotConvertible(
                    f"{source}: peft scales the output of {name!r} and names no feedforward_modules; zoo's IA3 "
                    "then scales the input of every feed-forward output projection (its default), so an "
                    "adapter scaling one's output does not convert"
                )
            try:
                weight = module.base.weight
                pieces = module.split_scale(vectors[name].flatten().to(device=weight.device, dtype=weight.dtype))
            except ValueError as err:
                raise NotConvertible(
                    f"{source}: {name}: {err}; an IA3 adapter trained on this fused projection by peft cannot be imported"
                ) from err
            found.update({f"{name}.{piece}": value for piece, value in pieces.items()})
        return found

    return ImportPlan(cfg, weights)


def peft_equivalent(cfg: IA3Config, config: PretrainedConfig) -> peft.PeftConfig:
    """peft's IA3 of ``cfg``'s size on a Llama-style model (keys, values and the feed-forward input, zoo's default there)."""
    import peft  # only here: zoo itself never needs peft

    return peft.IA3Config(
        target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"], task_type="CAUSAL_LM"
    )


@register(
    "ia3",
    config=IA3Config,
    identity_at_init=True,
    mergeable=True,
    quantized_base=True,
    learning_rate=2e-2,
    peft=PeftFormat("IA3", export=export_ia3, import_=import_ia3, equivalent_config=peft_equivalent),
)
def wrap_ia3(model: nn.Module, cfg: IA3Config) -> nn.Module:
    found = roles_of(model)
    roles = _roles(found, model)
    default_ff = [name for name, r in roles.items() if "ff" in r]
    targets = match_targets(model, cfg.target_modules) if cfg.target_modules else list(roles)
    feedforward = set(
        match_targets(model, cfg.feedforward_modules, field="feedforward_modules") if cfg.feedforward_modules else default_ff
    )
    if cfg.feedforward_modules and not feedforward <= set(targets):
        raise ValueError(
            f"feedforward_modules {cfg.feedforward_modules!r} select modules that are not targeted: {sorted(feedforward - set(targets))[:3]}"
        )
    fused = found.fused_qkv
    for name in targets:
        base = model.get_submodule(name)
        d_in, d_out = linear_shape(base)
        role = roles.get(name, set())
        if name in feedforward:
            if fused and {"k", "v"} & role:
                raise ValueError(f"{name} is the fused q/k/v projection; it cannot be a feedforward module")
            parts, on_input, order = [("l_ff", d_in)], True, None
        elif fused and {"k", "v"} <= role:
            (parts, order), on_input = _fused_parts(found, d_out), False
        else:
            label = "l_k" if role == {"k"} else "l_v" if role == {"v"} else "l"
            parts, on_input, order = [(label, d_out)], False, None
        replace_module(model, name, IA3Linear(base, parts, on_input, order))
    return model
