"""The tiny models and the batch every contract check runs on, built without a download.

Each family of :data:`zoo.models.tiny.TINY_FAMILIES` is built once per process and handed out as a
deep copy, since checks change models in place (wrapping, merging, optimiser steps).
"""
from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from zoo.models.tiny import tiny_model

WORDS = [f"w{i}" for i in range(60)] + ["good", "bad", "it", "was", "."]
"""The word tokenizer's vocabulary (:func:`zoo.models.tokenizer.word_tokenizer`); four special ids come first."""
VOCAB_SIZE = len(WORDS) + 4


@functools.cache
def built(kind: str, seed: int = 0) -> nn.Module:
    """The tiny model ``kind``, seeded, shared: read it, never change it (:func:`make_model` gives a copy to change)."""
    return tiny_model(kind, vocab_size=VOCAB_SIZE, seed=seed)


def make_model(kind: str, seed: int = 0) -> nn.Module:
    """A fresh tiny model ``kind`` (one of ``TINY_FAMILIES``), the same for the same ``seed``."""
    return copy.deepcopy(built(kind, seed))


def tiny_batch() -> dict[str, torch.Tensor]:
    """Three rows of seven random token ids, the first left-padded by two."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB_SIZE, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[0, :2] = 0
    mask[0, :2] = 0
    return {"input_ids": ids, "attention_mask": mask}


def labelled(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` with class labels, for a gradient-free method's ``fit``."""
    return {**batch, "labels": torch.tensor([0, 1, 0])}
