"""The memory an optimiser's state holds, measured after its first step, against AdamW's on the same gradients.

An optimiser keeps state per parameter once it has stepped: AdamW two moments the size of the
parameter and a step count; GaLore's AdamW its moments in the projected space (rank r) and the
projection matrix. :func:`state_bytes` counts what the state holds: every tensor reachable from
``optimizer.state`` (in dicts, lists and the attributes of objects, as GaLore's projector keeps its
matrix), by the storage behind it, each storage once. The storage, not the view, is what stays
allocated: galore-torch keeps the projection as a slice of the SVD's factor (in float32), which
keeps the whole factor alive, and the figure says so.

:func:`adamw_state_bytes` is the reference a method with its own optimiser is compared with: AdamW
(torch's) stepped once on the same gradients over copies of the same parameters, one tensor at a
time, so that it needs no more memory than one parameter's state at once and leaves the run as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def state_bytes(state: Any) -> int:
    """Bytes of the distinct storages of the tensors reachable from ``state`` (an optimiser's ``state``)."""
    storages: dict[int, int] = {}
    seen: set[int] = set()
    pending = [state]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple | set):
            pending.extend(value)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            pending.extend(vars(value).values())
    return sum(storages.values())


def adamw_state_bytes(params: Iterable[torch.Tensor]) -> int:
    """Bytes of the state of AdamW stepped once over ``params`` on their current gradients (those with one)."""
    total = 0
    for param in params:
        if param.grad is None:
            continue
        copy = param.detach().clone().requires_grad_(True)
        copy.grad = param.grad.detach().clone()
        reference = torch.optim.AdamW([copy])
        reference.step()
        total += state_bytes(reference.state)
    return total


class StateMemory:
    """Measures, once the optimiser has taken its first step, its state's bytes (``state_bytes``) and, with
    ``compare_with_adamw``, AdamW's over the same parameters on the same gradients (``adamw_state_bytes``).

    The measurement is a hook after the optimiser's step: the gradients are still there, whoever calls the
    step (the loop, accelerate's wrapper of the optimiser, several processes each on its own copy).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, compare_with_adamw: bool):
        self.figures: dict[str, int] = {}
        self._compare = compare_with_adamw
        self._hook = optimizer.register_step_post_hook(self._measure)

    def _measure(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._hook.remove()
        self.figures["state_bytes"] = state_bytes(optimizer.state)
        if self._compare:
            self.figures["adamw_state_bytes"] = adamw_state_bytes(p for group in optimizer.param_groups for p in group["params"])
