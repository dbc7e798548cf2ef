"""A module that wraps a model and stands in for it."""

from __future__ import annotations

from typing import Any

from torch import nn


class Delegating(nn.Module):
    """Wraps the submodule named by ``delegate_to``: calls and ``generate`` go to it, and
    attributes this module lacks (``config``, ``device``, ``get_input_embeddings`` ...) are its."""

    delegate_to = "model"

    def forward(self, *args, **kwargs):
        return getattr(self, self.delegate_to)(*args, **kwargs)

    def generate(self, *args, **kwargs):
        return getattr(self, self.delegate_to).generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__(type(self).delegate_to), name)


def innermost(model: nn.Module) -> nn.Module:
    """The model inside every :class:`Delegating` layer around ``model`` (``model`` itself if none)."""
    while isinstance(model, Delegating):
        model = getattr(model, model.delegate_to)
    return model
