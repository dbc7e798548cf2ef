"""Find the roles of a transformer's parts from its structure, for any transformers model.

No table of architectures: the blocks are the largest ``nn.ModuleList`` of repeated modules
that hold linear maps; inside the first block the projections are told apart by common
names (``q_proj``, ``query``, ``c_attn``, ``query_key_value``, ``Wqkv``, ``fc1``, ``dense_4h_to_h``,
...) and, where names say nothing, by shape (a query maps the hidden width to heads·head_dim,
the feed-forward output maps back to the hidden width); the attention module is the smallest
module holding the query, key, value and output projections. Roles given by the caller (the
user's ``model.roles``, or :data:`zoo.models.arch.OVERRIDES`) are taken as they are and the
rest is found around them. A role that cannot be found is left ``None``; methods ask for the
roles they need through :meth:`zoo.models.arch.Roles.require`, which says how to name a missing one.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from zoo.inject import LINEAR_TYPES, linear_shape

QUERY = {"q_proj", "query", "q", "wq", "query_proj", "q_lin"}
KEY = {"k_proj", "key", "k", "wk", "key_proj", "k_lin"}
VALUE = {"v_proj", "value", "v", "wv", "value_proj", "v_lin"}
FUSED_QKV = {"qkv_proj", "c_attn", "wqkv", "query_key_value", "qkv", "w_pack"}
GROUPED_QKV = {"query_key_value"}
"""Fused projections laid out per key/value head, [q… k v] per group (GPT-NeoX, Bloom, Falcon); others are [q | k | v]."""
ATTN_OUT = {"o_proj", "out_proj", "c_proj", "dense", "wo", "o", "out_lin"}
FF_IN = {
    "gate_proj",
    "up_proj",
    "gate_up_proj",
    "fc1",
    "c_fc",
    "dense_h_to_4h",
    "wi",
    "w1",
    "w3",
    "fc_in",
    "lin1",
    "wi_0",
    "wi_1",
}
FF_OUT = {"down_proj", "fc2", "c_proj", "dense_4h_to_h", "wo", "w2", "fc_out", "lin2", "dense"}
QUERY_NORM = {"q_norm", "q_layernorm", "query_norm", "q_ln"}
KEY_NORM = {"k_norm", "k_layernorm", "key_norm", "k_ln"}


def find_blocks(model: nn.Module) -> str:
    """Full name of the largest ``nn.ModuleList`` whose items share one class and hold linear maps.

    Raises:
        ValueError: the model has no such list; says how to name it.
    """
    best: tuple[int, str] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0 or len({type(m) for m in module}) != 1:
            continue
        if sum(isinstance(m, LINEAR_TYPES) for m in module[0].modules()) < 2:
            continue
        size = sum(p.numel() for p in module.parameters())
        if best is None or size > best[0]:
            best = (size, name)
    if best is None:
        raise ValueError(
            f"{type(model).__name__} has no nn.ModuleList of repeated blocks holding linear layers; name it with "
            "model.roles.blocks=<full module path> (Python: zoo.models.arch.set_roles(model, blocks=...))"
        )
    return best[1]


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].lower()


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def _common(paths: list[str]) -> str:
    """The deepest module path containing every path of ``paths`` ('' for the block itself)."""
    parts = [p.split(".") for p in paths]
    shared = []
    for names in zip(*parts):
        if len(set(names)) != 1:
            break
        shared.append(names[0])
    return ".".join(shared)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or (
        "norm" in type(module).__name__.lower() and any(True for _ in module.parameters())
    )


def _named(linears: dict[str, nn.Module], names: set[str]) -> list[str]:
    return [p for p in linears if _leaf(p) in names]


def _attention_projections(linears: dict[str, nn.Module], hidden: int, fused_width: int, given: dict[str, Any]) -> dict[str, str]:
    """``query``/``key``/``value`` paths (one shared path when fused), by name, else by shape."""
    found = {role: given[role] for role in ("query", "key", "value") if given.get(role)}
    if len(found) == 3:
        return found
    separate = {role: _named(linears, names) for role, names in (("query", QUERY), ("key", KEY), ("value", VALUE))}
    if all(separate.values()):
        return {role: found.get(role, paths[0]) for role, paths in separate.items()}
    fused = _named(linears, FUSED_QKV)
    if not fused:  # by shape: the one map from the hidden width to (heads + 2·kv_heads)·head_dim
        fused = [p for p, m in linears.items() if linear_shape(m) == (hidden, fused_width)]
        fused = fused if len(fused) == 1 else []
    if fused:
        return {role: found.get(role, fused[0]) for role in ("query", "key", "value")}
    return found


def _config_heads(config, given: dict[str, Any], hidden: int) -> tuple[int, int, int]:
    """``(heads, kv_heads, head_dim)`` as the config (or the caller) states them."""
    heads = given.get("num_heads") or config.num_attention_heads
    kv_heads = given.get("num_kv_heads") or getattr(config, "num_key_value_heads", None) or heads
    return heads, kv_heads, given.get("head_dim") or getattr(config, "head_dim", None) or hidden // heads


def _heads(config, linears: dict[str, nn.Module], roles: dict[str, Any], hidden: int) -> dict[str, int]:
    """Query heads, key/value heads and head width: from the config, corrected by the projections' shapes."""
    heads, kv_heads, head_dim = _config_heads(config, roles, hidden)
    query, key = roles.get("query"), roles.get("key")
    if query in linears and query == key:  # fused: the width is (heads + 2·kv_heads)·head_dim
        width = linear_shape(linears[query])[1]
        if (heads + 2 * kv_heads) * head_dim != width and not roles.get("num_kv_heads"):
            kv_heads = (width // head_dim - heads) // 2
    elif query in linears and key in linears:
        head_dim = roles.get("head_dim") or linear_shape(linears[query])[1] // heads
        kv_heads = roles.get("num_kv_heads") or linear_shape(linears[key])[1] // head_dim
    return {"num_heads": heads, "num_kv_heads": kv_heads, "head_dim": head_dim}


def _attn_out(linears: dict[str, nn.Module], roles: dict[str, Any], hidden: int) -> str | None:
    """The map from heads·head_dim back to the hidden width nearest the query, then the best-named; None if that is a tie."""
    taken = {roles.get("query"), roles.get("key"), roles.get("value")}
    width = roles["num_heads"] * roles["head_dim"]
    near = _parent(roles["query"]) if roles.get("query") else ""
    scores = {
        p: (len(_common([p, near]).split(".")) if _common([p, near]) else 0, _leaf(p) in ATTN_OUT)
        for p, m in linears.items()
        if p not in taken and linear_shape(m) == (width, hidden)
    }
    best = sorted(scores, key=scores.get, reverse=True)
    if not best or (len(best) > 1 and scores[best[0]] == scores[best[1]]):
        return None  # no candidate, or several equally likely: better to ask than to guess
    return best[0]


def _feed_forward(linears: dict[str, nn.Module], roles: dict[str, Any], hidden: int) -> tuple[tuple[str, ...], str | None]:
    """``(ff_in, ff_out)`` among the linear maps outside the attention module."""
    attention = roles.get("attention")
    taken = {roles.get(r) for r in ("query", "key", "value", "attn_out")}
    outside = {
        p: m
        for p, m in linears.items()
        if p not in taken and not (attention and (p == attention or p.startswith(attention + ".")))
    }
    ff_out = roles.get("ff_out")
    if not ff_out:
        to_hidden = [p for p, m in outside.items() if linear_shape(m)[1] == hidden]
        named = [p for p in to_hidden if _leaf(p) in FF_OUT]
        ff_out = (named or to_hidden or [None])[-1]
    ff_in = roles.get("ff_in")
    if not ff_in:
        from_hidden = [p for p, m in outside.items() if p != ff_out and linear_shape(m)[0] == hidden]
        ff_in = tuple(_named(dict.fromkeys(from_hidden), FF_IN) or from_hidden)
    return tuple(ff_in), ff_out


def _positional(model: nn.Module, attention: nn.Module | None) -> str:
    """``rotary``, ``relative``, ``alibi`` or ``absolute``: how the model tells positions apart."""
    if any("rotary" in type(m).__name__.lower() for m in model.modules()):
        return "rotary"
    config = model.config
    if getattr(config, "relative_attention", False) or hasattr(config, "relative_attention_num_buckets"):
        return "relative"
    if getattr(config, "alibi", False) or (attention is not None and "alibi" in inspect.signature(attention.forward).parameters):
        return "alibi"
    return "absolute"


def _module_name(model: nn.Module, module: nn.Module | None) -> str | None:
    return next((n for n, m in model.named_modules() if m is module), None) if module is not None else None


def text_config(model: nn.Module):
    """The config of the language part (a multimodal model's text config, else the config itself)."""
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def discover(model: nn.Module, given: dict[str, Any]) -> dict[str, Any]:
    """Every role of ``model`` by name (``None`` where not found), taking those in ``given`` as they are."""
    roles: dict[str, Any] = dict(given)
    roles["blocks"] = roles.get("blocks") or find_blocks(model)
    container = model.get_submodule(roles["blocks"])
    block = container[0]
    config = text_config(model)
    hidden = getattr(config, "hidden_size", None) or model.get_input_embeddings().embedding_dim
    linears = {p: m for p, m in block.named_modules() if isinstance(m, LINEAR_TYPES)}
    heads, kv_heads, head_dim = _config_heads(config, given, hidden)
    roles.update(_attention_projections(linears, hidden, (heads + 2 * kv_heads) * head_dim, roles))
    roles.update(_heads(config, linears, roles, hidden))
    if not roles.get("attn_out"):
        roles["attn_out"] = _attn_out(linears, roles, hidden)
    attention_parts = [roles[r] for r in ("query", "key", "value", "attn_out") if roles.get(r)]
    if "attention" not in given and len(attention_parts) == 4:
        roles["attention"] = _common(attention_parts) or None
    roles["ff_in"], roles["ff_out"] = _feed_forward(linears, roles, hidden)
    inner = roles.get("attention")
    for role, names in (("query_norm", QUERY_NORM), ("key_norm", KEY_NORM)):
        if role not in given and inner:
            roles[role] = next(
                (p for p, m in block.named_modules() if p.startswith(inner + ".") and _leaf(p) in names and _is_norm(m)), None
            )
    if "norms" not in given:
        special = {roles.get("query_norm"), roles.get("key_norm")}
        norms = [p for b in container for p, m in b.named_modules() if _is_norm(m) and p not in special]
        roles["norms"] = tuple(dict.fromkeys(norms))
    if "qkv_layout" not in given:
        fused = roles.get("query") and roles.get("query") == roles.get("key") == roles.get("value")
        roles["qkv_layout"] = ("grouped" if _leaf(roles["query"]) in GROUPED_QKV else "concat") if fused else "separate"
    embedding = model.get_input_embeddings()
    roles.setdefault("embedding", _module_name(model, embedding))
    roles.setdefault(
        "lm_head", _module_name(model, model.get_output_embeddings()) if hasattr(model, "get_output_embeddings") else None
    )
    if "final_norm" not in given:
        holder = _parent(roles["embedding"] or "")
        skip = holder + "." if "embed" in _leaf(holder) else None  # norms inside an embeddings module belong to it
        outside = [
            n
            for n, m in model.named_modules()
            if _is_norm(m) and not n.startswith(roles["blocks"] + ".") and not (skip and n.startswith(skip))
        ]
        roles["final_norm"] = outside[-1] if outside else None
    if "positional" not in given:
        roles["positional"] = _positional(model, block.get_submodule(inner) if inner else None)
    return roles
