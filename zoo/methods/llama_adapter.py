"""LLaMA-Adapter (Zhang et al., 2023, "LLaMA-Adapter: Efficient Fine-tuning of Language Models
with Zero-init Attention", arXiv:2303.16199).

In each of the top ``adapter_layers`` blocks a learned adaption prompt A (``adapter_len``
tokens of width d) is projected by that layer's own frozen key/value maps, and every query
also attends to it. The two attentions are softmaxed separately, and the prompt's share is
scaled by a gate that starts at zero, so the wrapped model equals the base exactly at init::

    q = rope(W_q x)           K_A = W_k A,  V_A = W_v A      (no rope on the prompt; GQA: kv heads repeated)
    out = attention(x) + W_o · [ g_h · softmax(q K_Aᵀ / √d_h) V_A ]_heads
    g_h = tanh(gate_h)  per head   (gate="per_head_tanh", the official code's zero-init gate)
    g   = gate          one scalar  (gate="scalar", peft's adaption_prompt)

What trains: A (``adapter_len × d`` per adapted layer, N(0, 1) like the paper's embedding)
and the gate. The frozen W_o is applied without its bias, so a zero gate adds exactly 0.
Supports Llama-style attention (llama, mistral, qwen2) and GPT-2 (fused ``c_attn``); causal
LMs only. Not mergeable. Defaults: 10 prompt tokens (the paper), every layer (the paper:
top 30 of 32); lr 3e-2 from a sweep over 3e-3..3e-1 on the built-in synthetic task with a
random tiny-llama (about 0.55 at best there). On the default (pretrained) tiny-llama, seeds
0-2 reach 0.780 ± 0.006 from 0.512 zero-shot (``benchmarks/results/default_task/RESULTS.md``, ``python benchmarks/suite.py --profile default``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.inject import replace_module
from zoo.method import MethodConfig
from zoo.models.arch import arch_of, blocks
from zoo.registry import register

GATES = ("per_head_tanh", "scalar")
SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2")


@dataclass
class LlamaAdapterConfig(MethodConfig):
    adapter_len: int = 10
    """Number of adaption-prompt tokens per adapted layer."""
    adapter_layers: int | None = None
    """Adapt the top ``adapter_layers`` blocks; None: every block."""
    gate: str = "per_head_tanh"
    """``per_head_tanh``: one gate per query head through tanh; ``scalar``: one gate, no tanh (as peft)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.adapter_len, int) or isinstance(self.adapter_len, bool) or self.adapter_len < 1:
            raise ValueError(f"adapter_len must be a positive integer, got {self.adapter_len!r}")
        if self.adapter_layers is not None and (not isinstance(self.adapter_layers, int) or self.adapter_layers < 1):
            raise ValueError(f"adapter_layers must be a positive integer or None (every layer), got {self.adapter_layers!r}")
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {list(GATES)}, got {self.gate!r}")


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class AdaptedAttention(nn.Module):
    """A frozen self-attention module plus the gated attention to its adaption prompt."""

    def __init__(self, attention: nn.Module, config, adapter_len: int, gate: str):
        super().__init__()
        self.attention = attention
        self.fused_qkv = hasattr(attention, "c_attn")
        self.num_heads: int = config.num_attention_heads
        self.kv_heads: int = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim: int = attention.head_dim
        weight = self._out_proj().weight
        like = dict(dtype=weight.dtype, device=weight.device)
        self.adaption_prompt = nn.Parameter(torch.randn(adapter_len, config.hidden_size, **like))
        # zero: the prompt adds nothing at init, so early training cannot be disturbed by a random prompt
        self.gate = nn.Parameter(torch.zeros(self.num_heads if gate == "per_head_tanh" else 1, **like))
        self.gate_kind = gate

    def adapter_params(self) -> list[str]:
        return ["adaption_prompt", "gate"]

    def _out_proj(self) -> nn.Module:
        return self.attention.c_proj if self.fused_qkv else self.attention.o_proj

    def _queries(self, hidden: Tensor, position_embeddings: tuple[Tensor, Tensor] | None) -> Tensor:
        batch, length, width = hidden.shape
        if self.fused_qkv:
            q = self.attention.c_attn(hidden)[..., :width]
        else:
            q = self.attention.q_proj(hidden)
        q = q.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        if position_embeddings is not None:  # rope, as the base attention rotates its queries
            cos, sin = (t.unsqueeze(1) for t in position_embeddings)  # (B, 1, T, hd)
            q = q * cos + _rotate_half(q) * sin
        return q

    def _prompt_kv(self) -> tuple[Tensor, Tensor]:
        prompt = self.adaption_prompt  # (A, d)
        if self.fused_qkv:
            _, k, v = self.attention.c_attn(prompt).split(prompt.shape[-1], dim=-1)
        else:
            k, v = self.attention.k_proj(prompt), self.attention.v_proj(prompt)
        shape = (prompt.shape[0], self.kv_heads, self.head_dim)
        repeat = self.num_heads // self.kv_heads  # query heads per kv head, as the model's repeat_kv
        k = k.view(shape).transpose(0, 1).repeat_interleave(repeat, dim=0)  # (H, A, hd)
        v = v.view(shape).transpose(0, 1).repeat_interleave(repeat, dim=0)  # (H, A, hd)
        return k, v

    def gate_values(self) -> Tensor:
        """The factor on each head's prompt attention, (H,) or (1,)."""
        return torch.tanh(self.gate) if self.gate_kind == "per_head_tanh" else self.gate

    def forward(self, *args, **kwargs):
        out, *rest = self.attention(*args, **kwargs)
        hidden = args[0] if args else kwargs["hidden_states"]  # (B, T, d)
        q = self._queries(hidden, kwargs.get("position_embeddings"))  # (B, H, T, hd)
        k, v = self._prompt_kv()  # (H, A, hd)
        scores = torch.matmul(q, k.transpose(-1, -2).to(q.dtype)) / math.sqrt(self.head_dim)  # (B, H, T, A)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        mixed = torch.matmul(probs, v.to(q.dtype)) * self.gate_values().to(q.dtype).view(1, -1, 1, 1)  # (B, H, T, hd)
        mixed = mixed.transpose(1, 2).reshape(out.shape)  # (B, T, H·hd)
        projection = self._out_proj().weight
        # Conv1D stores (in, out), nn.Linear (out, in); the bias is already in `out`
        added = mixed @ projection if self.fused_qkv else F.linear(mixed, projection)
        return (out + added, *rest)


@register(
    "llama_adapter", config=LlamaAdapterConfig, identity_at_init=True, mergeable=False,
    model_kinds=("causal_lm",), learning_rate=3e-2,
)
def wrap_llama_adapter(model: nn.Module, cfg: LlamaAdapterConfig) -> nn.Module:
    model_type = getattr(model.config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"llama_adapter does not support model_type {model_type!r}; supported: {list(SUPPORTED_MODEL_TYPES)}")
    arch = arch_of(model)
    layers = blocks(model)
    count = cfg.adapter_layers or len(layers)
    if count > len(layers):
        raise ValueError(f"adapter_layers={count} exceeds the {len(layers)} layers of this {model_type} model")
    for name, block in layers[len(layers) - count:]:
        attention = block.get_submodule(arch.attention)
        replace_module(model, f"{name}.{arch.attention}", AdaptedAttention(attention, model.config, cfg.adapter_len, cfg.gate))
    return model
