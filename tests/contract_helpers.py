"""How the contract tests build, run and perturb a method, whatever the method, on every tiny family."""
from __future__ import annotations

import torch
from conftest import _built, make_model

import zoo
from zoo.models.arch import model_kind, refusal
from zoo.models.tiny import TINY_FAMILIES

LABEL_TOKEN_IDS = [5, 6]


def wrap_for_test(method: str, model, **overrides):
    """Wrap with the method's defaults, filling label words for methods that need them."""
    if zoo.get_method(method).needs_label_words:
        overrides.setdefault("label_token_ids", LABEL_TOKEN_IDS)
    return zoo.wrap(model, method, **overrides)


def output(model, batch) -> torch.Tensor:
    out = model(**batch)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def refused(method: str, kind: str) -> str | None:
    """Why ``method`` declares it cannot wrap the tiny family ``kind`` (None: it can)."""
    return refusal(zoo.get_method(method), _built(kind, 0))


def generates(kind: str) -> bool:
    return model_kind(_built(kind, 0)) == "causal_lm"


def cells(methods: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(supported, refused)`` (method, family) pairs over every tiny family."""
    pairs = [(m, k) for m in methods for k in TINY_FAMILIES]
    return [p for p in pairs if refused(*p) is None], [p for p in pairs if refused(*p) is not None]


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
