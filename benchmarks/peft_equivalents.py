"""Which peft method is each zoo method, as one table: step_speed.py compares the two on the same sizes.

An entry builds peft's config from zoo's (so both have the same sizes) and says which zoo
sizes to set first where the two differ by default. A zoo method without an entry has no
peft counterpart and gets zoo's own figures only; a new equivalent is one more entry here,
never a branch on a method's name in the benchmark.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import peft
from transformers import PretrainedConfig

from zoo.method import MethodConfig

CAUSAL = {"task_type": "CAUSAL_LM"}


def _no_overrides(config: PretrainedConfig) -> dict:
    return {}


@dataclass(frozen=True)
class PeftEquivalent:
    peft_config: Callable[[MethodConfig, PretrainedConfig], peft.PeftConfig]
    """peft's config of the method, the same size as zoo's config on a base model of this (transformers) config."""
    zoo_overrides: Callable[[PretrainedConfig], dict] = field(default=_no_overrides)
    """zoo config fields that make zoo's method the same size as peft's on this base model."""


def _prefix_width(config: PretrainedConfig) -> dict:
    """peft embeds the prefix at the key/value width (smaller than the hidden size under grouped-query attention)."""
    return {"embedding_dim": config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)}


PEFT_EQUIVALENTS: dict[str, PeftEquivalent] = {
    "lora": PeftEquivalent(lambda cfg, config: peft.LoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=["q_proj", "v_proj"], **CAUSAL)),
    "ia3": PeftEquivalent(lambda cfg, config: peft.IA3Config(
        target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"], **CAUSAL)),
    "prompt_tuning": PeftEquivalent(lambda cfg, config: peft.PromptTuningConfig(num_virtual_tokens=cfg.num_virtual_tokens, **CAUSAL)),
    "p_tuning": PeftEquivalent(lambda cfg, config: peft.PromptEncoderConfig(
        num_virtual_tokens=cfg.num_virtual_tokens, encoder_hidden_size=cfg.encoder_hidden_size,
        encoder_reparameterization_type=cfg.encoder_type.upper(), encoder_num_layers=cfg.encoder_num_layers, **CAUSAL)),
    "prefix_tuning": PeftEquivalent(
        lambda cfg, config: peft.PrefixTuningConfig(num_virtual_tokens=cfg.num_virtual_tokens, prefix_projection=cfg.reparameterize,
                                                    encoder_hidden_size=cfg.projection_hidden_size, **CAUSAL),
        zoo_overrides=_prefix_width),
    "llama_adapter": PeftEquivalent(lambda cfg, config: peft.AdaptionPromptConfig(
        adapter_len=cfg.adapter_len, adapter_layers=cfg.adapter_layers or config.num_hidden_layers, **CAUSAL)),
}
