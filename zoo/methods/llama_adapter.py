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

Any causal LM: the wrapper sits around the attention module ``zoo.models.arch`` finds and uses
that model's own pieces: its q/k/v/output projections (separate or fused, any layout), its
query/key norms where it has them (Qwen3, Gemma 3, OLMo 2), its attention scaling (Gemma's
``query_pre_attn_scalar``) and its rotary embedding, applied by the ``apply_rotary_pos_emb``
of the model's own code (partial rotary in GPT-NeoX and Phi-3 included). Absolute and ALiBi
positions need nothing: the prompt has no position. Relative schemes (DeBERTa, T5) score
queries against positions inside attention, which the wrapper cannot reproduce: the spec
declares them unsupported. Not mergeable. Defaults: 10 prompt tokens (the paper), every layer (the paper:
top 30 of 32); lr 3e-2 from a sweep over 3e-3..3e-1 on the built-in synthetic task with a
random tiny-llama (about 0.55 at best there). On the default (pretrained) tiny-llama, seeds
0-2 reach 0.780 ± 0.006 from 0.512 zero-shot (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``).

peft's format (``PeftFormat("ADAPTION_PROMPT")``, peft's ``AdaptionPromptConfig``): per adapted attention module one
``adaption_prompt`` (1, A, d) and one ``adaption_gate`` (1,), in the top ``adapter_layers`` layers. peft's gate is one
scalar with no tanh: zoo's ``gate="scalar"``; the default per-head tanh gate has no peft equivalent. peft adapts Llama and
Mistral (``self_attn``) the way zoo does; on GPT-2 it adds the prompt's attention without the output projection, so GPT-2
(and every other family) does not convert.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from zoo.inject import linear_shape, replace_module
from zoo.method import MethodConfig
from zoo.models.arch import Roles, blocks, roles_of
from zoo.peft_format import (
    PREFIX,
    ImportPlan,
    NotConvertible,
    PeftAdapter,
    PeftFormat,
    by_module,
    check_numbers,
    check_sizes,
    refuse_options,
)
from zoo.registry import register

if TYPE_CHECKING:
    import peft
    from transformers import PretrainedConfig

    from zoo.wrapped import ZooModel

GATES = ("per_head_tanh", "scalar")


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


def rotary_function(attention: nn.Module):
    """The ``apply_rotary_pos_emb(q, k, cos, sin)`` of the code that defines ``attention`` (or a base class), or None."""
    for cls in type(attention).__mro__:
        fn = getattr(sys.modules.get(cls.__module__), "apply_rotary_pos_emb", None)
        if callable(fn):
            return fn
    return None


class AdaptedAttention(nn.Module):
    """A frozen self-attention module plus the gated attention to its adaption prompt.

    The projections and norms stay the attention module's own children; this wrapper keeps
    their paths inside it (``roles``, relative to the attention module), not a second reference.
    """

    def __init__(self, attention: nn.Module, roles: Roles, adapter_len: int, gate: str):
        super().__init__()
        self.attention = attention
        inside = len(roles.attention) + 1
        self.paths = {
            r: getattr(roles, r)[inside:] if getattr(roles, r) else None
            for r in ("query", "key", "value", "attn_out", "query_norm", "key_norm")
        }
        self.num_heads, self.kv_heads, self.head_dim = roles.num_heads, roles.num_kv_heads, roles.head_dim
        self.scaling: float = getattr(attention, "scaling", self.head_dim**-0.5)
        self.rotary = rotary_function(attention) if roles.positional == "rotary" else None
        self._arguments = [
            p.name
            for p in inspect.signature(attention.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        width, fused_width = linear_shape(attention.get_submodule(self.paths["query"]))
        indices = roles.qkv_indices(fused_width) if roles.fused_qkv else (None, None, None)
        for name, index in zip(("q_index", "k_index", "v_index"), indices):
            self.register_buffer(name, index, persistent=False)
        weight = attention.get_submodule(self.paths["attn_out"]).weight
        like = dict(dtype=weight.dtype, device=weight.device)
        self.adaption_prompt = nn.Parameter(torch.randn(adapter_len, width, **like))
        # zero: the prompt adds nothing at init, so early training cannot be disturbed by a random prompt
        self.gate = nn.Parameter(torch.zeros(self.num_heads if gate == "per_head_tanh" else 1, **like))
        self.gate_kind = gate

    def adapter_params(self) -> list[str]:
        return ["adaption_prompt", "gate"]

    def _project(self, role: str, x: Tensor, index: Tensor | None, heads: int) -> Tensor:
        """``x`` (..., d) through the model's projection and norm for ``role``: (..., heads, head_dim)."""
        y = self.attention.get_submodule(self.paths[role])(x)
        if index is not None:  # the role's features of a fused q/k/v output
            y = y.index_select(-1, index)
        norm_path = self.paths["query_norm" if role == "query" else "key_norm"] if role != "value" else None
        norm = self.attention.get_submodule(norm_path) if norm_path else None
        whole = norm is not None and sum(p.numel() for p in norm.parameters()) == heads * self.head_dim
        if whole:  # OLMo 2 normalises all heads together, Qwen3 and Gemma 3 each head
            y = norm(y)
        y = y.view(*y.shape[:-1], heads, self.head_dim)
        return norm(y) if norm is not None and not whole else y

    def queries(self, hidden: Tensor, position_embeddings: tuple[Tensor, Tensor] | None) -> Tensor:
        """The model's own queries for ``hidden`` (B, T, d): projected, normed, rotated; (B, H, T, hd), unscaled."""
        q = self._project("query", hidden, self.q_index, self.num_heads).transpose(1, 2)  # (B, H, T, hd)
        if self.rotary is not None:  # rotate the queries as the model does; the prompt keys keep no position
            cos, sin = position_embeddings
            q = self.rotary(q, q, cos, sin)[0]
        return q

    def prompt_keys_values(self) -> tuple[Tensor, Tensor]:
        """Keys and values of the adaption prompt, each (H, A, hd): the model's own maps, no position."""
        prompt = self.adaption_prompt  # (A, d)
        repeat = self.num_heads // self.kv_heads  # query heads per kv head, as the model's repeat_kv
        k = self._project("key", prompt, self.k_index, self.kv_heads).transpose(0, 1)  # (Hkv, A, hd)
        v = self._project("value", prompt, self.v_index, self.kv_heads).transpose(0, 1)  # (Hkv, A, hd)
        return k.repeat_interleave(repeat, dim=0), v.repeat_interleave(repeat, dim=0)  # (H, A, hd)

    def gate_values(self) -> Tensor:
        """The factor on each head's prompt attention, (H,) or (1,)."""
        return torch.tanh(self.gate) if self.gate_kind == "per_head_tanh" else self.gate

    def forward(self, *args, **kwargs):
        result = self.attention(*args, **kwargs)
        out, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, None)
        arguments = {**dict(zip(self._arguments, args)), **kwargs}
        hidden = arguments["hidden_states"] if "hidden_states" in arguments else args[0]  # (B, T, d)
        q = self.queries(hidden, arguments.get("position_embeddings"))  # (B, H, T, hd)
        k, v = self.prompt_keys_values()  # (H, A, hd)
        scores = torch.matmul(q, k.transpose(-1, -2).to(q.dtype)) * self.scaling  # (B, H, T, A)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        mixed = torch.matmul(probs, v.to(q.dtype)) * self.gate_values().to(q.dtype).view(1, -1, 1, 1)  # (B, H, T, hd)
        mixed = mixed.transpose(1, 2).reshape(*out.shape[:-1], -1)  # (B, T, H·hd)
        projection = self.attention.get_submodule(self.paths["attn_out"])
        # Conv1D stores (in, out), nn.Linear (out, in); the bias is already in `out`
        added = mixed @ projection.weight if isinstance(projection, Conv1D) else F.linear(mixed, projection.weight)
        return out + added if rest is None else (out + added, *rest)


def _check(attention: nn.Module, roles: Roles, name: str) -> None:
    """Refuse, naming the reason, an attention module this wrapper cannot reproduce."""
    for role in ("query", "key", "value", "attn_out"):
        if not getattr(roles, role).startswith(roles.attention + "."):
            raise ValueError(
                f"llama_adapter: the {role} projection {getattr(roles, role)!r} is not inside the attention "
                f"module {roles.attention!r}; name the module holding the projections with model.roles.attention"
            )
    parameters = inspect.signature(attention.forward).parameters
    if roles.positional == "rotary" and (rotary_function(attention) is None or "position_embeddings" not in parameters):
        raise ValueError(
            f"llama_adapter rotates the queries with the model's own rotary embedding, but {type(attention).__name__} at {name} "
            f"takes no position_embeddings or its code ({type(attention).__module__}) has no apply_rotary_pos_emb"
        )


PEFT_ATTENTION = {"llama": "self_attn", "mistral": "self_attn"}
"""Model types whose adaption prompts peft computes as zoo does, and the attention module peft targets."""
PEFT_SUPPORTED = {"modules_to_save": (None, [])}


def _peft_attention(model_type: str, source: str) -> str:
    if model_type not in PEFT_ATTENTION:
        raise NotConvertible(
            f"{source}: peft's adaption prompt matches zoo's on model types {sorted(PEFT_ATTENTION)} only, not {model_type!r}"
        )
    return PEFT_ATTENTION[model_type]


def export_llama_adapter(model: ZooModel) -> PeftAdapter:
    cfg: LlamaAdapterConfig = model.method_config
    if cfg.gate != "scalar":
        raise NotConvertible(
            f"llama_adapter with gate={cfg.gate!r} does not convert: peft's adaption prompt has one "
            "scalar gate without tanh; wrap with gate='scalar' to export"
        )
    target = _peft_attention(model.config.model_type, "llama_adapter export")
    tensors = {}
    for name, module in model.model.named_modules():
        if isinstance(module, AdaptedAttention):
            tensors[f"{PREFIX}{name}.adaption_prompt"] = module.adaption_prompt.unsqueeze(0)  # (1, A, d)
            tensors[f"{PREFIX}{name}.adaption_gate"] = module.gate  # (1,)
    config = {"adapter_len": cfg.adapter_len, "adapter_layers": len(tensors) // 2, "target_modules": target}
    return PeftAdapter(config, tensors)


def import_adaption_prompt(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    source = str(folder)
    refuse_options(adapter.config, PEFT_SUPPORTED, source)
    check_numbers(adapter.config, {"adapter_len": int, "adapter_layers": int}, source)
    target = _peft_attention(base.config.model_type, source)
    modules = by_module(adapter.tensors, ("adaption_prompt", "adaption_gate"), source)
    if any(not name.endswith("." + target) or len(parts) != 2 for name, parts in modules.items()):
        raise NotConvertible(
            f"{source}: expected an adaption_prompt and an adaption_gate per '{target}' module, found "
            f"{ {name: sorted(parts) for name, parts in modules.items()} }"
        )
    rows = {parts["adaption_prompt"].shape[-2] for parts in modules.values()}
    check_sizes(adapter.config, {"adapter_layers": len(modules), "adapter_len": rows.pop() if len(rows) == 1 else None}, source)
    cfg = LlamaAdapterConfig(adapter_len=adapter.config["adapter_len"], adapter_layers=len(modules), gate="scalar")
    weights = {}
    for name, parts in modules.items():
        weights[f"{name}.adaption_prompt"] = parts["adaption_prompt"].squeeze(0)  # (A, d)
        weights[f"{name}.gate"] = parts["adaption_gate"]
    return ImportPlan(cfg, lambda _: weights)


def peft_equivalent(cfg: LlamaAdapterConfig, config: PretrainedConfig) -> peft.PeftConfig:
    """peft's adaption prompt of ``cfg``'s length and layers (its size equals zoo's with ``gate="scalar"``)."""
    import peft  # only here: zoo itself never needs peft

    return peft.AdaptionPromptConfig(
        adapter_len=cfg.adapter_len, adapter_layers=cfg.adapter_layers or config.num_hidden_layers, task_type="CAUSAL_LM"
    )


@register(
    "llama_adapter",
    config=LlamaAdapterConfig,
    identity_at_init=True,
    mergeable=False,
    model_kinds=("causal_lm",),
    positional_schemes=("rotary", "absolute", "alibi"),
    learning_rate=3e-2,
    peft=PeftFormat(
        "ADAPTION_PROMPT", export=export_llama_adapter, import_=import_adaption_prompt, equivalent_config=peft_equivalent
    ),
)
def wrap_llama_adapter(model: nn.Module, cfg: LlamaAdapterConfig) -> nn.Module:
    roles = roles_of(model)
    roles.require("attention", "query", "key", "value", "attn_out")
    layers = blocks(model)
    count = cfg.adapter_layers or len(layers)
    if count > len(layers):
        raise ValueError(f"adapter_layers={count} exceeds the {len(layers)} layers of this {model.config.model_type} model")
    for name, block in layers[len(layers) - count :]:
        attention = block.get_submodule(roles.attention)
        _check(attention, roles, f"{name}.{roles.attention}")
        replace_module(model, f"{name}.{roles.attention}", AdaptedAttention(attention, roles, cfg.adapter_len, cfg.gate))
    return model
