"""Seeded, stratified splitting and sampling of examples.

Every function draws from its own ``random.Random`` stream named by purpose and seed, so
changing how many examples one step takes never changes what another step draws.
"""

from __future__ import annotations

import random
from typing import TypeVar

from zoo.tasks.data import Example

T = TypeVar("T")

SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
SPLIT_SEED = 0
"""Seed of every train/validation/test split zoo makes: fixed, so that all runs see the same split."""


def _by_class(examples: list[Example]) -> dict[int, list[Example]]:
    groups: dict[int, list[Example]] = {}
    for e in examples:
        groups.setdefault(e.label, []).append(e)
    return dict(sorted(groups.items()))


def split_examples(
    examples: list[Example], seed: int = SPLIT_SEED, fractions: dict[str, float] = SPLIT_FRACTIONS
) -> dict[str, list[Example]]:
    """Stratified split: each class is shuffled and cut by ``fractions``, so every split keeps the class proportions."""
    return _split_groups(list(_by_class(examples).values()), seed, fractions)


def split_unlabelled(items: list[T], seed: int = SPLIT_SEED, fractions: dict[str, float] = SPLIT_FRACTIONS) -> dict[str, list[T]]:
    """The split of :func:`split_examples` for items without classes (a generation task's pairs): shuffled and cut once."""
    return _split_groups([items], seed, fractions)


def _split_groups(groups: list[list[T]], seed: int, fractions: dict[str, float]) -> dict[str, list[T]]:
    """Each group shuffled and cut by ``fractions``, the pieces of each split joined and shuffled."""
    rng = random.Random(f"split:{seed}")
    out: dict[str, list[T]] = {name: [] for name in fractions}
    for group in groups:
        group = group[:]
        rng.shuffle(group)
        start = 0
        for i, (name, fraction) in enumerate(fractions.items()):
            end = len(group) if i == len(fractions) - 1 else start + round(fraction * len(group))
            out[name] += group[start:end]
            start = end
    for name in out:
        rng.shuffle(out[name])
    return out


def shots_per_class(examples: list[Example], k: int | None, seed: int) -> list[Example]:
    """``k`` examples of every class drawn with ``seed`` (all of a class that has fewer); None: all."""
    if k is None:
        return examples
    rng = random.Random(f"shots:{seed}")
    chosen = [e for group in _by_class(examples).values() for e in rng.sample(group, min(k, len(group)))]
    rng.shuffle(chosen)
    return chosen


def stratified_sample(examples: list[Example], n: int | None, seed: int) -> list[Example]:
    """``n`` examples with the class proportions of ``examples`` (largest remainders), drawn with ``seed``; None: all."""
    if n is None or n >= len(examples):
        return examples
    rng = random.Random(f"eval:{seed}")
    groups = _by_class(examples)
    exact = {c: n * len(g) / len(examples) for c, g in groups.items()}
    counts = {c: int(x) for c, x in exact.items()}
    for c in sorted(exact, key=lambda c: counts[c] - exact[c])[: n - sum(counts.values())]:
        counts[c] += 1
    chosen = [e for c, g in groups.items() for e in rng.sample(g, counts[c])]
    rng.shuffle(chosen)
    return chosen


def demonstrations(train: list[Example], per_class: int, seed: int) -> list[Example]:
    """``per_class`` training examples of each class for the context, in a seeded random order.

    A random order, not class by class: the label of the last demonstration would otherwise
    always be the same, and small LMs tend to repeat the most recent answer.
    """
    rng = random.Random(f"demonstrations:{seed}")
    chosen = [e for group in _by_class(train).values() for e in rng.sample(group, min(per_class, len(group)))]
    rng.shuffle(chosen)
    return chosen
