"""GIFT: Generative Interpretable Fine-Tuning (Savadikar, Song & Wu, 2023, arXiv:2312.00700).

Every selected frozen weight ω is modulated by ONE small pair θ = (φ, ψ) shared across layers::

    ω̂ = ω · (I + φ·ψ)          φ: (d_in, r), ψ: (r, d_in), ψ = 0 at init

zoo computes it in activation space, before the frozen layer, so no d×d matrix is built::

    x ──► x + (x·φ)·ψ ──► frozen layer ──► (x + xφψ)·Wᵀ + b      (x a row vector, (B, T, d_in))
          └ x·φ: (B, T, r), the interpretable "first projection"

With PyTorch's row-vector activations a Linear with weight W (d_out, d_in) thus uses
W·(I + φψ)ᵀ; that is the paper's ω·(I + φ'ψ') with φ' = ψᵀ, ψ' = φᵀ — the same family.
What trains: θ only, one per input width and (``share="all"``) for all targets, or
(``share="per_type"``) one per module-name suffix (all ``q_proj`` share one, all ``v_proj``
another). Targets of different input widths cannot share a (d_in, r) matrix: each width
gets its own θ. The count therefore does not grow with depth. The θs live once, in
``model.gift_thetas``; the wrapped layers only reference them. Mergeable: merging adds
W·(φψ)ᵀ to each weight and unmerging subtracts the same tensor.

``gift_clusters`` returns x·φ at one targeted layer and each token's arg-max component,
the paper's clustering reading of the first projection, taken here over tokens.
Defaults: r=8 (the paper uses small ranks) on the query and value projections, as for
LoRA. lr 1e-2: on the built-in task with a random tiny-llama (500 steps, batch 16) it reached
eval accuracy 0.63 and 0.64 (seeds 0, 1), against 0.62/0.59 at 5e-3, 0.57 at 2e-2 and
0.55-0.57 at 1e-3-2e-3; r=16 did not help (0.59). On the default (pretrained) tiny-llama,
seeds 0-2: 0.939 ± 0.014 from 0.512 zero-shot (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from zoo.inject import linear_shape, match_targets, replace_module
from zoo.method import MethodConfig
from zoo.models.arch import query_value_targets
from zoo.registry import register

SHARE_MODES = ("all", "per_type")
THETAS = "gift_thetas"


@dataclass
class GIFTConfig(MethodConfig):
    r: int = 8
    """Rank of φ·ψ: the width of the interpretable projection x·φ."""
    share: str = "all"
    """``all``: one θ for every target; ``per_type``: one θ per module-name suffix. Either way,
    targets of different input widths get one θ per width."""
    target_modules: list[str] | None = None
    """Module names or suffixes (``q_proj``), or ``re:<regex>``; None: every block's query and value projections, as for LoRA."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r < 1:
            raise ValueError(f"r must be a positive integer, got {self.r!r}")
        if self.share not in SHARE_MODES:
            raise ValueError(f"share must be one of {list(SHARE_MODES)}, got {self.share!r}")
        if self.target_modules is not None and len(self.target_modules) == 0:
            raise ValueError("target_modules is empty; give module names, or None for the default")


class GIFTTheta(nn.Module):
    """One shared θ = (φ, ψ) and the layers that use it (which merge through it)."""

    def __init__(self, d_in: int, r: int, like: Tensor):
        super().__init__()
        self.phi = nn.Parameter(torch.empty(d_in, r, device=like.device, dtype=like.dtype))
        # ψ = 0 makes x + xφψ = x exactly: the wrapped model equals the base at init.
        self.psi = nn.Parameter(torch.zeros(r, d_in, device=like.device, dtype=like.dtype))
        bound = d_in**-0.5  # nn.Linear's default range for a (d_in -> r) map
        nn.init.uniform_(self.phi, -bound, bound)
        self.layers: list[GIFTLinear] = []

    def adapter_params(self) -> list[str]:
        return ["phi", "psi"]

    def merge(self) -> None:
        for layer in self.layers:
            layer.merge()

    def unmerge(self) -> None:
        for layer in self.layers:
            layer.unmerge()


class GIFTLinear(nn.Module):
    """A frozen linear map whose input is first multiplied by (I + φψ)."""

    def __init__(self, base: nn.Module, theta: GIFTTheta):
        super().__init__()
        self.base = base
        # Deliberately not registered as a submodule: the shared parameters must live (and be
        # saved, counted and trained) once, in model.gift_thetas.
        self.__dict__["theta"] = theta
        self.merged = False
        self._delta: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:  # x: (..., d_in)
        if self.merged:
            return self.base(x)
        return self.base(x + (x @ self.theta.phi) @ self.theta.psi)

    def delta_weight(self) -> Tensor:
        """The change of the base weight, in its own layout."""
        phi, psi = self.theta.phi.float(), self.theta.psi.float()
        w = self.base.weight.float()
        if isinstance(self.base, Conv1D):  # weight (d_in, d_out): y = x·W, so W -> (I + φψ)·W
            return phi @ (psi @ w)
        return (w @ psi.T) @ phi.T  # weight (d_out, d_in): W -> W·(I + φψ)ᵀ

    def merge(self) -> None:
        if self.merged:
            return
        self._delta = self.delta_weight().to(self.base.weight.dtype)
        self.base.weight.data += self._delta
        self.merged = True

    def unmerge(self) -> None:
        if not self.merged:
            return
        self.base.weight.data -= self._delta
        self._delta = None
        self.merged = False


def _theta_key(name: str, d_in: int, share: str) -> str:
    kind = "all" if share == "all" else name.rsplit(".", 1)[-1]
    return f"{kind}_d{d_in}"


@register("gift", config=GIFTConfig, identity_at_init=True, mergeable=True, learning_rate=1e-2)
def wrap_gift(model: nn.Module, cfg: GIFTConfig) -> nn.Module:
    if hasattr(model, THETAS):
        raise ValueError(f"model already has {THETAS!r}: it is wrapped with GIFT; wrap the base model instead")
    targets = cfg.target_modules or query_value_targets(model)
    thetas = nn.ModuleDict()
    for name in match_targets(model, targets):
        base = model.get_submodule(name)
        d_in, _ = linear_shape(base)
        key = _theta_key(name, d_in, cfg.share)
        if key not in thetas:
            thetas[key] = GIFTTheta(d_in, cfg.r, base.weight)
        layer = GIFTLinear(base, thetas[key])
        thetas[key].layers.append(layer)
        replace_module(model, name, layer)
    setattr(model, THETAS, thetas)
    return model


@torch.no_grad()
def gift_clusters(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    layer: int | str = 0,
) -> tuple[Tensor, Tensor]:
    """The r-dimensional projection x·φ of each token at a GIFT layer's input, and its cluster.

    Args:
        model: a model wrapped with GIFT (the ``ZooModel`` or the module it holds).
        input_ids: (B, T) token ids; attention_mask: (B, T), 0 at padding.
        layer: index into the GIFT layers in module order, or a layer's name (full, or any
            dotted suffix that names exactly one, e.g. ``"layers.1.self_attn.q_proj"``).

    Returns:
        ``projection`` (B, T, r), float32, and ``assignment`` (B, T): the arg-max component
        per token, -1 at padding.

    Raises:
        ValueError: no GIFT layer, or ``layer`` names none or several of them.
        IndexError: ``layer`` index out of range.
    """
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, GIFTLinear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no GIFT layer; wrap it with zoo.wrap(model, 'gift') first")
    names = [n for n, _ in layers]
    if isinstance(layer, int):
        if not -len(layers) <= layer < len(layers):
            raise IndexError(f"layer {layer} is out of range: the model has {len(layers)} GIFT layers {names}")
        target = layers[layer][1]
    else:
        found = [m for n, m in layers if n == layer or n.endswith("." + layer)]
        if len(found) != 1:
            raise ValueError(f"layer {layer!r} matches {len(found)} GIFT layers; name exactly one of {names}")
        target = found[0]
    captured: list[Tensor] = []
    hook = target.register_forward_hook(lambda mod, args, out: captured.append(args[0] @ mod.theta.phi))
    was_training = model.training
    model.eval()
    try:
        model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        hook.remove()
        model.train(was_training)
    projection = captured[0].float()  # (B, T, r)
    assignment = projection.argmax(dim=-1)  # (B, T)
    if attention_mask is not None:
        assignment = assignment.masked_fill(attention_mask == 0, -1)
    return projection, assignment
