"""zoo's method contract, shipped for plugin repositories: tiny models, helpers and the contract checks.

``pytest --zoo-contract=<method>`` (the pytest plugin :mod:`pytest_zoo`, installed with zoo) runs
:mod:`zoo.testing.contract` for a registered method on every tiny architecture family. A plugin's
own tests build on the same pieces: :func:`make_model` (a fresh tiny model of a family of
``zoo.models.tiny.TINY_FAMILIES``), :func:`tiny_batch`, :func:`wrap_for_test`, :func:`output`,
:func:`perturb`. :mod:`zoo.testing.cells` and :mod:`zoo.testing.contract` need pytest
(``pip install zoo-peft[test]``); this module and the two it re-exports from do not.
"""

from zoo.testing.helpers import LABEL_TOKEN_IDS, generates, output, perturb, refused, wrap_for_test
from zoo.testing.models import VOCAB_SIZE, WORDS, built, labelled, make_model, tiny_batch

__all__ = [
    "LABEL_TOKEN_IDS",
    "VOCAB_SIZE",
    "WORDS",
    "built",
    "generates",
    "labelled",
    "make_model",
    "output",
    "perturb",
    "refused",
    "tiny_batch",
    "wrap_for_test",
]
