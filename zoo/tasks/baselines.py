"""Baselines: the rows of every comparison that no method produces.

- ``zero_shot``: the base model scoring the label words after the template, untrained.
  Every run on a causal LM records it (``zero_shot`` in metrics.json).
- ``in_context``: the same with ``task.demonstrations`` examples per class in the context
  (LM-BFF's demonstrations), untrained. Runs with demonstrations record it (``in_context``).
- ``linear_probe``: the head formulation with the base model frozen: only the head trains.

``zoo baseline=<name>`` runs one of them on its own (the method group is then ignored);
``zoo-report`` also derives zero-shot and in-context rows from every run's metrics. Full
fine-tuning, the upper baseline, is a method (``method=full_finetune``), so it trains and is
saved like any other.
"""
from __future__ import annotations

from zoo.tasks.config import TaskConfig

BASELINES = ("zero_shot", "in_context", "linear_probe")
UNTRAINED = ("zero_shot", "in_context")


def check_baseline(baseline: str | None, task: TaskConfig) -> None:
    if baseline is None:
        return
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r} is not one of {BASELINES} (or null: run the method)")
    if baseline == "in_context" and task.demonstrations < 1:
        raise ValueError("baseline=in_context needs demonstrations in the context: set task.demonstrations=1 (examples per class)")


def formulation(baseline: str | None, task: TaskConfig) -> str:
    """The formulation a run uses: the baseline's own (prompt for the untrained ones, head for the probe), else the task's."""
    if baseline in UNTRAINED:
        return "prompt"
    if baseline == "linear_probe":
        return "head"
    return task.formulation
