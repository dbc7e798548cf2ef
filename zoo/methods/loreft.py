"""LoReFT: Low-rank Linear Subspace Representation Finetuning (Wu et al., 2024, "ReFT: Representation Finetuning for
Language Models", arXiv:2404.03592, eq. 2).

No weight changes: the hidden state h (the residual stream a block outputs) is edited at chosen prompt positions of
chosen layers, inside an r-dimensional subspace spanned by the orthonormal rows of R::

    Φ(h) = h + Rᵀ (W h + b − R h)          R: (r, d) with R Rᵀ = I,  W: (r, d),  b: (r,)

    block ──► h ──┬────────────────────────────────► h              every other position
                  └─► at the first p / last s prompt tokens: h + Rᵀ((W − R) h + b)

R, W and b train; each chosen layer has its own, shared by its first and last positions (the paper's
``--share_weights`` setting of its commonsense and arithmetic runs). R stays orthonormal through training whatever the
optimiser: it is a ``torch.nn.utils.parametrize`` parametrisation of a free (r, d) matrix X, R = the orthonormal factor
of X's QR factorisation, so X alone (what is saved) determines R. torch's ``parametrizations.orthogonal`` is not used:
without its trivialisation (whose base buffer is state outside the parameters, so not saved) its Householder map reads
the signs of X's diagonal as integers, and AdamW's weight decay, shrinking them below 1, turns R into zeros.

Identity at init (claimed, and checked by the contract tests): W starts equal to R and b at zero, so (W − R) h + b = 0
exactly; the paper's code starts W at nn.Linear's random init instead, zoo at the identity as LoRA's B = 0 does. W and R
both receive gradients from the first step. Not mergeable: the edit depends on the position, no weight can hold it.

Positions (``zoo.positions``, the spec's ``positions`` flag): the first ``first_positions`` and last
``last_positions`` attended tokens of each prompt, found from the attention mask, so left and right padding pick the
same tokens; a prompt shorter than p + s has each token edited once. In ``generate`` the prompt is edited at prefill
and the generated tokens are not (the paper's rule); they attend to the edited prompt states. A forward over a prompt
and its response together cannot tell where the prompt ends, so LoReFT declares classification tasks only (a
generation task kind would have to mark the prompt in its training batches). Decoders only: the paper's encoder
setting (RoBERTa on GLUE, a first-token intervention) is not built, and encoders are refused.

Defaults: every layer, rank 8, the first 7 and last 7 prompt tokens, from the paper's commonsense and arithmetic runs
on LLaMA-7B (pyreft's examples/loreft: ``-l all -r 8 -p f7+l7 -lr 9e-4``). Learning rate 3e-2, the best on the built-in
task's validation split with the shipped tiny-llama (seed 0, 500 steps;
``zoo -m method=loreft trainer.learning_rate=... task.eval_split=validation``): 3e-4 0.965, 9e-4 (the paper's) 0.969,
3e-3 0.973, 1e-2 0.973, 3e-2 0.980, 1e-1 0.965 (zero-shot 0.492). On the test split, ``zoo method=loreft`` (seed 0):
0.977 from 0.512 zero-shot with 2,064 parameters (0.973 at 9e-4). Not yet a row of
``benchmarks/results/default_task/RESULTS.md``: the suite adds it when rerun. On SmolLM2-135M-Instruct, movie reviews
(``zoo method=loreft model=smollm2-135m task=movie_sentiment trainer.learning_rate=9e-4 trainer.max_steps=15
trainer.batch_size=8 task.shots_per_class=64 task.n_eval=120``, seed 0): 0.775 from 0.575 zero-shot with 276,720
parameters. The benchmark's search on each task's validation split (``python -m benchmarks.tune --profile full``,
the same 8 trials as every method, 3e-2 × 0.025 to × 2.5) chose 7.5e-4 on movie reviews (the bottom of the grid) and
4.8e-3 on tweets, where the top of the grid, 7.5e-2, scored best on validation but diverged (its loss rose from 1.9 to
14.5) and so ranks last. In
``benchmarks/RESULTS.md``, tuned rows: movie_sentiment 0.810 [0.734, 0.877] accuracy, tweet_sentiment 0.336 [0.190,
0.470] accuracy (zero-shot 0.630 and 0.367; against the tuned LoRA rows, 0.836 and 0.517: movie_sentiment -0.026
[-0.097, +0.039]; tweet_sentiment -0.181 [-0.331, -0.040] ≠).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from zoo.method import MethodConfig
from zoo.models.arch import blocks
from zoo.positions import PositionTracker, PromptPositions
from zoo.registry import register


@dataclass
class LoReFTConfig(MethodConfig):
    r: int = 8
    """Rank: the number of orthonormal rows of R, the dimension of the edited subspace."""
    first_positions: int = 7
    """p: how many of each prompt's first attended tokens are edited."""
    last_positions: int = 7
    """s: how many of each prompt's last attended tokens are edited (the answer position is the last)."""
    layers: list[int] | None = None
    """Indices of the blocks whose output is edited (0 = the first block); None: every block."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"r must be a positive integer, got {self.r!r}")
        PromptPositions(self.first_positions, self.last_positions)  # raises on a bad p or s, naming it
        if self.layers is not None and (
            len(self.layers) == 0 or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.layers)
        ):
            raise ValueError(
                f"layers must be a non-empty list of block indices (0, 1, ...) or None for every block, got {self.layers!r}"
            )


class OrthonormalRows(nn.Module):
    """The parametrisation R = rows of Q in the QR factorisation Xᵀ = Q U (signs fixed so diag(U) > 0): orthonormal for every
    free X of full rank, and R itself for an orthonormal X (``right_inverse``), so saving X saves R."""

    def forward(self, free: torch.Tensor) -> torch.Tensor:
        q, u = torch.linalg.qr(free.mT.float())  # (d, r), (r, r); float32: QR has no half-precision kernel
        sign = torch.where(u.diagonal() < 0, -1.0, 1.0)
        return (q * sign).mT.to(free.dtype)  # (r, d)

    def right_inverse(self, rows: torch.Tensor) -> torch.Tensor:
        return rows


class LoReFTIntervention(nn.Module):
    """Φ(h) = h + Rᵀ((W − R) h + b) at the positions its tracker chooses, h elsewhere."""

    def __init__(self, width: int, r: int, tracker: PositionTracker, factory: dict):
        super().__init__()
        if r > width:
            raise ValueError(f"r={r} exceeds the hidden width {width}: R cannot have more orthonormal rows than columns")
        self.rotate = nn.Linear(width, r, bias=False, **factory)
        parametrize.register_parametrization(self.rotate, "weight", OrthonormalRows())
        self.source = nn.Linear(width, r, **factory)  # W h + b
        with torch.no_grad():
            self.source.weight.copy_(self.rotate.weight)  # W = R, b = 0: the identity at init
            self.source.bias.zero_()
        self.tracker = tracker

    def adapter_params(self) -> list[str]:
        return ["rotate.parametrizations.weight.original", "source.weight", "source.bias"]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rotate = self.rotate.weight  # (r, d), orthonormal rows
        z = h.to(rotate.dtype)
        edit = F.linear(F.linear(z, self.source.weight - rotate, self.source.bias), rotate.T)  # (B, T, d) via (B, T, r)
        return torch.where(self.tracker.select(h), h + edit.to(h.dtype), h)  # h itself, bit for bit, where not chosen

    def edit_block_output(self, block: nn.Module, args: tuple, output):
        """Forward hook of the block: its hidden states (the output, or its first element) edited."""
        if isinstance(output, tuple):
            return (self(output[0]), *output[1:])
        return self(output)


def _chosen_blocks(model: nn.Module, layers: list[int] | None) -> list[nn.Module]:
    found = [block for _, block in blocks(model)]
    if layers is None:
        return found
    if max(layers) >= len(found):
        raise ValueError(
            f"layers {layers} name block {max(layers)}, but the model has {len(found)} blocks (0 to {len(found) - 1})"
        )
    return [found[i] for i in sorted(set(layers))]


@register(
    "loreft",
    config=LoReFTConfig,
    identity_at_init=True,
    mergeable=False,
    model_kinds=("causal_lm",),
    task_kinds=("classification",),
    positions=True,
    learning_rate=3e-2,
)
def wrap_loreft(model: nn.Module, cfg: LoReFTConfig) -> nn.Module:
    tracker = PositionTracker.attach(model, PromptPositions(cfg.first_positions, cfg.last_positions))
    width = model.config.get_text_config().hidden_size
    for block in _chosen_blocks(model, cfg.layers):
        weight = next(block.parameters())
        intervention = LoReFTIntervention(width, cfg.r, tracker, {"device": weight.device, "dtype": weight.dtype})
        block.add_module("loreft", intervention)
        block.register_forward_hook(intervention.edit_block_output)
    return model
