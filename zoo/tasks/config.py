"""Task configuration and the table of built-in tasks."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from zoo.tasks.data import ClassificationData
from zoo.tasks.synthetic import synthetic_sentiment


@dataclass
class TaskConfig:
    name: str = "synthetic_sentiment"
    """A built-in task: one of zoo.tasks.config.TASKS."""
    template: str = "review : {text} . it was {answer}"
    """Prompt with {text} and {answer}; a causal LM predicts the answer as the next token."""
    label_words: list[str] = field(default_factory=lambda: ["bad", "good"])
    """One single-token word per class, in class order."""
    n_train: int = 512
    n_eval: int = 256
    max_length: int = 128
    """Longest templated input in tokens; longer texts are cut, never the template."""
    seed: int = 0
    """Seed of the data itself (split and sampling), separate from the run's seed."""


TASKS: dict[str, Callable[[TaskConfig], ClassificationData]] = {
    "synthetic_sentiment": lambda cfg: synthetic_sentiment(cfg.n_train, cfg.n_eval, cfg.seed),
}


def build_task(cfg: TaskConfig) -> ClassificationData:
    if cfg.name not in TASKS:
        raise ValueError(f"unknown task {cfg.name!r}; built-in tasks: {sorted(TASKS)}")
    data = TASKS[cfg.name](cfg)
    if len(cfg.label_words) != len(data.label_names):
        raise ValueError(f"task {cfg.name!r} has {len(data.label_names)} classes {data.label_names} but {len(cfg.label_words)} label words {cfg.label_words}")
    return data
