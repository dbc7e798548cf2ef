"""A base model's own modules and tensors, recorded before wrapping and put back after merging.

A merged model is saved as the base model's architecture with the update in its weights
(``zoo-export --merged``), so after :func:`zoo.merge` every module a method injected is taken out
again and every parametrisation it registered is removed, keeping the merged values. What is
left must be exactly the base model's tensors, names and shapes: a merge may change their
values only. A merge that gave a bias-free layer a bias, say, is refused naming that tensor.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize


class MergedTensorsError(ValueError):
    """A merged model whose tensors (names or shapes) are not the base model's."""


class BaseStructure:
    """The children of every module of a base model, and its tensors' shapes, as they were when recorded."""

    def __init__(self, base: nn.Module):
        self.children = [(module, dict(module._modules)) for module in base.modules()]
        self.shapes = {name: tuple(t.shape) for name, t in base.state_dict().items()}

    def restore(self, model: nn.Module, method: str) -> nn.Module:
        """Put ``model`` (the recorded base, merged) back into its recorded modules, keeping the merged weights; return it.

        Raises:
            MergedTensorsError: naming the tensors the merge added, removed or reshaped.
        """
        for module in list(model.modules()):
            if parametrize.is_parametrized(module):
                for name in list(module.parametrizations):
                    parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        for module, children in self.children:
            now = dict(module._modules)
            module._modules.clear()
            module._modules.update({name: _merged_base(now.get(name), child) for name, child in children.items()})
        self.check(model, method)
        return model

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


def _merged_base(current: nn.Module | None, original: nn.Module) -> nn.Module:
    """What stands at a base module's place once merged: the module itself, or, where a peft layer swapped it for a
    tuned copy on merging (LN tuning), the layer its wrapper now calls (peft's ``get_base_layer``)."""
    get_base = getattr(current, "get_base_layer", None)
    if current is None or current is original or not callable(get_base):
        return original
    merged = get_base()
    return merged if type(merged) is type(original) else original
