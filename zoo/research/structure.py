"""What fine-tuning did to each weight matrix, read through its SVD (He & Cao, 2025,
"Understanding Post-Training Structural Changes in Large Language Models", arXiv:2509.17866).

With the SVDs ``W_b = U_b S_b V_bᵀ`` (base) and ``W_t = U_t S_t V_tᵀ`` (tuned), thin, of rank
k = min(d_out, d_in), the paper finds post-training close to::

    W_t ≈ (U_b R_U) · diag(c · S_b) · (V_b R_V)ᵀ        R_U, R_V orthogonal (k × k), R_U ≈ R_V

- **scaling**: one factor c per matrix, fitted by least squares, c = ⟨S_b, S_t⟩ / ⟨S_b, S_b⟩,
  near-equal across layers; we report c, the residual ‖S_t − c S_b‖ / ‖S_t‖ (how well one
  factor explains the spectrum) and the coefficient of variation of c across layers.
- **rotation**: orthogonal Procrustes, R_U = argmin_{RᵀR=I} ‖U_b R − U_t‖_F = P Qᵀ where
  U_bᵀ U_t = P Σ Qᵀ (likewise R_V from V); we report ‖R − I‖_F / √(2k) (0: no rotation; about
  1 for a random orthogonal matrix, whose trace is near 0), the left/right agreement
  tr(R_Uᵀ R_V) / k (1: the same rotation on both sides, the paper's consistency), and how
  similar the rotations of one matrix kind are across layers: the mean pairwise cosine of
  their skew parts (R − Rᵀ)/2, the direction a rotation turns (0 for unrelated rotations).
- **null baseline**: the same two rotation numbers for W_b plus a Gaussian perturbation of
  the same Frobenius norm as W_t − W_b. Perturbation theory makes any small change of a
  matrix with close singular values mix neighbouring pairs (u_i, v_i) alike on both sides,
  so a high agreement means something only where it exceeds this baseline.

An SVD fixes each pair (u_i, v_i) only up to a common sign; the tuned pairs are flipped to
point the way of the base's (sign of u_b,iᵀu_t,i + v_b,iᵀv_t,i), so that "no change" reads R = I.
Everything is computed in float64.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from zoo.delegate import innermost
from zoo.inject import LINEAR_TYPES, linear_shape
from zoo.models.arch import blocks


@dataclass(frozen=True)
class Svd:
    U: Tensor  # (d_out, k)
    S: Tensor  # (k,), descending
    V: Tensor  # (d_in, k)


def svd(weight: Tensor) -> Svd:
    """Thin SVD of a ``(d_out, d_in)`` matrix, in float64."""
    U, S, Vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    return Svd(U, S, Vh.T)


def fit_scale(s_base: Tensor, s_tuned: Tensor) -> float:
    """Least-squares c in ``s_tuned ≈ c · s_base``: ⟨s_b, s_t⟩ / ⟨s_b, s_b⟩.

    Raises:
        ValueError: ``s_base`` is all zeros (no scale relates a zero spectrum to another).
    """
    norm = float(s_base @ s_base)
    if norm == 0.0:
        raise ValueError("the base singular values are all zero; a scale factor is undefined for a zero matrix")
    return float(s_base @ s_tuned) / norm


def procrustes(a: Tensor, b: Tensor) -> Tensor:
    """The orthogonal R minimising ‖a R − b‖_F, for ``a``, ``b`` of shape (n, k): R = P Qᵀ with aᵀb = P Σ Qᵀ."""
    P, _, Qh = torch.linalg.svd(a.T @ b)
    return P @ Qh  # (k, k)


def align_signs(base: Svd, tuned: Svd) -> Svd:
    """``tuned`` with each singular pair (u_i, v_i) flipped to agree with the base's pair."""
    agreement = (base.U * tuned.U).sum(0) + (base.V * tuned.V).sum(0)  # (k,)
    sign = torch.where(agreement < 0, -1.0, 1.0).to(tuned.U.dtype)
    return Svd(tuned.U * sign, tuned.S, tuned.V * sign)


@dataclass(frozen=True)
class MatrixChange:
    """How one matrix moved from base to tuned (see the module docstring for the formulas)."""

    name: str
    layer: int | None
    kind: str
    """The matrix's name inside its block (``self_attn.q_proj``): layers are compared within a kind."""
    shape: tuple[int, int]
    relative_change: float
    """‖W_t − W_b‖_F / ‖W_b‖_F."""
    scale: float
    scale_residual: float
    ratio_min: float
    ratio_max: float
    """Extremes of S_t / S_b over the singular values the base does not have at 0."""
    rotation_left: float
    rotation_right: float
    """‖R − I‖_F / √(2k) for R_U and R_V."""
    left_right_agreement: float
    null_rotation: float
    null_agreement: float
    """Rotation (mean of left and right) and agreement after a random perturbation of the same norm instead."""
    procrustes_residual: float
    """(‖U_b R_U − U_t‖ + ‖V_b R_V − V_t‖) / (2 √k): 0 when the tuned singular vectors span the base's subspaces."""
    model_residual: float
    """‖(U_b R_U) diag(c S_b) (V_b R_V)ᵀ − W_t‖_F / ‖W_t‖_F: what "scale + rotation" leaves unexplained."""
    R_U: Tensor
    R_V: Tensor
    S_base: Tensor
    S_tuned: Tensor


def _rotations(base: Svd, tuned: Tensor) -> tuple[Svd, Tensor, Tensor]:
    """The tuned SVD (signs aligned to the base's) and the Procrustes rotations R_U, R_V taking the base's vectors to it."""
    t = align_signs(base, svd(tuned))
    return t, procrustes(base.U, t.U), procrustes(base.V, t.V)


def _distance(R: Tensor) -> float:
    """‖R − I‖_F / √(2k)."""
    return float((R - torch.eye(len(R), dtype=R.dtype)).norm() / math.sqrt(2 * len(R)))


def compare(name: str, base: Tensor, tuned: Tensor, layer: int | None = None, kind: str = "", seed: int = 0) -> MatrixChange:
    """Analyse one ``(d_out, d_in)`` matrix pair; ``seed`` draws the null baseline's perturbation.

    Raises:
        ValueError: the shapes differ.
    """
    if base.shape != tuned.shape:
        raise ValueError(f"{name}: base shape {tuple(base.shape)} differs from tuned shape {tuple(tuned.shape)}")
    W_b, W_t = base.detach().double(), tuned.detach().double()
    b = svd(W_b)
    t, R_U, R_V = _rotations(b, W_t)
    k = b.S.numel()
    c = fit_scale(b.S, t.S)
    nonzero = b.S > b.S[0] * 1e-12
    ratio = t.S[nonzero] / b.S[nonzero]
    modelled = (b.U @ R_U) @ torch.diag(c * b.S) @ (b.V @ R_V).T
    noise = torch.randn(W_b.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # (d_out, d_in)
    _, N_U, N_V = _rotations(b, W_b + (W_t - W_b).norm() / noise.norm() * noise)
    return MatrixChange(
        name=name,
        layer=layer,
        kind=kind or name,
        shape=(base.shape[0], base.shape[1]),
        relative_change=float((W_t - W_b).norm() / W_b.norm()),
        scale=c,
        scale_residual=float((t.S - c * b.S).norm() / t.S.norm()),
        ratio_min=float(ratio.min()),
        ratio_max=float(ratio.max()),
        rotation_left=_distance(R_U),
        rotation_right=_distance(R_V),
        left_right_agreement=float(torch.trace(R_U.T @ R_V) / k),
        null_rotation=(_distance(N_U) + _distance(N_V)) / 2,
        null_agreement=float(torch.trace(N_U.T @ N_V) / k),
        procrustes_residual=float(((b.U @ R_U - t.U).norm() + (b.V @ R_V - t.V).norm()) / (2 * math.sqrt(k))),
        model_residual=float((modelled - W_t).norm() / W_t.norm()),
        R_U=R_U,
        R_V=R_V,
        S_base=b.S,
        S_tuned=t.S,
    )


@dataclass(frozen=True)
class KindSummary:
    """One matrix kind across layers: is the scaling uniform, is the rotation consistent?"""

    kind: str
    layers: int
    """How many matrices of this kind tuning changed."""
    scale_mean: float
    scale_cv: float
    """Coefficient of variation of c across layers: std / |mean| (0: perfectly uniform)."""
    rotation_mean: float
    rotation_cv: float
    """Mean and coefficient of variation of (‖R_U − I‖ + ‖R_V − I‖) / (2√(2k)) across layers."""
    left_right_agreement: float
    rotation_similarity: float
    """Mean pairwise cosine of the skew parts of (R_U, R_V) across layers; NaN for one layer or no rotation."""
    null_rotation: float
    null_agreement: float
    """Means of the same-norm random perturbation's rotation and agreement (the chance level)."""


def _cv(values: list[float]) -> float:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return 0.0
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return std / abs(mean) if mean != 0 else math.inf


def summarise(changes: list[MatrixChange]) -> list[KindSummary]:
    """One :class:`KindSummary` per matrix kind, and last, when there are several kinds, ``all``.

    Only matrices that tuning changed count: an untouched one (a LoRA that skipped it) would
    pull every mean towards "no change" and say nothing about what tuning does. No changed
    matrix: an empty list.
    """
    changed = [c for c in changes if c.relative_change > 0]
    groups: dict[str, list[MatrixChange]] = {}
    for change in changed:
        groups.setdefault(change.kind, []).append(change)
    return [_summary(kind, members) for kind, members in groups.items()] + ([_summary("all", changed)] if len(groups) > 1 else [])


def _summary(kind: str, members: list[MatrixChange]) -> KindSummary:
    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    rotation = [(m.rotation_left + m.rotation_right) / 2 for m in members]
    turns = [torch.cat([(m.R_U - m.R_U.T).flatten(), (m.R_V - m.R_V.T).flatten()]) / 2 for m in members]
    cosines = [
        float(a @ b / (a.norm() * b.norm()))
        for i, a in enumerate(turns)
        for b in turns[i + 1 :]
        if a.shape == b.shape and a.norm() > 0 and b.norm() > 0
    ]
    return KindSummary(
        kind=kind,
        layers=len(members),
        scale_mean=mean([m.scale for m in members]),
        scale_cv=_cv([m.scale for m in members]),
        rotation_mean=mean(rotation),
        rotation_cv=_cv(rotation) if any(rotation) else 0.0,
        left_right_agreement=mean([m.left_right_agreement for m in members]),
        rotation_similarity=mean(cosines) if cosines else math.nan,
        null_rotation=mean([m.null_rotation for m in members]),
        null_agreement=mean([m.null_agreement for m in members]),
    )


def block_linears(model: nn.Module) -> dict[str, tuple[int, str, nn.Module]]:
    """``{name: (layer, kind, module)}`` for the Linear / Conv1D maps inside a plain model's transformer blocks."""
    found = {}
    for layer, (prefix, block) in enumerate(blocks(model)):
        for local, module in block.named_modules():
            if isinstance(module, LINEAR_TYPES):
                found[f"{prefix}.{local}"] = (layer, local, module)
    return found


@torch.no_grad()
def linear_map(module: nn.Module, d_in: int) -> tuple[Tensor, Tensor | None]:
    """``(W (d_out, d_in), bias)`` in float64 of the affine map ``module`` applies.

    A Linear gives its weight (a Conv1D its transposed one; a merged adapter is the base's own
    layer again). Anything else, such as an unmerged adapter wrapping the original layer, is read
    off its outputs: W·e_i = m(e_i) − m(0), which needs no knowledge of the method that wrapped it.
    """
    if isinstance(module, LINEAR_TYPES):
        weight = module.weight.T if isinstance(module, Conv1D) else module.weight
        return weight.double(), None if module.bias is None else module.bias.double()
    probe = copy.deepcopy(module).double()  # float64: (W + b) − b stays W
    bias = probe(torch.zeros(1, d_in, dtype=torch.float64))[0]  # (d_out,)
    return (probe(torch.eye(d_in, dtype=torch.float64)) - bias).T, bias


def weight_pairs(base: nn.Module, tuned: nn.Module) -> dict[str, tuple[int, str, Tensor, Tensor]]:
    """``{name: (layer, kind, W_base, W_tuned)}`` over the base's block matrices.

    ``tuned`` is a plain model of the same architecture, or a merged zoo model (:func:`zoo.merge`;
    wrappers are looked through with :func:`~zoo.delegate.innermost`): its modules are found by the base's names.

    Raises:
        ValueError: ``tuned`` lacks one of the base's block matrices.
    """
    pairs = {}
    tuned_modules = dict(innermost(tuned).named_modules())
    for name, (layer, kind, module) in block_linears(base).items():
        if name not in tuned_modules:
            raise ValueError(f"the tuned model has no module {name!r}; analyse two models of one architecture")
        d_in = linear_shape(module)[0]
        pairs[name] = (layer, kind, linear_map(module, d_in)[0], linear_map(tuned_modules[name], d_in)[0])
    return pairs


def analyse(base: nn.Module, tuned: nn.Module, seed: int = 0) -> list[MatrixChange]:
    """:func:`compare` every block matrix of ``base`` with its counterpart in ``tuned`` (see :func:`weight_pairs`).

    Matrix i draws its null perturbation with seed ``seed + i``, so the baselines are independent.
    """
    return [
        compare(name, w_b, w_t, layer=layer, kind=kind, seed=seed + i)
        for i, (name, (layer, kind, w_b, w_t)) in enumerate(weight_pairs(base, tuned).items())
    ]
