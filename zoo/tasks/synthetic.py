"""The built-in default task: synthetic movie-review sentiment, generated in-process.

Each review is a few neutral words with one or three sentiment words mixed in, any of
which may be negated by a preceding "not"; the label is the majority of the (negation-
adjusted) polarities. Word identity alone does not decide it: a method has to learn to
count and to read "not" in context (the words and the review: ``zoo.models.language``). The default tiny model (briefly pretrained on this
language, see ``zoo.models.pretrain``) learns it in seconds to a minute on two CPU cores, so
``zoo`` with no arguments needs no download and prints a real result.
"""

from __future__ import annotations

import random

from zoo.models.language import review
from zoo.tasks.data import ClassificationData, Example


def _reviews(rng: random.Random, n: int) -> list[Example]:
    """``n`` balanced examples in a shuffled order, drawn from ``rng``."""
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [Example(review(rng, label == 1), label) for label in labels]


def synthetic_sentiment(n_train: int = 512, n_eval: int = 256, seed: int = 0) -> ClassificationData:
    """Balanced binary sentiment data (train, then the test examples, from one stream); the same seed gives the same examples."""
    rng = random.Random(seed)
    train = _reviews(rng, n_train)
    return ClassificationData(train=train, eval=_reviews(rng, n_eval), label_names=["negative", "positive"])


def synthetic_validation(n: int = 256, seed: int = 0) -> list[Example]:
    """``n`` validation examples (to tune on) from a stream of their own, so train and test are what they were without them."""
    return _reviews(random.Random(f"validation:{seed}"), n)
