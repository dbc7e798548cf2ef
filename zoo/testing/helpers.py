"""How the contract checks build, run and perturb a method, whatever the method, on any tiny family."""

from __future__ import annotations

import torch
from torch import nn

import zoo
from zoo.models.arch import model_kind, refusal
from zoo.testing.models import built

LABEL_TOKEN_IDS = [5, 6]
"""The label words' token ids given to methods with ``needs_label_words``."""


def wrap_for_test(method: str, model: nn.Module, **overrides) -> zoo.ZooModel:
    """Wrap with the method's defaults, filling label words for methods that need them."""
    if zoo.get_method(method).needs_label_words:
        overrides.setdefault("label_token_ids", LABEL_TOKEN_IDS)
    return zoo.wrap(model, method, **overrides)


def output(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The logits of a causal LM, the last hidden states of an encoder."""
    out = model(**batch)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def refused(method: str, kind: str) -> str | None:
    """Why ``method`` declares it cannot wrap the tiny family ``kind`` (None: it can)."""
    return refusal(zoo.get_method(method), built(kind))


def generates(kind: str) -> bool:
    """Whether the tiny family ``kind`` is a decoder, which the contract also checks under ``generate``."""
    return model_kind(built(kind)) == "causal_lm"


@torch.no_grad()
def perturb(model: zoo.ZooModel, seed: int = 0) -> None:
    """Move every adapter tensor off its initial value, so zero inits cannot hide a bug."""
    g = torch.Generator().manual_seed(seed)
    for p in model.adapter_state_dict().values():
        p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))  # drawn on the CPU: the same on any device
