"""How the contract tests build, run and perturb a method, whatever the method."""
from __future__ import annotations

import torch
from conftest import make_model

import zoo

LABEL_TOKEN_IDS = [5, 6]


def wrap_for_test(method: str, model, **overrides):
    """Wrap with the method's defaults, filling label words for methods that need them."""
    if zoo.get_method(method).needs_label_words:
        overrides.setdefault("label_token_ids", LABEL_TOKEN_IDS)
    return zoo.wrap(model, method, **overrides)


def output(model, batch) -> torch.Tensor:
    out = model(**batch)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def supported(method: str, kind: str) -> bool:
    model_kind = "encoder" if kind == "tiny-bert" else "causal_lm"
    return model_kind in zoo.get_method(method).model_kinds


@torch.no_grad()
def perturb(model, seed: int = 0) -> None:
    """Move every adapter tensor off its initial value, so zero inits cannot hide a bug."""
    g = torch.Generator().manual_seed(seed)
    for p in model.adapter_state_dict().values():
        p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def labelled(batch) -> dict[str, torch.Tensor]:
    return {**batch, "labels": torch.tensor([0, 1, 0])}


def fresh(kind: str):
    return make_model(kind)
