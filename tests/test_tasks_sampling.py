"""Seeded splits and samples: few-shot training sets, stratified evaluation sets, demonstrations."""

from __future__ import annotations

from collections import Counter

from zoo.tasks.data import Example
from zoo.tasks.splits import demonstrations, shots_per_class, split_examples, stratified_sample

POOL = [Example(f"text {i}", 0 if i % 10 < 7 else (1 if i % 10 < 9 else 2)) for i in range(1000)]  # 70/20/10 %


def _counts(examples):
    return [Counter(e.label for e in examples)[c] for c in range(3)]


def test_split_is_stratified_disjoint_and_complete():
    splits = split_examples(POOL, seed=0)
    assert {k: _counts(v) for k, v in splits.items()} == {
        "train": [560, 160, 80],
        "validation": [70, 20, 10],
        "test": [70, 20, 10],
    }
    texts = [e.text for v in splits.values() for e in v]
    assert sorted(texts) == sorted(e.text for e in POOL)


def test_shots_per_class_draw_k_of_each_class_with_the_seed():
    a, b, c = shots_per_class(POOL, 16, seed=1), shots_per_class(POOL, 16, seed=1), shots_per_class(POOL, 16, seed=2)
    assert _counts(a) == [16, 16, 16] and a == b and a != c
    assert shots_per_class(POOL, 200, seed=1) != POOL and _counts(shots_per_class(POOL, 200, seed=1)) == [200, 200, 100]
    assert shots_per_class(POOL, None, seed=1) is POOL  # full-data training


def test_stratified_sample_keeps_proportions():
    sample = stratified_sample(POOL, 50, seed=0)
    assert _counts(sample) == [35, 10, 5] and sample == stratified_sample(POOL, 50, seed=0) != stratified_sample(POOL, 50, seed=1)
    assert _counts(stratified_sample(POOL, 7, seed=0)) == [5, 1, 1]  # largest remainders: 4.9, 1.4, 0.7
    assert stratified_sample(POOL, None, seed=0) is POOL


def test_demonstrations_one_per_class_in_a_seeded_order():
    demos = demonstrations(POOL, 1, seed=0)
    assert sorted(e.label for e in demos) == [0, 1, 2]
    orders = {tuple(e.label for e in demonstrations(POOL, 1, seed=s)) for s in range(12)}
    assert len(orders) > 1  # not always class order
