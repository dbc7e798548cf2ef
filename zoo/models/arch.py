"""Where the parts of a transformer block live, per architecture family.

Methods that act on a role (the key projection, the feed-forward block) rather than on a
user-given module name look the role up here. Paths inside a block are relative to it.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Arch:
    blocks: str
    """Path of the ModuleList of transformer blocks."""
    attention: str
    """The attention module, relative to a block."""
    mlp: str
    """The feed-forward module, relative to a block."""
    query: str
    key: str
    value: str
    """Projections, relative to a block; GPT-2 fuses q, k and v into one ``c_attn``."""
    attn_out: str
    ff_in: tuple[str, ...]
    ff_out: str
    fused_qkv: bool = False

    def default_lora_targets(self) -> list[str]:
        """Query and value projections, the placement of the LoRA paper."""
        return [self.query] if self.fused_qkv else [self.query, self.value]


_LLAMA = Arch(
    blocks="model.layers", attention="self_attn", mlp="mlp",
    query="self_attn.q_proj", key="self_attn.k_proj", value="self_attn.v_proj",
    attn_out="self_attn.o_proj", ff_in=("mlp.gate_proj", "mlp.up_proj"), ff_out="mlp.down_proj",
)
_GPT2 = Arch(
    blocks="transformer.h", attention="attn", mlp="mlp",
    query="attn.c_attn", key="attn.c_attn", value="attn.c_attn",
    attn_out="attn.c_proj", ff_in=("mlp.c_fc",), ff_out="mlp.c_proj", fused_qkv=True,
)
_BERT = Arch(
    blocks="encoder.layer", attention="attention", mlp="output",
    query="attention.self.query", key="attention.self.key", value="attention.self.value",
    attn_out="attention.output.dense", ff_in=("intermediate.dense",), ff_out="output.dense",
)
ARCHS: dict[str, Arch] = {"llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "gpt2": _GPT2, "bert": _BERT}


def arch_of(model: nn.Module) -> Arch:
    """The :class:`Arch` of a transformers model, by ``config.model_type``.

    Raises:
        ValueError: the model type is not described here; lists the supported ones.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHS:
        raise ValueError(f"model_type {model_type!r} has no architecture map; supported: {sorted(ARCHS)}")
    arch = ARCHS[model_type]
    if _find_prefix(model, arch.blocks) is None:
        raise ValueError(f"{type(model).__name__} has no module {arch.blocks!r} (model_type {model_type!r})")
    return arch


def _find_prefix(model: nn.Module, path: str) -> str | None:
    """The full name of ``path`` in ``model``: bare, or under a task model's base prefix."""
    names = dict(model.named_modules())
    for name in names:
        if name == path or name.endswith("." + path):
            return name
    return None


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(full name, block)`` for each transformer block, in order."""
    prefix = _find_prefix(model, arch_of(model).blocks)
    return [(f"{prefix}.{i}", block) for i, block in enumerate(model.get_submodule(prefix))]


def model_kind(model: nn.Module) -> str:
    """``causal_lm`` for models that generate, ``encoder`` otherwise."""
    can_generate = getattr(model, "can_generate", None)
    return "causal_lm" if callable(can_generate) and can_generate() else "encoder"
