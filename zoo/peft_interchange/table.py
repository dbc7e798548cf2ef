"""Which zoo method converts to which peft type and back: the converter table, as data.

A method absent from ``EXPORTS`` has no peft equivalent; a peft type absent from ``IMPORTS`` has no
zoo one. P-tuning imports as prompt tuning (peft keeps only its encoder's output, see
:mod:`zoo.peft_interchange.virtual_tokens`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from zoo.peft_interchange import adaption_prompt, ia3, lora, prefix, virtual_tokens
from zoo.peft_interchange.format import ImportPlan, PeftAdapter
from zoo.wrapped import ZooModel

Exporter = Callable[[ZooModel], PeftAdapter]
Importer = Callable[[nn.Module, PeftAdapter, Path], ImportPlan]

EXPORTS: dict[str, tuple[str, Exporter]] = {
    "lora": ("LORA", lora.export_lora),
    "ia3": ("IA3", ia3.export_ia3),
    "prompt_tuning": ("PROMPT_TUNING", virtual_tokens.export_prompt_tuning),
    "p_tuning": ("P_TUNING", virtual_tokens.export_p_tuning),
    "prefix_tuning": ("PREFIX_TUNING", prefix.export_prefix_tuning),
    "llama_adapter": ("ADAPTION_PROMPT", adaption_prompt.export_llama_adapter),
}
"""zoo method -> (peft_type, exporter)."""

IMPORTS: dict[str, Importer] = {
    "LORA": lora.import_lora,
    "IA3": ia3.import_ia3,
    "PROMPT_TUNING": virtual_tokens.import_virtual_tokens,
    "P_TUNING": virtual_tokens.import_virtual_tokens,
    "PREFIX_TUNING": prefix.import_prefix_tuning,
    "ADAPTION_PROMPT": adaption_prompt.import_adaption_prompt,
}
"""peft_type -> importer."""
