"""Shared fixtures: tiny random models of many architecture families and their tokenizer."""
from __future__ import annotations

import copy
import functools

import pytest
import torch

from zoo.models.tiny import TINY_KINDS, tiny_model
from zoo.models.tokenizer import word_tokenizer

WORDS = [f"w{i}" for i in range(60)] + ["good", "bad", "it", "was", "."]

# a module mark: transformers >= 5.24 warns when a cache is passed under its old name (zoo/models/cache_kwarg.py)
NO_PAST_KEY_VALUES = pytest.mark.filterwarnings("error:.*past_key_values:FutureWarning")

# Tiny models gain nothing from intra-op threads; on busy shared cores the threads' spin-waiting made one
# tiny forward pass 25x slower (0.35 s against 0.013 s with one thread, measured here).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    return word_tokenizer(WORDS)


@pytest.fixture(params=TINY_KINDS)
def kind(request) -> str:
    return request.param


@functools.cache
def _built(kind: str, seed: int):
    return tiny_model(kind, vocab_size=len(WORDS) + 4, seed=seed)


def make_model(kind: str, seed: int = 0):
    """A fresh tiny model ``kind``: built once per session, handed out as a deep copy (tests change models in place)."""
    return copy.deepcopy(_built(kind, seed))


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, len(WORDS) + 4, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[0, :2] = 0  # left padding on the first row
    mask[0, :2] = 0
    return {"input_ids": ids, "attention_mask": mask}
