"""A merged model runs as its base: :func:`zoo.merge` puts the base model's own modules back, :func:`zoo.unmerge` the method's.

Folding an update into the base weights leaves the modules a method injected in the forward pass: a merged LoRA layer
still calls its base layer through its own ``forward``, a merged full fine-tune still reads every weight through its
parametrisation. Each such call computes nothing, yet costs time (a tenth of a forward pass of a 135M-parameter model on
two CPU cores). So :func:`zoo.wrap` records the base model's layout (:class:`BaseLayout`: every module's children)
before the method changes it, and a merge puts that layout back once the update is folded in: the method's merged
parametrisations are removed (the weights keep their merged values) and every module the method swapped in gives way
to the base module it replaced. What the merge took out is kept (:class:`TakenOut`), and unmerge puts it back before it
unfolds the update. The merged model is then the base model's own modules, called as the base calls them.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from zoo.inject import Adapter


class TakenOut:
    """What a merge took out of a model: the method's modules (every module's children as they stood) and its
    parametrisations; :meth:`put_back` restores them."""

    def __init__(self, model: nn.Module):
        self.parametrizations = []
        for module in list(model.modules()):
            for name in _merged_parametrizations(module):
                self.parametrizations.append((module, name, list(module.parametrizations[name])))
                parametrize.remove_parametrizations(module, name, leave_parametrized=False)  # the original: merged
        self.children = children(model)

    def put_back(self) -> None:
        """The method's modules and parametrisations where the merge found them."""
        for module, children in self.children:
            module._modules.clear()
            module._modules.update(children)
        for module, name, parametrizations in self.parametrizations:
            for parametrization in parametrizations:  # merged: each returns the weight as it stands
                parametrize.register_parametrization(module, name, parametrization, unsafe=True)


class BaseLayout:
    """Every module's children of a base model, as they were when recorded (before a method wrapped it)."""

    def __init__(self, base: nn.Module):
        self.children = children(base)

    def put_back(self, model: nn.Module) -> TakenOut:
        """Give ``model`` (the recorded base, wrapped and merged) its recorded layout, the merged weights kept (a peft
        layer's merged copy where it made one); return what was taken out."""
        taken = TakenOut(model)
        for module, children in self.children:
            now = dict(module._modules)
            module._modules.clear()
            module._modules.update({name: merged_base(now.get(name), child) for name, child in children.items()})
        return taken


def children(model: nn.Module) -> list[tuple[nn.Module, dict[str, nn.Module]]]:
    """Every module of ``model`` with its children as they stand now."""
    return [(module, dict(module._modules)) for module in model.modules()]


def _merged_parametrizations(module: nn.Module) -> list[str]:
    """The tensors of ``module`` whose parametrisations are all a method's merged adapters (those a merge takes out)."""
    if not parametrize.is_parametrized(module):
        return []
    return [
        name
        for name, chain in module.parametrizations.items()
        if all(isinstance(p, Adapter) and getattr(p, "merged", False) for p in chain)
    ]


def merged_base(current: nn.Module | None, original: nn.Module) -> nn.Module:
    """What stands at a base module's place once merged: the module itself, or, where a peft layer swapped it for a
    tuned copy on merging (LN tuning), the layer its wrapper now calls (peft's ``get_base_layer``)."""
    get_base = getattr(current, "get_base_layer", None)
    if current is None or current is original or not callable(get_base):
        return original
    merged = get_base()
    return merged if type(merged) is type(original) else original
