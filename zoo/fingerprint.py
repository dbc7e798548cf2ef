"""A stable fingerprint of a base model, to refuse adapters saved for another one.

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
_IGNORED_CONFIG_KEYS = frozenset(
    {
        # change on a save_pretrained / from_pretrained or dtype round trip, while the outputs do not
        "architectures",
        "dtype",
        "torch_dtype",
        "transformers_version",
        # choose what forward returns or caches, not its values
        "use_cache",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
        "torchscript",
        # bookkeeping often set after loading (a pad token for the tokenizer, label names); the logits ignore it
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "id2label",
        "label2id",
    }
)


VERSION = 2
"""The fingerprint's scheme: 2 hashes every byte of every parameter; 1 (adapters saved before it) read 16 values
and the sum of each, so swapped rows or a sum-preserving edit passed (:func:`sampled_weights_fingerprint`)."""


@torch.no_grad()
def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 over every parameter's name, shape, dtype and bytes: any changed, swapped or permuted value changes it.

    A lossless dtype round trip (float32 -> float64 -> float32) gives back the same bytes, and so
    the same fingerprint; a model held in another dtype (bfloat16) has another one.

    Cost: it reads every byte once, so it grows linearly with the model's bytes at SHA-256's throughput
    (about 0.45 GB/s on the CPU measured), plus a copy to the CPU for a model on a GPU. Measured on a
    model of SmolLM2-135M's shapes (134.5M float32 parameters, 538 MB; ``python -m benchmarks.fingerprint_cost``)
    on two busy CPU cores: 1.4 s, 10-11 ns per parameter (scheme 1, 16 values and a float64 sum per
    tensor, took 9.6 s there: its casts cost more than hashing the bytes).
    """
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        flat = param.detach().reshape(-1)
        digest.update(f"{name}|{tuple(param.shape)}|{flat.dtype};".encode())
        digest.update(flat.cpu().contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


@torch.no_grad()
def sampled_weights_fingerprint(model: nn.Module) -> str:
    """Scheme 1, kept to check adapters saved with it: SHA-256 over every parameter's name, shape, first 16 values
    and sum, each rounded to 4 significant digits. It cannot tell swapped rows or a sum-preserving edit apart."""
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
        return {
            str(k): _output_relevant(v) for k, v in value.items() if not str(k).startswith("_") and k not in _IGNORED_CONFIG_KEYS
        }
    if isinstance(value, list | tuple):
        return [_output_relevant(v) for v in value]
    return value


def fingerprint(model: nn.Module, version: int = VERSION) -> str:
    """:func:`weights_fingerprint` combined with ``model.config`` (a transformers config), minus
    the keys that do not change outputs; a model without a config is fingerprinted by its weights.
    ``version=1``: with :func:`sampled_weights_fingerprint`, as adapters saved before version 2 recorded it."""
    weights = weights_fingerprint(model) if version >= 2 else sampled_weights_fingerprint(model)
    config = getattr(model, "config", None)
    if not hasattr(config, "to_dict"):
        return weights
    text = json.dumps(_output_relevant(config.to_dict()), sort_keys=True, default=str)
    return hashlib.sha256(f"{weights}|{text}".encode()).hexdigest()[:16]
