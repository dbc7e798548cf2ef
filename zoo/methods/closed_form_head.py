"""Closed-form head: least squares on the label words' logits, no gradient steps.

For k label words, a causal LM scores class c at the answer position by logit L_c = z·E_cᵀ,
z the final (post-norm) hidden state the LM head reads. The method adds a d×k matrix W::

    z ─► lm_head ─► logits ──(+)──► logits[..., label_token_ids] += z·W      W = 0 at init
    └───────── z·W ─────────┘       z: (B, T, d), W: (d, k)

and solves W once, by a ridge least squares over the training set (one pass, no grad)::

    W = argmin ‖(log P − L) − Z·W‖² + λ‖W‖²  =  (ZᵀZ + λI)⁻¹ Zᵀ(log P − L)

Z (N, d): hidden state at the last position (batches are left padded); L (N, k): the base
model's log-softmax over the k label-word logits; log P (N, k): the log of the label-smoothed
one-hot target (1 − s on the true class, s/(k − 1) elsewhere), so log_softmax(L + Z·W) ≈
log P. Only ZᵀZ (d×d) and Zᵀ(log P − L) (d×k) are accumulated, in float64: memory O(d²), not
O(N·d). λ = ``ridge`` · trace(ZᵀZ)/d, relative so that it does not depend on the scale of z.
Solved by Cholesky; when that fails or ZᵀZ + λI is ill-conditioned (ridge=0 with N < d or
collinear features), by the SVD pseudo-inverse, i.e. the minimum-norm least-squares W.

W acts inside the LM head, so ``generate`` and ``logits_to_keep`` see it unchanged. Since
logits[label] = z·E[label]ᵀ, merging adds Wᵀ to the label words' rows of the output
embedding. Where input and output embeddings are tied (GPT-2), that would also change the
label words' input embeddings: merging then unties the head (a modified copy of the matrix,
V×d extra memory while merged) and unmerging restores the tied original.
The plugin needs one token id per class; the task layer (``zoo.tasks.prompt``) refuses
label words that are several tokens. Defaults: ridge=1e-3 keeps the solve well-posed when
N < d; on the built-in task with a random tiny-llama it gave eval accuracy 0.60 against 0.59
at 1e-5, 0.54 at 0.1 and 0.52 at 1; on the default (pretrained) tiny-llama 0.965 ± 0.000 (zero-shot
0.512; seeds 0-2 (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``)). label_smoothing=0.05 keeps the log-targets finite.
No learning rate: the trainer calls ``fit`` instead of an optimiser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.delegate import Delegating
from zoo.inject import replace_module
from zoo.method import MethodConfig, Reduce, TaskContext
from zoo.registry import register

MAX_CONDITION = 1e12  # beyond this a float64 Cholesky solve of the normal equations loses all accuracy


@dataclass
class ClosedFormHeadConfig(MethodConfig):
    label_token_ids: list[int] | None = None
    """One token id per class, in class order; bound from the task's label words (``bind``) in a run."""
    ridge: float = 1e-3
    """λ relative to the mean eigenvalue of ZᵀZ: λ = ridge · trace(ZᵀZ)/d; 0 gives the minimum-norm solution."""
    label_smoothing: float = 0.05
    """s in (0, 1): the target puts 1 − s on the true class and s/(k − 1) on each other."""

    def __post_init__(self) -> None:
        super().__post_init__()
        ids = self.label_token_ids
        if ids is not None:
            if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in ids):
                raise ValueError(f"label_token_ids must be non-negative integers, got {ids!r}")
            if len(set(ids)) != len(ids):
                raise ValueError(f"label_token_ids {ids!r} repeat a token id; each class needs its own token")
        if not self.ridge >= 0:
            raise ValueError(f"ridge must be >= 0, got {self.ridge!r}")
        if not 0.0 < self.label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing must be in (0, 1) so that every log-target is finite, got {self.label_smoothing!r}"
            )

    def bind(self, task: TaskContext) -> ClosedFormHeadConfig:
        """The task's label token ids, where the prompt scores label words."""
        return self if task.label_token_ids is None else dataclasses.replace(self, label_token_ids=list(task.label_token_ids))


def smoothed_log_targets(labels: Tensor, k: int, smoothing: float) -> Tensor:
    """(N, k) log of the label-smoothed one-hot of ``labels`` (N,), float64."""
    target = torch.full((labels.shape[0], k), smoothing / (k - 1), dtype=torch.float64, device=labels.device)
    target.scatter_(1, labels[:, None], 1.0 - smoothing)
    return target.log()


def ridge_lambda(ztz: Tensor, ridge: float) -> float:
    """λ = ridge · trace(ZᵀZ)/d (plain ``ridge`` when Z is all zeros)."""
    trace = float(ztz.diagonal().sum())
    return ridge * trace / ztz.shape[0] if trace > 0 else ridge


def solve_ridge(ztz: Tensor, ztr: Tensor, ridge: float) -> tuple[Tensor, str]:
    """W = (ZᵀZ + λI)⁻¹ ZᵀR with λ = ridge · trace(ZᵀZ)/d; returns ``(W, solver)``.

    ``solver`` is ``cholesky`` or, when Cholesky fails or the system is ill-conditioned,
    ``pinv`` (SVD pseudo-inverse: the minimum-norm least-squares solution).
    """
    d = ztz.shape[0]
    a = ztz + ridge_lambda(ztz, ridge) * torch.eye(d, dtype=ztz.dtype, device=ztz.device)  # (d, d)
    chol, info = torch.linalg.cholesky_ex(a)
    if info.item() == 0:
        diag = chol.diagonal()
        if diag.min() > 0 and (diag.max() / diag.min()) ** 2 < MAX_CONDITION:  # a lower bound on cond(a)
            return torch.cholesky_solve(ztr, chol), "cholesky"
    return torch.linalg.pinv(a, hermitian=True) @ ztr, "pinv"


class LabelWordHead(nn.Module):
    """The LM head plus z·W on the label words' columns."""

    def __init__(self, base: nn.Linear, label_token_ids: list[int], tied: bool):
        super().__init__()
        self.base = base
        self.register_buffer("label_ids", torch.tensor(label_token_ids, device=base.weight.device), persistent=False)
        self.weight_delta = nn.Parameter(
            torch.zeros(base.in_features, len(label_token_ids), device=base.weight.device, dtype=base.weight.dtype)
        )
        self.tied = tied
        self.merged = False
        self._saved: Any = None

    def adapter_params(self) -> list[str]:
        return ["weight_delta"]

    def forward(self, z: Tensor) -> Tensor:  # z: (B, T, d) -> (B, T, V)
        logits = self.base(z)
        if self.merged:
            return logits
        return logits.index_add(-1, self.label_ids, (z @ self.weight_delta).to(logits.dtype))

    def merge(self) -> None:
        if self.merged:
            return
        rows = self.base.weight[self.label_ids] + self.weight_delta.detach().T.to(self.base.weight.dtype)  # (k, d)
        # __dict__, not setattr: a stored Parameter would otherwise be registered (and saved) here.
        if self.tied:  # writing in place would also move the label words' input embeddings
            self.__dict__["_saved"] = self.base.weight
            merged = self.base.weight.detach().clone()
            merged[self.label_ids] = rows
            self.base.weight = nn.Parameter(merged, requires_grad=False)
        else:
            self.__dict__["_saved"] = self.base.weight[self.label_ids].clone()
            self.base.weight.data[self.label_ids] = rows
        self.merged = True

    def unmerge(self) -> None:
        if not self.merged:
            return
        if self.tied:
            self.base.weight = self._saved
        else:
            self.base.weight.data[self.label_ids] = self._saved
        self.__dict__["_saved"] = None
        self.merged = False


class ClosedFormHead(Delegating):
    """Holds the base causal LM (whose head is a :class:`LabelWordHead`) and solves W in ``fit``."""

    def __init__(self, model: nn.Module, head: LabelWordHead, cfg: ClosedFormHeadConfig):
        super().__init__()
        self.model = model
        self.__dict__["head"] = head  # already registered inside model; not a second time
        self.label_smoothing = cfg.label_smoothing
        self.ridge = cfg.ridge
        self.last_solver: str | None = None

    def _label_log_probs(self, z: Tensor) -> Tensor:
        """log P(label word) over the label words alone, in float64, from the head's frozen base rows."""
        base, ids = self.head.base, self.head.label_ids
        return torch.log_softmax(F.linear(z, base.weight[ids], None if base.bias is None else base.bias[ids]).double(), dim=-1)

    @torch.no_grad()
    def fit(self, batches: Iterable[dict[str, Tensor]], reduce: Reduce | None = None) -> dict[str, float]:
        """Solve W from labelled, left-padded batches in one pass; copy it into the head.

        ``reduce`` sums ZᵀZ, ZᵀR and the counts over the processes of a distributed run (zoo.method.GradientFree).

        Returns ``n_examples``, ``base_accuracy``, ``residual_before`` and ``train_residual``
        (mean squared error of log P − L before and after, per example), ``ridge_lambda``
        and ``cholesky`` (1.0, or 0.0 where the pseudo-inverse solved it).

        Raises:
            ValueError: no examples, labels outside 0..k-1, a right-padded batch, or a merged model.
        """
        if self.head.merged:
            raise ValueError("fit needs the unmerged model: call zoo.unmerge first")
        k, d, zeros = self.head.label_ids.numel(), self.head.base.in_features, self.head.base.weight.new_zeros
        ztz, ztr = zeros(d, d, dtype=torch.float64), zeros(d, k, dtype=torch.float64)
        counts = zeros(3, dtype=torch.float64)  # sum of squared residuals, examples, base-correct
        captured: list[Tensor] = []
        hook = self.head.base.register_forward_pre_hook(lambda mod, args: captured.append(args[0][:, -1]))
        was_training = self.training
        self.eval()
        try:
            for batch in batches:
                labels, mask = batch["labels"], batch.get("attention_mask")
                _check_batch(labels, mask, k)
                captured.clear()
                self.model(input_ids=batch["input_ids"], attention_mask=mask, logits_to_keep=1)
                z = captured[0]  # (B, d), exactly what the LM head reads
                logp = self._label_log_probs(z)  # (B, k)
                labels = labels.to(z.device)
                resid = smoothed_log_targets(labels, k, self.label_smoothing) - logp  # (B, k)
                z64 = z.double()
                ztz += z64.T @ z64
                ztr += z64.T @ resid
                counts += torch.stack(
                    [(resid**2).sum(), resid.new_tensor(labels.shape[0]), (logp.argmax(-1) == labels).sum().double()]
                )
        finally:
            hook.remove()
            self.train(was_training)
        if reduce is not None:
            ztz, ztr, counts = reduce(ztz), reduce(ztr), reduce(counts)
        rtr, n, base_correct = float(counts[0]), int(counts[1]), int(counts[2])
        if n == 0:
            raise ValueError("fit received no examples")
        w, solver = solve_ridge(ztz, ztr, self.ridge)  # (d, k)
        if not torch.isfinite(w).all():
            raise FloatingPointError(f"the least-squares solve ({solver}) gave non-finite W; raise ridge (now {self.ridge})")
        self.head.weight_delta.copy_(w.to(self.head.weight_delta.dtype))
        after = rtr - 2 * float((w * ztr).sum()) + float((w * (ztz @ w)).sum())
        self.last_solver = solver
        return {
            "n_examples": float(n),
            "base_accuracy": base_correct / n,
            "residual_before": rtr / n,
            "train_residual": max(after, 0.0) / n,
            "ridge_lambda": ridge_lambda(ztz, self.ridge),
            "cholesky": 1.0 if solver == "cholesky" else 0.0,
        }


def _check_batch(labels: Tensor, mask: Tensor | None, k: int) -> None:
    if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) < k):
        raise ValueError(f"labels must be class indices in 0..{k - 1}, got values {sorted(set(labels.tolist()))}")
    if mask is not None and bool((mask[:, -1] == 0).any()):
        raise ValueError("batches must be left padded (the answer is the last position); found padding at the end")


@register(
    "closed_form_head",
    config=ClosedFormHeadConfig,
    identity_at_init=True,
    mergeable=True,
    gradient_free=True,
    model_kinds=("causal_lm",),
    needs_label_words=True,
    task_kinds=("classification",),
)
def wrap_closed_form_head(model: nn.Module, cfg: ClosedFormHeadConfig) -> nn.Module:
    ids = cfg.label_token_ids
    if not ids:
        raise ValueError(
            f"label_token_ids is {ids!r}: give one token id per class (the runner fills it from the task's label words)"
        )
    if len(ids) < 2:
        raise ValueError(f"label_token_ids {ids!r} names one class; a classifier needs at least two")
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear):
        raise ValueError(f"closed_form_head needs an nn.Linear LM head, got {type(head).__name__}")
    if max(ids) >= head.out_features:
        raise ValueError(f"label_token_ids {ids!r} exceed the vocabulary (size {head.out_features})")
    k = len(ids)
    if cfg.label_smoothing >= (k - 1) / k:
        raise ValueError(
            f"label_smoothing {cfg.label_smoothing} must be below (k-1)/k = {(k - 1) / k:.3g} for k={k} classes, or the target favours a wrong class"
        )
    name = next(n for n, m in model.named_modules() if m is head)
    inputs = model.get_input_embeddings()
    tied = inputs is not None and inputs.weight.data_ptr() == head.weight.data_ptr()
    wrapper = LabelWordHead(head, ids, tied)
    replace_module(model, name, wrapper)
    return ClosedFormHead(model, wrapper, cfg)
