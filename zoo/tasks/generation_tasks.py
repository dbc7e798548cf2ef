"""The built-in generation tasks (``task.kind: generation``, zoo.task_kinds.generation) and the pairs a run of one trains and evaluates on.

Sampling follows the classification tasks' (zoo.tasks.config), without classes: ``shots_per_class``
training pairs drawn with the sample seed (``task.sample_seed``, else the data seed) and ``n_eval``
evaluation pairs of ``eval_split`` drawn with the data seed; the data records which splits it read.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from zoo.tasks.bbc_news import BBC_HEADLINES
from zoo.tasks.data import Splits
from zoo.tasks.pairs import GenerationData, Pair
from zoo.tasks.prepared import load_prepared_pairs
from zoo.tasks.synthetic_generation import synthetic_generation, synthetic_generation_validation

if TYPE_CHECKING:
    from zoo.tasks.config import TaskConfig


def _synthetic(cfg: TaskConfig) -> Splits:
    """Training pairs of the sample seed's data; validation and evaluation pairs of the data seed's."""
    n_eval = cfg.n_eval or 256
    train, evaluation = synthetic_generation(cfg.n_train, n_eval, cfg.seed)
    if cfg.training_seed != cfg.seed:
        train = synthetic_generation(cfg.n_train, n_eval, cfg.training_seed)[0]
    return Splits(
        {"train": train, "validation": synthetic_generation_validation(n_eval, cfg.seed), "test": evaluation},
        "synthetic_generation",
    )


GENERATION_TASKS: dict[str, Callable[[TaskConfig], Splits]] = {
    "synthetic_generation": _synthetic,
    "bbc_headlines": lambda cfg: load_prepared_pairs(BBC_HEADLINES, cfg.cache_dir),
}


def sample(pairs: list[Pair], n: int | None, purpose: str, seed: int) -> list[Pair]:
    """``n`` of ``pairs`` drawn with ``seed`` from the stream named ``purpose`` (zoo.tasks.splits' convention); None: all."""
    if n is None or n >= len(pairs):
        return pairs
    return random.Random(f"{purpose}:{seed}").sample(pairs, n)


def build_generation_task(cfg: TaskConfig) -> GenerationData:
    """The training and evaluation pairs of a run of a generation task.

    Raises:
        ValueError: a task that is not a built-in generation task, or a missing split.
    """
    if cfg.name not in GENERATION_TASKS:
        raise ValueError(f"task {cfg.name!r} is not one of the generation tasks {sorted(GENERATION_TASKS)}")
    splits = GENERATION_TASKS[cfg.name](cfg)
    train = sample(splits.split("train"), cfg.shots_per_class, "shots", cfg.training_seed)
    evaluation = sample(splits.split(cfg.eval_split), cfg.n_eval, "eval", cfg.seed)
    return GenerationData(train, evaluation, tuple(dict.fromkeys(splits.read)))
