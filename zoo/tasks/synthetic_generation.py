"""``synthetic_generation``: the built-in generation task, generated in-process (no download).

The prompt is a synthetic review (zoo.tasks.synthetic) in the template
``review : {text} . answer : {answer}``; the response is the review's sentiment words in
the order they occur, each with its negation: ``the plot is not dull and its music witty``
-> ``not dull witty``. It is a copy-and-select task over the default tiny model's own
vocabulary: the model knows these words and their polarity (zoo.models.pretrain) but was
never asked to write them out, so zero-shot it writes something else and a method has a
sequence to learn, with its end (the end-of-sequence token) after one to three words.
"""
from __future__ import annotations

import random

from zoo.tasks.pairs import Pair
from zoo.tasks.synthetic import NEGATION, NEGATIVE, POSITIVE, review

POLAR = set(POSITIVE) | set(NEGATIVE)


def sentiment_words(text: str) -> str:
    """The polar words of ``text`` in order, each after its ``not`` where it has one."""
    words = text.split()
    kept = [(f"{words[i - 1]} {w}" if i and words[i - 1] in NEGATION else w) for i, w in enumerate(words) if w in POLAR]
    return " ".join(kept)


def synthetic_generation(n_train: int = 512, n_eval: int = 256, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Train and evaluation pairs (review, its sentiment words), balanced between polarities; the same seed gives the same pairs."""
    rng = random.Random(f"synthetic_generation:{seed}")

    def split(n: int) -> list[Pair]:
        texts = [review(rng, i % 2 == 1) for i in range(n)]
        rng.shuffle(texts)
        return [Pair(t, sentiment_words(t)) for t in texts]

    return split(n_train), split(n_eval)
