"""The contract helpers, under the name zoo's tests import them by; they live in zoo.testing (shipped for plugins)."""

from zoo.testing.helpers import generates, output, perturb, refused, wrap_for_test

__all__ = ["generates", "output", "perturb", "refused", "wrap_for_test"]
