"""The tiny models' language: the words of synthetic movie reviews, and a review drawn from them.

The default tiny model is pretrained on this language (zoo.models.pretrain) and its tokenizer is its
vocabulary (zoo.models.load); the built-in synthetic tasks (zoo.tasks.synthetic) and the general text
that forgetting is measured on (zoo.evaluation.forgetting) are written in it.
"""

from __future__ import annotations

import random

POSITIVE = ["great", "fun", "superb", "lovely", "charming", "brilliant", "warm", "witty", "moving", "fresh"]
NEGATIVE = ["dull", "awful", "boring", "bland", "messy", "tedious", "weak", "clumsy", "stale", "flat"]
NEUTRAL = [
    "the",
    "film",
    "plot",
    "actor",
    "story",
    "scene",
    "music",
    "ending",
    "script",
    "cast",
    "movie",
    "director",
    "is",
    "and",
    "a",
    "very",
    "quite",
    "really",
    "with",
    "its",
    "this",
    "felt",
    "looks",
    "seems",
    "of",
    "in",
]
NEGATION = ["not"]
TEMPLATE_WORDS = [
    "it",
    "was",
    ".",
    "good",
    "bad",
    "review",
    ":",
    "answer",
    "?",
    "positive",
    "negative",
    "yes",
    "no",
    "overall",
    "verdict",
    "liked",
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
