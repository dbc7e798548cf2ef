"""Gradient checkpointing of a transformers model (``model.gradient_checkpointing``), made to train adapters on a frozen base.

Each block's activations are recomputed in the backward pass instead of kept: less memory for
more time. zoo asks for the non-reentrant form (``use_reentrant=False``): the reentrant one gives
no gradient to the parameters inside a checkpointed block when none of the block's inputs needs
one, which is exactly the case of adapters (LoRA, IA3, ...) inside a frozen base model.
"""

from __future__ import annotations

from torch import nn


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Turn on ``model``'s gradient checkpointing, non-reentrant.

    Raises:
        ValueError: the model does not support it (transformers' ``supports_gradient_checkpointing``).
    """
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"model.gradient_checkpointing=true, but {type(model).__name__} does not support gradient checkpointing "
            "(transformers' supports_gradient_checkpointing is not set); use model.gradient_checkpointing=false"
        )
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.24; the old one warns there
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def checkpointing(model: nn.Module) -> bool:
    """Whether some block of ``model`` is gradient-checkpointed (the flag transformers sets on each block)."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())
