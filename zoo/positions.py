"""Where in the sequence a method acts: chosen positions of the prompt, found from each call's attention mask.

Most methods act at every token. One registered with ``positions=True`` (:class:`zoo.method.MethodSpec`) acts only
at chosen positions of the prompt, as LoReFT intervenes on a prompt's first ``p`` and last ``s`` tokens. Its wrap
function attaches a :class:`PositionTracker` to the model with a :class:`PromptPositions` rule and hands the tracker
to its modules; before every forward call of the model the tracker records which of the call's tokens are chosen,
and a module reads that as :attr:`PositionTracker.chosen` (``(B, T)``, True where it acts)::

    attention_mask  0 0 1 1 1 1 1 1      (left padded)       1 1 1 1 1 1 0 0   (right padded)
    first=2, last=1     ✓ ✓ . . . ✓                          ✓ ✓ . . . ✓

Positions are counted over the attended tokens only, so left and right padding choose the same tokens, and a
prompt shorter than ``first + last`` has each of its tokens chosen once.

What is the prompt:
- A forward call that starts a sequence (no key/value cache, or an empty one) reads its whole input as the prompt: a
  classification prompt, or a prompt at the prefill of ``generate``.
- A forward call that continues a cache (each decoding step of ``generate``) brings tokens that come after the
  prompt: none is chosen, so generated tokens are left as the base model computes them. They still attend to the
  prompt's states, which the method changed at prefill (the ReFT paper intervenes on prompt positions only).
- A forward over a prompt and its response together (teacher forcing) cannot tell them apart: it reads the whole
  sequence as the prompt. A method that acts at prompt positions is therefore trained on tasks whose inputs are
  prompts (it declares ``task_kinds=("classification",)``).

The tracker holds the last call's positions until the next call, so a block recomputed in the backward pass
(gradient checkpointing) sees the positions of its forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class PromptPositions:
    """The first ``first`` and last ``last`` attended tokens of each prompt."""

    first: int
    last: int

    def __post_init__(self) -> None:
        for name in ("first", "last"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer (a number of prompt tokens), got {value!r}")
        if self.first + self.last == 0:
            raise ValueError("first and last are both 0: no prompt position would be chosen; choose at least one token")

    def chosen(self, attention_mask: Tensor) -> Tensor:
        """``(B, T)`` bool: the chosen tokens of prompts whose attended tokens are ``attention_mask``'s ones (any padding)."""
        attended = attention_mask.bool()  # (B, T)
        rank = attended.long().cumsum(dim=1) - 1  # (B, T): index of each token among its row's attended tokens
        count = attended.sum(dim=1, keepdim=True)  # (B, 1)
        return attended & ((rank < self.first) | (rank >= count - self.last))


def _cache_length(cache: Any) -> int:
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    return int(cache[0][0].shape[-2])  # legacy tuple cache: (B, heads, S, head_dim)


class PositionTracker:
    """Records, before each forward call of the model it is attached to, which of the call's tokens ``rule`` chooses.

    A plain object, not a module: the method's modules inside the model hold it without making the model contain itself.
    """

    def __init__(self, rule: PromptPositions):
        self.rule = rule
        self.chosen: Tensor | None = None
        """``(B, T)`` bool for the last forward call's tokens (None before the first)."""

    @classmethod
    def attach(cls, model: nn.Module, rule: PromptPositions) -> PositionTracker:
        """A tracker that reads every forward call of ``model`` (direct, or made by ``generate``)."""
        tracker = cls(rule)
        model.register_forward_pre_hook(tracker._record, with_kwargs=True)
        return tracker

    def _record(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        tokens = kwargs.get("input_ids", args[0] if args else None)
        if tokens is None:
            tokens = kwargs.get("inputs_embeds")
        if tokens is None:
            raise ValueError("the model was called without input_ids or inputs_embeds: no positions to choose from")
        batch, length = tokens.shape[0], tokens.shape[1]
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if _cache_length(cache) > 0:  # tokens after the prompt (a decoding step): none is chosen
            self.chosen = torch.zeros(batch, length, dtype=torch.bool, device=tokens.device)
            return
        mask = kwargs.get("attention_mask")
        if mask is None:
            mask = torch.ones(batch, length, dtype=torch.long, device=tokens.device)
        self.chosen = self.rule.chosen(mask[:, -length:])

    def select(self, hidden: Tensor) -> Tensor:
        """``(B, T, 1)`` bool: the chosen positions of ``hidden`` (``(B, T, d)``, states of the call in progress)."""
        if self.chosen is None or self.chosen.shape != hidden.shape[:2]:
            raise RuntimeError(
                f"hidden states of shape {tuple(hidden.shape)} do not belong to the forward call the positions were "
                f"read from ({None if self.chosen is None else tuple(self.chosen.shape)}); call the wrapped model, "
                "not one of its blocks"
            )
        return self.chosen.unsqueeze(-1).to(hidden.device)  # a block on another device (device_map) gets its own copy
