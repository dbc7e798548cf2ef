"""A cheap, stable fingerprint of a base model, to refuse adapters saved for another one.

Weights alone do not fix what a model computes: two copies with equal weights but another
``rope_theta`` or ``rms_norm_eps`` in their config give other outputs, so the config counts too.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

_SAMPLE = 16
_IGNORED_CONFIG_KEYS = frozenset({
    # change on a save_pretrained / from_pretrained or dtype round trip, while the outputs do not
    "architectures", "dtype", "torch_dtype", "transformers_version",
    # choose what forward returns or caches, not its values
    "use_cache", "output_attentions", "output_hidden_states", "return_dict", "torchscript",
    # bookkeeping often set after loading (a pad token for the tokenizer, label names); the logits ignore it
    "pad_token_id", "bos_token_id", "eos_token_id", "id2label", "label2id",
})


@torch.no_grad()
def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 over every parameter's name, shape, first values and sum.

    Reads each tensor once (a sum) rather than hashing all bytes, so it stays fast on large
    models; values are rounded to 4 significant digits so a lossless dtype round trip
    (float32 -> float64 -> float32) does not change it. Casting to bfloat16 changes the
    values, and so the fingerprint.
    """
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        flat = param.detach().reshape(-1)
        head = ",".join(f"{v:.4g}" for v in flat[:_SAMPLE].double().tolist())
        total = float(flat.double().sum())
        digest.update(f"{name}|{tuple(param.shape)}|{head}|{total:.4g};".encode())
    return digest.hexdigest()[:16]


def _output_relevant(value: Any) -> Any:
    """``value`` without the config keys that leave outputs alone (see above) and private ``_`` keys (``_name_or_path``)."""
    if isinstance(value, dict):
        return {str(k): _output_relevant(v) for k, v in value.items() if not str(k).startswith("_") and k not in _IGNORED_CONFIG_KEYS}
    if isinstance(value, list | tuple):
        return [_output_relevant(v) for v in value]
    return value


def fingerprint(model: nn.Module) -> str:
    """:func:`weights_fingerprint` combined with ``model.config`` (a transformers config), minus
    the keys that do not change outputs; a model without a config is fingerprinted by its weights."""
    weights = weights_fingerprint(model)
    config = getattr(model, "config", None)
    if not hasattr(config, "to_dict"):
        return weights
    text = json.dumps(_output_relevant(config.to_dict()), sort_keys=True, default=str)
    return hashlib.sha256(f"{weights}|{text}".encode()).hexdigest()[:16]
