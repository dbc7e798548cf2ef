"""Tiny random models, built in-process for tests and the default run.

Two layers, width 64: Llama-style (``nn.Linear``, grouped-query attention), GPT-2-style
(``Conv1D``, fused q/k/v) and a BERT-style encoder, plus the families of
:mod:`zoo.models.tiny_families` (Gemma, Qwen3, Phi-3, GPT-NeoX, OPT, RoBERTa, ...).
"""

from __future__ import annotations

import torch
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from zoo.models.tiny_families import FAMILIES, build_family

TINY_CAUSAL = ("tiny-llama", "tiny-gpt2")
TINY_KINDS = (*TINY_CAUSAL, "tiny-bert")
"""The default run's three architectures (conf/model/tiny-*.yaml)."""
TINY_FAMILIES = (*TINY_KINDS, *FAMILIES)
"""Every tiny model: the three above and one per family of :mod:`zoo.models.tiny_families`."""


def is_causal(kind: str) -> bool:
    """Whether the tiny model ``kind`` is a causal LM (else an encoder)."""
    return kind in TINY_CAUSAL or (kind in FAMILIES and FAMILIES[kind].causal)


def tiny_model(kind: str, vocab_size: int, seed: int = 0, hidden_size: int = 64, layers: int = 2) -> PreTrainedModel:
    """A randomly initialised model of ``kind`` (one of :data:`TINY_FAMILIES`), seeded.

    Raises:
        ValueError: unknown kind.
    """
    special = dict(pad_token_id=0, bos_token_id=2, eos_token_id=3)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "tiny-llama":
            cfg = LlamaConfig(
                vocab_size=vocab_size,
                hidden_size=hidden_size,
                intermediate_size=2 * hidden_size,
                num_hidden_layers=layers,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=256,
                tie_word_embeddings=False,
                **special,
            )
            model = LlamaForCausalLM(cfg)
        elif kind == "tiny-gpt2":
            cfg = GPT2Config(vocab_size=vocab_size, n_embd=hidden_size, n_layer=layers, n_head=4, n_positions=256, **special)
            model = GPT2LMHeadModel(cfg)
        elif kind == "tiny-bert":
            cfg = BertConfig(
                vocab_size=vocab_size,
                hidden_size=hidden_size,
                num_hidden_layers=layers,
                num_attention_heads=4,
                intermediate_size=2 * hidden_size,
                max_position_embeddings=256,
                pad_token_id=0,
            )
            model = BertModel(cfg, add_pooling_layer=False)
        elif kind in FAMILIES:
            model = build_family(kind, vocab_size, hidden_size, layers)
        else:
            raise ValueError(f"unknown tiny model {kind!r}; choose one of {list(TINY_FAMILIES)}")
    return model.eval()
