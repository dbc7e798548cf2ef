"""Shared fixtures: tiny random models of many architecture families (zoo.testing.models) and their tokenizer."""
from __future__ import annotations

import pytest
import torch

from zoo.models.tiny import TINY_KINDS
from zoo.models.tokenizer import word_tokenizer
from zoo.testing.contract import NO_PAST_KEY_VALUES
from zoo.testing.models import WORDS, make_model, tiny_batch

__all__ = ["NO_PAST_KEY_VALUES", "WORDS", "make_model"]  # the tests import these from here

# Tiny models gain nothing from intra-op threads; on busy shared cores the threads' spin-waiting made one
# tiny forward pass 25x slower (0.35 s against 0.013 s with one thread, measured here).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    return word_tokenizer(WORDS)


@pytest.fixture(params=TINY_KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return tiny_batch()
