"""GaLore: full-parameter training with gradients projected to a low rank (Zhao et al., 2024, arXiv:2403.03507).

Every weight trains, as in full fine-tuning (zoo's ``full_finetune``: a trainable ΔW beside each
frozen base tensor, W_eff = W + ΔW, ΔW = 0 at init; ∂L/∂ΔW = ∂L/∂W). What changes is the optimiser:
for each weight matrix of a transformer block (every linear map of attention and feed-forward, as
the paper's recipe), with gradient G_t (m × n, m ≥ n; the other side otherwise), GaLore keeps Adam's
moments in a rank-r subspace (the paper's Adam with GaLore)::

    P_t = Q[:, :r]        from the SVD  G_t = U S Qᵀ, recomputed every T steps (update_proj_gap)
    R_t = G_t P_t         (m × r)   the projected gradient
    M_t, V_t = Adam's moments of R_t  (m × r each, against m × n for AdamW)
    W_t+1 = W_t − η · α · (M̂_t / (√V̂_t + ε)) P_tᵀ          α: scale

The other parameters (embeddings, norms, biases, the LM head) step with plain AdamW. The optimiser
is galore-torch's ``GaLoreAdamW`` (the authors' package: ``pip install 'zoo-peft[galore]'``), which
zoo does not reimplement; it is AdamW as transformers wrote it (ε = 1e-6, bias correction on) with
the projection added. Weight decay pulls W_eff towards the pretrained W, as in ``full_finetune``.
A run's record keeps the optimiser state's bytes after the first step beside AdamW's over the same
parameters on the same gradients (``optimizer.state_bytes``, ``optimizer.adamw_state_bytes``:
zoo.training.optimizer_state): that saving is the method's point.

Defaults: rank 4, scale α = 4, T = 500: the authors' GLUE fine-tuning recipe (RoBERTa-base, the
GaLore repository's README, ``run_glue.py --lora_r 4 --galore_scale 4 --update_proj_gap 500``);
``proj_type`` std (the package's default). The learning rate, 1e-3, is ``full_finetune``'s on the
tiny models; a pretrained model wants less (the GLUE recipe's 3e-5): on SmolLM2-135M-Instruct the
benchmark's search on each task's validation split (``python -m benchmarks.tune --profile full``, the
same 8 trials as every method) chose 6.3e-5 on movie reviews, 4e-4 on tweets and 1.6e-4 on BBC headlines.
On the built-in default task (``zoo method=galore``, the
default tiny-llama, seed 0) GaLore reaches 1.000 from 0.512 zero-shot; its optimiser state after the
first step is 292,352 bytes against AdamW's 661,076 over the same parameters (0.44): the moments
take 112,128, and the projection matrices 180,224, because galore-torch keeps each as a slice of the
SVD's factor, which holds the whole factor (as compact rank-4 matrices they would take 12,288).
On SmolLM2-135M-Instruct and the movie reviews (``zoo +benchmark=full model=smollm2-135m
task=movie_sentiment method=galore trainer.learning_rate=3e-5 task.n_eval=120 latency=false
forgetting.text=none``: 15 steps, seed 0) it reaches 0.817 from 0.575 zero-shot, its state 441,321,984 bytes against AdamW's
1,076,121,152 (0.41; the parameters outside the block matrices, the embedding above all, keep full moments:
226,773,504 of those bytes). In
``benchmarks/RESULTS.md``, tuned rows: movie_sentiment 0.846 [0.806, 0.884] accuracy, tweet_sentiment 0.456 [0.353,
0.547] accuracy, bbc_headlines 0.189 [0.156, 0.225] ROUGE-L (zero-shot 0.630, 0.367 and 0.139; against the tuned LoRA
rows, 0.836, 0.517 and 0.210: movie_sentiment +0.010 [-0.024, +0.048]; tweet_sentiment -0.061 [-0.171, +0.030] ≠;
bbc_headlines -0.021 [-0.056, +0.015]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from zoo.inject import LINEAR_TYPES
from zoo.method import MethodConfig
from zoo.methods.full_finetune import wrap_full_finetune
from zoo.models.arch import blocks
from zoo.optimizer_recipe import OptimizerRecipe, ParamGroups
from zoo.registry import register

PROJECTION_TYPES = ("std", "reverse_std", "right", "left", "full")
"""galore-torch's ``proj_type``: std projects on the gradient's smaller side, reverse_std on the larger, right and left on
that side always, full on both."""


@dataclass
class GaLoreConfig(MethodConfig):
    rank: int = 4
    """r: the rank of the subspace each block matrix's gradient is projected to."""
    update_proj_gap: int = 500
    """T: steps between two SVDs of the gradient that renew the projection."""
    scale: float = 4.0
    """α: the factor on the projected-back update."""
    proj_type: str = "std"
    """Which side of the gradient is projected: one of :data:`PROJECTION_TYPES`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rank", "update_proj_gap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int | float) or not self.scale > 0:
            raise ValueError(f"scale must be a number above 0 (the paper's α), got {self.scale!r}")
        if self.proj_type not in PROJECTION_TYPES:
            raise ValueError(f"proj_type {self.proj_type!r} is not one of {PROJECTION_TYPES}")


def galore_groups(model: nn.Module, cfg: GaLoreConfig, lr: float) -> ParamGroups:
    """The ΔW of every block's linear weight, projected (GaLore's group settings); every other ΔW as AdamW steps it."""
    layers = [m for _, block in blocks(model) for m in block.modules() if isinstance(m, LINEAR_TYPES)]
    projected = [m.parametrizations.weight[0].delta for m in layers if parametrize.is_parametrized(m, "weight")]
    chosen = {id(p) for p in projected}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in chosen]
    return [
        {"params": others, "lr": lr},
        {
            "params": projected,
            "lr": lr,
            "rank": cfg.rank,
            "update_proj_gap": cfg.update_proj_gap,
            "scale": cfg.scale,
            "proj_type": cfg.proj_type,
        },
    ]


def galore_adamw(groups: ParamGroups, weight_decay: float) -> torch.optim.Optimizer:
    """galore-torch's GaLoreAdamW over ``groups``.

    Raises:
        ImportError: galore-torch (or bitsandbytes, which it imports) is not installed, saying how to install it.
    """
    try:
        from galore_torch import GaLoreAdamW
    except ImportError as err:
        raise ImportError(
            f"method galore steps with galore-torch's GaLoreAdamW, which could not be imported ({err}); "
            f"install it with pip install 'zoo-peft[galore]' (galore-torch and bitsandbytes)"
        ) from err
    return GaLoreAdamW(groups, weight_decay=weight_decay, no_deprecation_warning=True)


@register(
    "galore",
    config=GaLoreConfig,
    identity_at_init=True,
    mergeable=True,
    learning_rate=1e-3,
    optimizer=OptimizerRecipe(groups=galore_groups, optimizer=galore_adamw),
)
def wrap_galore(model: nn.Module, cfg: MethodConfig) -> nn.Module:
    return wrap_full_finetune(model, cfg)
