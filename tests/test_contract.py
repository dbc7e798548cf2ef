"""The method contract, checked for every registered method on every tiny architecture family.

The checks are zoo.testing.contract's (what ``pytest --zoo-contract=<method>`` runs in a plugin's
repository), parametrised here by ``zoo.list_methods()`` × ``TINY_FAMILIES`` (16 families,
decoders and encoders) whatever options pytest is given: a new method or family is tested with
no edit. A pair the method's capability flags exclude (model kind, positional scheme) is not
skipped: it is checked to be refused. By default only the pairs of the default tier run (tests/tiers.py:
the built-in methods and a sample of the bridged tuners on four families); ``--full`` runs them all.
"""

from __future__ import annotations

import pytest
from tiers import contract_marks

import zoo
from zoo.models.tiny import TINY_FAMILIES
from zoo.testing.cells import parametrise
from zoo.testing.contract import (
    batch,
    pytestmark,
    test_decoding_leaves_the_new_tokens_untouched,
    test_exactly_the_method_parameters_require_grad,
    test_generate_keeps_the_base_contract,
    test_identity_at_init,
    test_load_refuses_another_base_model,
    test_merge_equals_unmerged,
    test_merged_model_has_exactly_the_base_tensors,
    test_one_step_changes_only_the_method_parameters,
    test_save_load_round_trip,
    test_the_declared_optimizer_steps_exactly_the_method_parameters,
    test_unsupported_kind_is_refused,
)

METHODS = zoo.list_methods()
__all__ = [  # collected here
    "batch",
    "pytestmark",
    "test_decoding_leaves_the_new_tokens_untouched",
    "test_exactly_the_method_parameters_require_grad",
    "test_generate_keeps_the_base_contract",
    "test_identity_at_init",
    "test_load_refuses_another_base_model",
    "test_merge_equals_unmerged",
    "test_merged_model_has_exactly_the_base_tensors",
    "test_one_step_changes_only_the_method_parameters",
    "test_save_load_round_trip",
    "test_the_declared_optimizer_steps_exactly_the_method_parameters",
    "test_unsupported_kind_is_refused",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrise(metafunc, METHODS, TINY_FAMILIES, contract_marks)
