"""A base model's tensors, recorded before wrapping and checked after merging.

A merged model is saved as the base model's architecture with the update in its weights
(``zoo-export --merged``). :func:`zoo.merge` already puts the base model's own modules back
(:mod:`zoo.models.layout`), so what is left must be exactly the base model's tensors, names and shapes: a merge may change
their values only. A merge that gave a bias-free layer a bias, say, is refused naming that tensor.
"""

from __future__ import annotations

from torch import nn


class MergedTensorsError(ValueError):
    """A merged model whose tensors (names or shapes) are not the base model's."""


class BaseStructure:
    """A base model's tensors' names and shapes, as they were when recorded."""

    def __init__(self, base: nn.Module):
        self.shapes = {name: tuple(t.shape) for name, t in base.state_dict().items()}

    def check(self, model: nn.Module, method: str) -> None:
        """Refuse ``model`` unless its tensors are exactly the recorded ones, names and shapes."""
        found = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        extra, missing = sorted(set(found) - set(self.shapes)), sorted(set(self.shapes) - set(found))
        reshaped = {n: (self.shapes[n], found[n]) for n in sorted(set(found) & set(self.shapes)) if found[n] != self.shapes[n]}
        if extra or missing or reshaped:
            detail = "; ".join(
                part
                for part in (
                    f"tensors the base model lacks: {extra[:5]}" if extra else "",
                    f"base tensors gone: {missing[:5]}" if missing else "",
                    "reshaped: " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in list(reshaped.items())[:5]) if reshaped else "",
                )
                if part
            )
            raise MergedTensorsError(
                f"merging method {method!r} does not leave the base model's tensors: {detail}. A merged model is saved as the "
                f"base model (zoo-export --merged) and a merge may change the values of its tensors only; a method that cannot "
                f"merge some configs says so with refuses_merge=lambda cfg, model: reason or None"
            )
