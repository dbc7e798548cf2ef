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
    # no scaling given (GPT-2's attention in transformers 5.3): the attention function's own default, 1/sqrt(head_dim)
    CAPTURED[module] = (query, key, value, scaling if scaling is not None else query.shape[-1] ** -0.5)
    return query.transpose(1, 2), None  # (B, T, H, hd), the shape attention functions return


AttentionInterface.register("zoo_capture", _capture)


def capturing(model):
    """``model`` with its attention recorded into :data:`CAPTURED` (emptied)."""
    model.set_attn_implementation("zoo_capture")
    CAPTURED.clear()
    return model


def captured_first(kind: str):
    """The first attention call :data:`CAPTURED` holds; a skip naming the transformers release where ``kind``'s
    attention does not go through AttentionInterface (so nothing can be observed): ModernBERT's in transformers 5.3."""
    import pytest
    import transformers

    if not CAPTURED:
        pytest.skip(
            f"{kind}'s attention does not call the attention interface in transformers {transformers.__version__}: "
            "its computation cannot be observed there"
        )
    return next(iter(CAPTURED.values()))
