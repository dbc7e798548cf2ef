"""An attention function that records what a transformers model's own attention computed.

Registered as attention implementation ``zoo_capture``: each call stores ``(query, key, value,
scaling)`` of the calling attention module (queries and keys after the model's norms and
rotary embedding, keys/values before any repeat for grouped-query attention) and returns a
dummy output of the right shape, so outputs of a capturing model mean nothing.
"""
from __future__ import annotations

from transformers import AttentionInterface

CAPTURED: dict = {}
"""Attention module -> (query (B, H, T, hd), key (B, Hkv, T, hd), value, scaling), in call order."""


def _capture(module, query, key, value, attention_mask, scaling=None, **kwargs):
    CAPTURED[module] = (query, key, value, scaling)
    return query.transpose(1, 2), None  # (B, T, H, hd), the shape attention functions return


AttentionInterface.register("zoo_capture", _capture)


def capturing(model):
    """``model`` with its attention recorded into :data:`CAPTURED` (emptied)."""
    model.set_attn_implementation("zoo_capture")
    CAPTURED.clear()
    return model
