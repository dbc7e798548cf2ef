"""Shared fixtures: tiny random models of three architectures and their tokenizer."""
from __future__ import annotations

import pytest
import torch

from zoo.models.tiny import TINY_KINDS, tiny_model
from zoo.models.tokenizer import word_tokenizer

WORDS = [f"w{i}" for i in range(60)] + ["good", "bad", "it", "was", "."]

# a module mark: transformers >= 5.24 warns when a cache is passed under its old name (zoo/models/cache_kwarg.py)
NO_PAST_KEY_VALUES = pytest.mark.filterwarnings("error:.*past_key_values:FutureWarning")


@pytest.fixture(scope="session")
def tokenizer():
    return word_tokenizer(WORDS)


@pytest.fixture(params=TINY_KINDS)
def kind(request) -> str:
    return request.param


def make_model(kind: str, seed: int = 0):
    return tiny_model(kind, vocab_size=len(WORDS) + 4, seed=seed)


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, len(WORDS) + 4, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[0, :2] = 0  # left padding on the first row
    mask[0, :2] = 0
    return {"input_ids": ids, "attention_mask": mask}
