"""The built-in default task: synthetic movie-review sentiment, generated in-process.

Each review is a few neutral words with one or three sentiment words mixed in, any of
which may be negated by a preceding "not"; the label is the majority of the (negation-
adjusted) polarities. Word identity alone does not decide it: a method has to learn to
count and to read "not" in context. The default tiny model (briefly pretrained on this
language, see ``zoo.models.pretrain``) learns it in seconds to a minute on two CPU cores, so
``zoo`` with no arguments needs no download and prints a real result.
"""
from __future__ import annotations

import random

from zoo.tasks.data import ClassificationData, Example

POSITIVE = ["great", "fun", "superb", "lovely", "charming", "brilliant", "warm", "witty", "moving", "fresh"]
NEGATIVE = ["dull", "awful", "boring", "bland", "messy", "tedious", "weak", "clumsy", "stale", "flat"]
NEUTRAL = [
    "the", "film", "plot", "actor", "story", "scene", "music", "ending", "script", "cast", "movie", "director",
    "is", "and", "a", "very", "quite", "really", "with", "its", "this", "felt", "looks", "seems", "of", "in",
]
NEGATION = ["not"]
TEMPLATE_WORDS = [
    "it", "was", ".", "good", "bad", "review", ":", "answer", "?", "positive", "negative", "yes", "no", "overall", "verdict", "liked",
]
VOCABULARY = list(dict.fromkeys(NEUTRAL + NEGATION + POSITIVE + NEGATIVE + TEMPLATE_WORDS))


def review(rng: random.Random, positive: bool) -> str:
    """One review whose majority polarity (after negations) is ``positive``."""
    n = rng.choice([1, 3])
    majority = n // 2 + 1
    polarities = [positive] * rng.randint(majority, n) + [not positive] * n
    polarities = polarities[:n]
    rng.shuffle(polarities)
    words = [rng.choice(NEUTRAL) for _ in range(rng.randint(4, 9))]
    for polar in polarities:
        negated = rng.random() < 0.3
        word = rng.choice(POSITIVE if polar != negated else NEGATIVE)
        words.insert(rng.randrange(len(words) + 1), f"not {word}" if negated else word)
    return " ".join(words)


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
