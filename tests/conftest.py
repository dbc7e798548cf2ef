"""Shared fixtures: tiny random models of many architecture families (zoo.testing.models) and their tokenizer.

Also the two tiers (tests/tiers.py): tests marked ``full`` run only with ``--full``.
"""

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="also run the tests marked full: every method on every tiny family, every bridged peft tuner "
        "(with -n 2 on two cores)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--full"):
        full = [item for item in items if item.get_closest_marker("full")]
        if full:
            config.hook.pytest_deselected(items=full)
            items[:] = [item for item in items if not item.get_closest_marker("full")]
    # the modules marked launches first: with -n 2 --dist loadscope a worker takes a module at a time in this order, so the
    # long ones start at once and the short ones fill in beside them, instead of one long module running alone at the end
    launching = {item.path for item in items if item.get_closest_marker("launches")}
    items.sort(key=lambda item: item.path not in launching)


@pytest.fixture(scope="session")
def tokenizer():
    return word_tokenizer(WORDS)


@pytest.fixture(params=TINY_KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return tiny_batch()
