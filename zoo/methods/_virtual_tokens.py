"""Shared by the prompt methods: a wrapper that prepends virtual-token embeddings to the input.

``prompt_tuning`` and ``p_tuning`` differ only in where the ``P`` virtual-token embeddings
come from; both hand a module whose ``forward()`` returns them, ``(P, d)``, to
:class:`VirtualTokenModel`, which makes the base model see ``[v_1 … v_P, x_1 … x_T]``::

    input_ids ──► embed ──► (B, T, d) ──┐
    prompt()  ──────────────► (P, d) ──► concat ──► (B, P+T, d) ──► base model ──► strip P ──► out

Conventions (the caller only ever sees the real tokens):
- ``attention_mask`` gets ``P`` leading ones; per-token ``labels`` get ``P`` leading -100
  (the base computes the loss, so the first real label is predicted from the last virtual
  token, as in peft); ``token_type_ids`` get leading zeros.
- Positions: the virtual tokens take the first positions ``0 … P-1``. Without
  ``position_ids`` the base numbers the ``P+T`` positions itself (transformers uses the
  cache position); given ``position_ids`` are shifted by ``P`` behind ``0 … P-1``.
- Outputs: ``logits``, ``hidden_states`` and an encoder's ``last_hidden_state`` are cut
  back to the real positions, so shapes equal the base's and ``logits[:, -1]`` is the last
  real token (peft returns the virtual positions too). ``attentions`` keep them, and an
  encoder's ``pooler_output`` reads position 0, now the first virtual token (as in peft).
- A forward that continues a non-empty cache does not prepend again (the cache holds the
  virtual tokens); only the mask is extended. The cache is taken as ``cache`` or
  ``past_key_values`` and handed on under the installed transformers' name
  (:mod:`zoo.models.cache_kwarg`).
- ``generate`` prepends once, at prefill, by passing ``inputs_embeds`` beside ``input_ids``;
  the returned ids are the real prompt plus the new tokens, never the virtual ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from zoo.delegate import Delegating
from zoo.models.cache_kwarg import CACHE_KWARG, pop_cache


def _cache_length(cache: Any) -> int:
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    return int(cache[0][0].shape[-2])  # legacy tuple cache: (B, heads, S, head_dim)


class VirtualTokenModel(Delegating):
    """A base model whose every input is prefixed by the embeddings ``prompt()`` returns.

    Args:
        base: a transformers causal LM or encoder that accepts ``inputs_embeds``.
        prompt: a module with ``num_virtual_tokens`` whose ``forward()`` returns ``(P, d)``;
            it implements :class:`zoo.method.Adapter`, so its parameters are what trains.
    """

    delegate_to = "base"

    def __init__(self, base: nn.Module, prompt: nn.Module):
        super().__init__()
        self.base = base
        self.prompt = prompt
        self.num_virtual_tokens: int = prompt.num_virtual_tokens

    def _prepend(self, input_ids: Tensor | None, inputs_embeds: Tensor | None) -> Tensor:
        if input_ids is None and inputs_embeds is None:
            raise ValueError("pass input_ids or inputs_embeds; both are None")
        if inputs_embeds is None:
            inputs_embeds = self.base.get_input_embeddings()(input_ids)  # (B, T, d)
        virtual = self.prompt().to(inputs_embeds.dtype)  # (P, d)
        virtual = virtual.unsqueeze(0).expand(inputs_embeds.shape[0], -1, -1)  # (B, P, d)
        return torch.cat([virtual, inputs_embeds], dim=1)  # (B, P+T, d)

    def _lead(self, tensor: Tensor, value: int) -> Tensor:
        """``tensor`` (B, T, ...) with ``P`` leading entries equal to ``value``."""
        lead = tensor.new_full((tensor.shape[0], self.num_virtual_tokens, *tensor.shape[2:]), value)
        return torch.cat([lead, tensor], dim=1)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        **kwargs,
    ):
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("pass either input_ids or inputs_embeds to forward, not both")
        p = self.num_virtual_tokens
        if attention_mask is not None:
            attention_mask = self._lead(attention_mask, 1)
        if labels is not None:
            kwargs["labels"] = labels
        if (cache := pop_cache(kwargs)) is not None:
            kwargs[CACHE_KWARG] = cache
        if _cache_length(cache) > 0:
            return self.base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)

        embeds = self._prepend(input_ids, inputs_embeds)  # (B, P+T, d)
        real = embeds.shape[1] - p
        if labels is not None and labels.dim() >= 2:  # per-token labels; (B,) class labels stay as they are
            kwargs["labels"] = self._lead(labels, -100)
        if kwargs.get("token_type_ids") is not None:
            kwargs["token_type_ids"] = self._lead(kwargs["token_type_ids"], 0)
        if (position_ids := kwargs.get("position_ids")) is not None:  # (B, T)
            lead = torch.arange(p, device=position_ids.device, dtype=position_ids.dtype).expand(position_ids.shape[0], p)
            kwargs["position_ids"] = torch.cat([lead, position_ids + p], dim=1)
        if isinstance(kwargs.get("logits_to_keep"), Tensor):  # explicit indices of real positions
            kwargs["logits_to_keep"] = kwargs["logits_to_keep"] + p
        as_tuple = kwargs.pop("return_dict", None) is False

        out = self.base(inputs_embeds=embeds, attention_mask=attention_mask, return_dict=True, **kwargs)
        if getattr(out, "logits", None) is not None:  # the base kept the last L positions; keep the real ones
            out.logits = out.logits[:, -min(out.logits.shape[1], real) :]
        if getattr(out, "last_hidden_state", None) is not None:
            out.last_hidden_state = out.last_hidden_state[:, p:]
        if getattr(out, "hidden_states", None) is not None:
            out.hidden_states = tuple(h[:, p:] for h in out.hidden_states)
        return out.to_tuple() if as_tuple else out

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        **kwargs,
    ):
        """``base.generate`` with the virtual tokens prepended at prefill.

        With ``input_ids`` the result is ``input_ids`` followed by the new tokens; with only
        ``inputs_embeds`` it is the new tokens (the base model's convention). ``max_length``
        and ``min_length`` count real tokens, as they do for the base model. Without an
        ``attention_mask`` every real token is attended: pass one with padded batches.
        """
        embeds = self._prepend(input_ids, inputs_embeds)  # (B, P+T, d)
        if attention_mask is None:
            real = embeds.shape[1] - self.num_virtual_tokens
            attention_mask = torch.ones(embeds.shape[0], real, dtype=torch.long, device=embeds.device)
        # given inputs_embeds, transformers subtracts their length (P+T) from max/min_length but then
        # measures the returned ids (T + new with input_ids, new without): add back what it takes off
        shift = self.num_virtual_tokens + (input_ids.shape[1] if input_ids is not None else 0)
        for key in ("max_length", "min_length"):
            if kwargs.get(key) is not None:
                kwargs[key] += shift
        return self.base.generate(
            input_ids=input_ids,
            inputs_embeds=embeds,
            attention_mask=self._lead(attention_mask, 1),
            **kwargs,
        )
