"""``synthetic_generation``: the built-in generation task, generated in-process (no download).

The prompt is a synthetic review (zoo.models.language) in the template
``review : {text} . answer : {answer}``; the response is the review's verdict written as two
words and a stop: ``positive yes`` or ``negative no`` (the majority polarity after negations,
as the sentiment task's label). The default tiny model was pretrained on these reviews followed
by ``verdict : positive`` or ``liked ? yes`` (zoo.models.pretrain), never by both words, never
after ``answer :`` and never by the end-of-sequence token: zero-shot it writes on (``positive .
verdict : ...``) and matches no response, while a method has a short sequence to learn, its
words' polarity to read, and where to stop. LoRA learns it with the default trainer (docs/tasks.md).

A harder response, the review's sentiment words copied in order (``not dull witty``), was
tried first: in 500 steps LoRA reached an exact match of 0.01-0.03 and full fine-tuning 0.16 on
tiny-llama, which learns to write polar words of the right polarity but not to copy them.
"""

from __future__ import annotations

import random

from zoo.models.language import review
from zoo.tasks.pairs import Pair

RESPONSES = ("negative no", "positive yes")
"""The response of a negative and of a positive review."""


def synthetic_generation(n_train: int = 512, n_eval: int = 256, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Train and evaluation pairs (review, its verdict), balanced between polarities; the same seed gives the same pairs."""
    rng = random.Random(f"synthetic_generation:{seed}")

    def split(n: int) -> list[Pair]:
        labels = [i % 2 for i in range(n)]
        rng.shuffle(labels)
        return [Pair(review(rng, label == 1), RESPONSES[label]) for label in labels]

    return split(n_train), split(n_eval)


def synthetic_generation_validation(n: int = 256, seed: int = 0) -> list[Pair]:
    """``n`` validation pairs (to tune on) from a stream of their own: train and test stay what they were without them."""
    return synthetic_generation(0, n, f"validation:{seed}")[1]
