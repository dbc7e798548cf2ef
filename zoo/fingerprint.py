"""A cheap, stable fingerprint of a base model's weights, to refuse mismatched adapters."""
from __future__ import annotations

import hashlib

import torch
from torch import nn

_SAMPLE = 16


@torch.no_grad()
def fingerprint(model: nn.Module) -> str:
    """SHA-256 over every parameter's name, shape, first values and sum.

    Reads each tensor once (a sum) rather than hashing all bytes, so it stays fast on
    large models; values are rounded so a dtype round trip does not change it.
    """
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        flat = param.detach().reshape(-1)
        head = ",".join(f"{v:.4g}" for v in flat[:_SAMPLE].double().tolist())
        total = float(flat.double().sum())
        digest.update(f"{name}|{tuple(param.shape)}|{head}|{total:.4g};".encode())
    return digest.hexdigest()[:16]
