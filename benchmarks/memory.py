"""Exact, deterministic training-step memory on any device: what autograd keeps, plus optimiser state.

CPU resident-set peaks move with the allocator's caching and with other processes, so
ratios between two implementations would be noise. Instead count the bytes of every
distinct tensor storage saved for backward during one forward pass, and add the
gradients and AdamW's two moments of the trainable parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def saved_activation_bytes(forward: Callable[[], torch.Tensor], model: torch.nn.Module) -> tuple[torch.Tensor, int]:
    """Run ``forward``; return its loss and the bytes of distinct storages saved for backward.

    Storages of ``model``'s parameters are left out: they exist whether or not one trains.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward()
    return loss, sum(seen.values())


def trainable_state_bytes(model: torch.nn.Module) -> int:
    """Gradients plus AdamW's first and second moments: three copies of the trainable tensors."""
    return 3 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
