"""Tiny random models of many transformers architecture families, for tests across families.

Each family is built from its own transformers config class (no download), two layers and
width 64 by default, four query heads and, where the family has grouped-query attention, two
key/value heads. Realistic choices are kept where they shape what a method meets: Gemma's
head width differs from hidden/heads, its embeddings are tied and Gemma 2/3 scale attention
by ``query_pre_attn_scalar`` rather than the head width (as Gemma-2-27B does), GPT-NeoX rotates only a
quarter of each head (its default), Phi-3 fuses q/k/v with grouped-query widths, DeBERTa-v2
uses relative attention (as DeBERTa-v3 does). The three original builders (tiny-llama,
tiny-gpt2, tiny-bert) live in :mod:`zoo.models.tiny`, unchanged: the default model's weights
depend on tiny-llama's exact architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import transformers
from transformers import PreTrainedModel

SPECIAL = dict(pad_token_id=0, bos_token_id=2, eos_token_id=3)


@dataclass(frozen=True)
class Family:
    """How to build one family: its config and model classes (by name in ``transformers``) and options."""

    config: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    """Config fields beyond the shared ones (width, depth, heads, vocabulary, special tokens)."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the model class (an encoder without its pooler)."""
    causal: bool = True


GQA = dict(num_key_value_heads=2)
NO_POOLER = dict(add_pooling_layer=False)
FAMILIES: dict[str, Family] = {
    "tiny-mistral": Family("MistralConfig", "MistralForCausalLM", GQA),
    "tiny-qwen2": Family("Qwen2Config", "Qwen2ForCausalLM", GQA),
    "tiny-qwen3": Family("Qwen3Config", "Qwen3ForCausalLM", dict(GQA, head_dim=16)),
    "tiny-gemma": Family("GemmaConfig", "GemmaForCausalLM", dict(GQA, head_dim=8)),
    "tiny-gemma2": Family("Gemma2Config", "Gemma2ForCausalLM", dict(GQA, head_dim=8, query_pre_attn_scalar=16)),
    "tiny-gemma3": Family("Gemma3TextConfig", "Gemma3ForCausalLM", dict(GQA, head_dim=8, query_pre_attn_scalar=16)),
    "tiny-phi3": Family("Phi3Config", "Phi3ForCausalLM", GQA),
    "tiny-olmo2": Family("Olmo2Config", "Olmo2ForCausalLM", GQA),
    "tiny-gpt-neox": Family("GPTNeoXConfig", "GPTNeoXForCausalLM"),
    "tiny-opt": Family("OPTConfig", "OPTForCausalLM", dict(ffn_dim=128, word_embed_proj_dim=64)),
    "tiny-roberta": Family("RobertaConfig", "RobertaModel", model_options=NO_POOLER, causal=False),
    "tiny-deberta-v2": Family("DebertaV2Config", "DebertaV2Model", dict(relative_attention=True), causal=False),
    "tiny-modernbert": Family("ModernBertConfig", "ModernBertModel", dict(cls_token_id=2, sep_token_id=3), causal=False),
}


def build_family(name: str, vocab_size: int, hidden_size: int, layers: int) -> PreTrainedModel:
    """An untrained model of family ``name``; the caller seeds the random generator.

    Raises:
        ValueError: unknown family.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown tiny model family {name!r}; choose one of {sorted(FAMILIES)}")
    family = FAMILIES[name]
    config = getattr(transformers, family.config)(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=256,
        **SPECIAL,
        **family.options,
    )
    return getattr(transformers, family.model)(config, **family.model_options)
