"""The two interventions of He & Cao (2025, arXiv:2509.17866): rebuild every tuned matrix from
parts of the base's and the tuned SVDs, then measure the task metric of the rebuilt model::

    scaled_spectrum   W' = U_t · diag(c · S_b) · V_tᵀ            tuned singular vectors, base spectrum × fitted c
    base_spectrum     W' = U_t · diag(S_b) · V_tᵀ                the same with c = 1 (what the scale alone does)
    no_rotation       W' = U_b · diag(S_t) · V_bᵀ                the rotation undone, R_U = R_V = I
    random_rotation   W' = U_b Q_U · diag(S_t) · (V_b Q_V)ᵀ      Q_U, Q_V Haar-random orthogonal

The paper's claim: the spectrum swap keeps performance (scaling is a secondary, temperature-like
effect), while disturbing the rotation collapses it. Only matrices that fine-tuning changed
are rebuilt: editing an untouched one would probe the base model, not what tuning did.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from zoo.delegate import innermost
from zoo.inject import replace_module
from zoo.research.structure import fit_scale, linear_map, svd, weight_pairs

EXPERIMENTS = {
    "scaled_spectrum": "tuned singular vectors, base singular values x fitted c (expected to hold)",
    "base_spectrum": "tuned singular vectors, base singular values (c = 1)",
    "no_rotation": "base singular vectors (R = I), tuned singular values (expected to lose the tuning)",
    "random_rotation": "base singular vectors turned by random orthogonal matrices, tuned singular values (expected to collapse)",
}


def random_orthogonal(k: int, generator: torch.Generator) -> Tensor:
    """A Haar-random ``(k, k)`` orthogonal matrix: QR of a Gaussian, column signs fixed by R's diagonal."""
    Q, R = torch.linalg.qr(torch.randn(k, k, generator=generator, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))


def rebuild(experiment: str, base: Tensor, tuned: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The ``(d_out, d_in)`` matrix ``experiment`` makes of one base/tuned pair, in float64.

    Raises:
        ValueError: unknown experiment; ``random_rotation`` without a generator.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose from {list(EXPERIMENTS)}")
    b, t = svd(base), svd(tuned)
    if experiment == "scaled_spectrum":
        return t.U @ torch.diag(fit_scale(b.S, t.S) * b.S) @ t.V.T
    if experiment == "base_spectrum":
        return t.U @ torch.diag(b.S) @ t.V.T
    if experiment == "no_rotation":
        return b.U @ torch.diag(t.S) @ b.V.T
    if generator is None:
        raise ValueError("random_rotation needs a torch.Generator (the rotations are drawn from it)")
    k = b.S.numel()
    return (b.U @ random_orthogonal(k, generator)) @ torch.diag(t.S) @ (b.V @ random_orthogonal(k, generator)).T


@torch.no_grad()
def apply_experiment(base: nn.Module, tuned: nn.Module, experiment: str, seed: int = 0) -> tuple[nn.Module, int]:
    """A copy of ``tuned`` whose changed block matrices are rebuilt by ``experiment``; and how many were.

    ``tuned`` is a plain model or a merged zoo model (see :func:`weight_pairs`); the copy is of the model inside its wrappers;
    each rebuilt matrix becomes a plain layer of the base's type, keeping the tuned bias.

    Raises:
        ValueError: unknown experiment, or models whose block matrices do not correspond.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose from {list(EXPERIMENTS)}")
    edited = copy.deepcopy(innermost(tuned))
    generator = torch.Generator().manual_seed(seed)
    rebuilt = 0
    for name, (_, _, w_base, w_tuned) in weight_pairs(base, edited).items():
        if torch.equal(w_base, w_tuned):
            continue
        layer = copy.deepcopy(base.get_submodule(name))
        new = rebuild(experiment, w_base, w_tuned, generator).to(layer.weight.dtype)  # (d_out, d_in)
        layer.weight.copy_(new.T if isinstance(layer, Conv1D) else new)
        if layer.bias is not None:
            layer.bias.copy_(linear_map(edited.get_submodule(name), w_base.shape[1])[1])
        replace_module(edited, name, layer)
        rebuilt += 1
    return edited, rebuilt
