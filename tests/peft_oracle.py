"""peft as the oracle of the virtual-token methods, on every transformers version zoo supports.

transformers 5.24 renamed the cache argument ``past_key_values`` to ``cache`` (see
zoo/models/cache_kwarg.py); peft (0.21.2 and before) still reads and writes ``past_key_values``:
- peft's forward stays right but passes its prefix cache as ``past_key_values`` and so warns.
  That warning is peft's: :func:`quiet_peft` silences it around peft's calls only, while the
  test modules turn it into an error for zoo's own calls (conftest's ``NO_PAST_KEY_VALUES``).
- peft's ``generate`` goes wrong for the prompt-learning methods: its
  ``prepare_inputs_for_generation`` looks the cache up as ``past_key_values``, finds none, and
  takes every step for the prefill, so prompt tuning and p-tuning prepend the virtual tokens
  again before each new token, and prefix tuning hands over a fresh prefix cache that
  transformers ignores for its own (empty) ``cache``.
So what generate is compared with is :func:`peft_greedy`, greedy decoding by peft's forward
without a cache, which equals peft's ``generate`` where that works (test_peft_oracle.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence transformers' ``past_key_values`` deprecation warnings that peft's own calls raise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*past_key_values", category=FutureWarning)
        yield


@torch.no_grad()
def peft_greedy(
    peft_model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    max_new_tokens: int,
    pad_token_id: int,
    positions_from_mask: bool = False,
) -> Tensor:
    """What greedy ``generate`` returns: each new token is the argmax of peft's forward over all so far.

    Rows that produced the eos token get ``pad_token_id`` after it, and decoding stops once every
    row has, as in transformers. ``positions_from_mask`` passes the position ids ``generate``
    derives from the mask (left padding), which peft shifts by ``P`` for prefix tuning.
    """
    eos = peft_model.generation_config.eos_token_id
    eos_ids = torch.tensor([] if eos is None else eos if isinstance(eos, list) else [eos], dtype=torch.long)
    finished = torch.zeros(input_ids.shape[0], 1, dtype=torch.bool)
    ids, mask = input_ids, attention_mask
    for _ in range(max_new_tokens):
        extra = {"position_ids": (mask.cumsum(-1) - 1).clamp(min=0)} if positions_from_mask else {}
        with quiet_peft():
            logits = peft_model(input_ids=ids, attention_mask=mask, **extra).logits[:, -1]  # (B, V)
        token = logits.argmax(-1, keepdim=True).masked_fill(finished, pad_token_id)
        finished |= torch.isin(token, eos_ids)
        ids = torch.cat([ids, token], dim=1)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        if finished.all():
            break
    return ids
