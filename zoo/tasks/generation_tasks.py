"""The built-in generation tasks (``task.kind: generation``) and the pairs a run of one trains and evaluates on.

Sampling follows the classification tasks' (zoo.tasks.config), without classes: ``shots_per_class``
training pairs and ``n_eval`` evaluation pairs of ``eval_split``, each drawn with the data seed.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from zoo.tasks.bbc_news import BBC_HEADLINES
from zoo.tasks.pairs import GenerationData, Pair, PairedSplits
from zoo.tasks.prepared import load_prepared_pairs
from zoo.tasks.synthetic_generation import synthetic_generation

if TYPE_CHECKING:
    from zoo.tasks.config import TaskConfig


def _synthetic(cfg: TaskConfig) -> PairedSplits:
    train, evaluation = synthetic_generation(cfg.n_train, cfg.n_eval or 256, cfg.seed)
    return PairedSplits({"train": train, "test": evaluation}, "synthetic_generation")


GENERATION_TASKS: dict[str, Callable[[TaskConfig], PairedSplits]] = {
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
    if cfg.kind != "generation" or cfg.name not in GENERATION_TASKS:
        raise ValueError(f"task {cfg.name!r} (kind {cfg.kind}) is not one of the generation tasks {sorted(GENERATION_TASKS)}")
    splits = GENERATION_TASKS[cfg.name](cfg)
    return GenerationData(sample(splits.split("train"), cfg.shots_per_class, "shots", cfg.seed),
                          sample(splits.split(cfg.eval_split), cfg.n_eval, "eval", cfg.seed))
