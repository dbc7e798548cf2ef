"""The roles of a transformer's parts (blocks, attention, projections, norms, head) for any model.

Methods that act on a role (the key projection, the feed-forward output) rather than on a
user-given module name ask :func:`roles_of`. Roles are found from the model's structure by
:mod:`zoo.models.discover`; two sources override what is found, in this order:

1. the user's, stored on the model by :func:`set_roles` (``zoo model.roles.query=attn.wq``
   reaches it through :func:`zoo.models.load.load_model`), for an exotic model;
2. :data:`OVERRIDES`, per ``config.model_type``, for families whose structure misleads discovery.

Paths of per-block roles are relative to a block; ``blocks``, ``embedding``, ``lm_head`` and
``final_norm`` are full module names.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.inject import LINEAR_TYPES, quantized
from zoo.method import POSITIONAL_SCHEMES, MethodSpec
from zoo.models.cache_kwarg import CACHE_KWARG
from zoo.models.checkpointing import checkpointing
from zoo.models.discover import discover, find_blocks

ROLES_ATTR = "zoo_roles"
"""Attribute of a model holding the user's role overrides (a dict), set by :func:`set_roles`."""
QKV_LAYOUTS = ("separate", "concat", "grouped")
OVERRIDES: dict[str, dict[str, Any]] = {}

ROLE_DESCRIPTIONS = {  # what each role is: zoo.models.arch.Roles, the messages of require(), docs/plugins/roles.md
    "blocks": "the nn.ModuleList of transformer blocks (full name)",
    "attention": "the self-attention module of a block",
    "query": "the query projection",
    "key": "the key projection",
    "value": "the value projection",
    "attn_out": "the attention output projection",
    "ff_in": "the feed-forward input projections",
    "ff_out": "the feed-forward output projection",
    "norms": "the layer norms of a block",
    "query_norm": "the norm on the queries",
    "key_norm": "the norm on the keys",
    "embedding": "the input embedding (full name)",
    "lm_head": "the LM head (full name)",
    "final_norm": "the final norm (full name)",
    "qkv_layout": f"how a fused q/k/v output is laid out, one of {QKV_LAYOUTS}",
    "num_heads": "the number of query heads",
    "num_kv_heads": "the number of key/value heads",
    "head_dim": "the width of a head",
    "positional": f"the positional scheme, one of {POSITIONAL_SCHEMES}",
}

ROLE_NAMES = tuple(ROLE_DESCRIPTIONS)


@dataclass(frozen=True)
class Roles:
    """Where each part of a transformer lives; ``None`` where the model has none (or it was not found)."""

    blocks: str
    attention: str | None = None
    query: str | None = None
    key: str | None = None
    value: str | None = None
    """Equal to ``query`` and ``key`` when one projection computes all three (GPT-2 ``c_attn``, Phi-3 ``qkv_proj``)."""
    attn_out: str | None = None
    ff_in: tuple[str, ...] = ()
    ff_out: str | None = None
    norms: tuple[str, ...] = ()
    query_norm: str | None = None
    key_norm: str | None = None
    embedding: str | None = None
    lm_head: str | None = None
    final_norm: str | None = None
    qkv_layout: str = "separate"
    """``concat``: every query, then every key, then every value; ``grouped``: per key/value head, its queries, then its key
    and its value (GPT-NeoX ``query_key_value``)."""
    num_heads: int = 1
    num_kv_heads: int = 1
    head_dim: int = 1
    positional: str = "absolute"
    model_name: str = "model"
    """The model's class, for messages."""

    @property
    def fused_qkv(self) -> bool:
        return self.qkv_layout != "separate"

    def require(self, *names: str) -> list[Any]:
        """The values of roles ``names``; a missing one raises an error saying how to name it.

        Raises:
            ValueError: a role is ``None``, empty, or not a role.
        """
        values = []
        for name in names:
            if name not in ROLE_DESCRIPTIONS:
                raise ValueError(f"{name!r} is not a role; roles: {list(ROLE_NAMES)}")
            value = getattr(self, name)
            if value is None or value == ():
                where = (
                    "a full module name" if name in ("blocks", "embedding", "lm_head", "final_norm") else "a path inside a block"
                )
                raise ValueError(
                    f"could not find {ROLE_DESCRIPTIONS[name]} (role {name!r}) in {self.model_name} (blocks: {self.blocks}); "
                    f"name it as {where}: model.roles.{name}=<path> on the command line, or "
                    f"zoo.models.arch.set_roles(model, {name}=...) in Python"
                )
            values.append(value)
        return values

    def qkv_indices(self, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positions of q, k and v in a fused projection's output of ``width`` features.

        Raises:
            ValueError: the width is not (heads + 2·kv_heads)·head_dim.
        """
        hd, heads, kv = self.head_dim, self.num_heads, self.num_kv_heads
        if (heads + 2 * kv) * hd != width or heads % kv:
            raise ValueError(
                f"fused q/k/v output of width {width} does not hold {heads} query and {kv} key/value heads of "
                f"width {hd}; set model.roles.num_heads / num_kv_heads / head_dim"
            )
        arange = functools.partial(torch.arange, device="cpu")  # index metadata, also while a meta-device dry run wraps
        if self.qkv_layout == "concat":
            q, k = heads * hd, kv * hd
            return arange(q), arange(q, q + k), arange(q + k, width)
        group = (heads // kv + 2) * hd  # grouped: per kv head, its query heads then its key and its value
        starts = arange(kv).unsqueeze(1) * group
        q = (starts + arange(heads // kv * hd)).reshape(-1)
        k = (starts + heads // kv * hd + arange(hd)).reshape(-1)
        return q, k, k + hd


def set_roles(model: nn.Module, **roles: Any) -> nn.Module:
    """Name roles of ``model`` by hand (an exotic architecture); they override discovery. Returns ``model``.

    ``ff_in`` and ``norms`` take a list or a comma-separated string.

    Raises:
        ValueError: an unknown role, layout or positional scheme; the message lists the valid ones.
    """
    unknown = sorted(set(roles) - set(ROLE_NAMES))
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; roles: {list(ROLE_NAMES)}")
    for name in ("ff_in", "norms"):
        if isinstance(roles.get(name), str):
            roles[name] = tuple(p.strip() for p in roles[name].split(",") if p.strip())
        elif name in roles:
            roles[name] = tuple(roles[name])
    if roles.get("qkv_layout", "separate") not in QKV_LAYOUTS:
        raise ValueError(f"qkv_layout {roles['qkv_layout']!r} is not one of {QKV_LAYOUTS}")
    if roles.get("positional", "absolute") not in POSITIONAL_SCHEMES:
        raise ValueError(f"positional {roles['positional']!r} is not one of {POSITIONAL_SCHEMES}")
    model.__dict__[ROLES_ATTR] = {**getattr(model, ROLES_ATTR, {}), **roles}  # a plain attribute, not a submodule or buffer
    return model


def _given(model: nn.Module) -> dict[str, Any]:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return {**OVERRIDES.get(model_type, {}), **getattr(model, ROLES_ATTR, {})}


def roles_of(model: nn.Module) -> Roles:
    """The :class:`Roles` of a transformers model: discovered, then overridden.

    Raises:
        ValueError: no blocks were found, or a given path names no module of the model.
    """
    given = _given(model)
    found = discover(model, given)
    _check_paths(model, found, given)
    return Roles(**found, model_name=type(model).__name__)


def _check_paths(model: nn.Module, roles: dict[str, Any], given: dict[str, Any]) -> None:
    """Every path the caller gave must name a module (per-block paths: in the first block)."""
    block = model.get_submodule(roles["blocks"])[0]
    for name, value in given.items():
        if name in ("qkv_layout", "positional", "num_heads", "num_kv_heads", "head_dim") or value is None:
            continue
        full = name in ("blocks", "embedding", "lm_head", "final_norm")
        for path in value if isinstance(value, tuple) else (value,):
            try:
                (model if full else block).get_submodule(path)
            except AttributeError:
                linears = [p for p, m in block.named_modules() if isinstance(m, LINEAR_TYPES)]
                raise ValueError(
                    f"role {name!r} names {path!r}, which is no module of "
                    f"{'the model' if full else 'a block'}; linear maps in a block: {linears}"
                ) from None


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(full name, block)`` for each transformer block, in order."""
    prefix = _given(model).get("blocks") or find_blocks(model)
    return [(f"{prefix}.{i}", block) for i, block in enumerate(model.get_submodule(prefix))]


def block_names(model: nn.Module, path: str) -> list[str]:
    """The full name of the module at ``path`` (relative to a block) in every block."""
    return [f"{name}.{path}" for name, _ in blocks(model)]


def query_value_targets(model: nn.Module) -> list[str]:
    """Every block's query and value projections (a fused q/k/v projection once): the LoRA paper's placement."""
    query, value = roles_of(model).require("query", "value")
    return [name for path in dict.fromkeys((query, value)) for name in block_names(model, path)]


def refusal(spec: MethodSpec, model: nn.Module) -> str | None:
    """Why the capability flags of ``spec`` exclude ``model`` (its kind, a cache it cannot take, quantized weights, gradient
    checkpointing that drops its cache, its positional scheme, its own ``refuses``); None where they do not."""
    kind = model_kind(model)
    if kind not in spec.model_kinds:
        return f"method {spec.name!r} supports {list(spec.model_kinds)} models, not a {kind} ({type(model).__name__})"
    if spec.uses_cache and CACHE_KWARG not in inspect.signature(model.forward).parameters:
        return (
            f"method {spec.name!r} supports models whose forward takes a key/value cache (it enters through it), "
            f"and {type(model).__name__}'s takes none (no {CACHE_KWARG!r} argument)"
        )
    if not spec.quantized_base and quantized(model):
        return (
            f"method {spec.name!r} supports full-precision base models, not the quantized {type(model).__name__} (packed integer "
            f"weights, bitsandbytes' 4-/8-bit): it does not declare quantized_base; use model.quantization=null"
        )
    if spec.uses_cache and checkpointing(model):
        return (
            f"method {spec.name!r} supports models without gradient checkpointing: it enters through the key/value cache, "
            f"which transformers drops in checkpointed blocks; use model.gradient_checkpointing=false"
        )
    if spec.refuses is not None and (reason := spec.refuses(model)) is not None:
        return reason
    if set(spec.positional_schemes) == set(POSITIONAL_SCHEMES):
        return None  # every scheme: no need to look at the model
    scheme = roles_of(model).positional
    if scheme not in spec.positional_schemes:
        return (
            f"method {spec.name!r} supports the positional schemes {list(spec.positional_schemes)}, not the {scheme!r} "
            f"positions of {type(model).__name__}: it cannot reproduce how that model's attention uses them"
        )
    return None


def check_supported(spec: MethodSpec, model: nn.Module) -> None:
    """Raise the :func:`refusal` of ``spec`` for ``model``, if any.

    Raises:
        ValueError: the method declares it does not support this kind of model, its lack of a cache, or its positional scheme.
    """
    if (reason := refusal(spec, model)) is not None:
        raise ValueError(reason)


def model_kind(model: nn.Module) -> str:
    """``causal_lm`` for models that generate, ``encoder`` otherwise."""
    can_generate = getattr(model, "can_generate", None)
    return "causal_lm" if callable(can_generate) and can_generate() else "encoder"
