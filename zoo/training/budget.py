"""A training budget in optimiser steps (the default) or in seconds of training time (``trainer.budget=time``).

Methods compared at equal steps see the same examples; methods whose steps cost more then
also get more time. ``budget=time`` compares them at equal wall time instead: each trains
for ``trainer.max_seconds`` and takes as many steps as fit. The learning-rate schedule then
runs on the fraction of the time spent, not of the steps taken (warm-up over the first
``warmup_ratio`` of the seconds, then the schedule's decay to the end), since the step count
is not known in advance. Periodic evaluations and checkpoint writes do not count against the
time. Under several processes the slowest process's clock decides, so that every process
stops at the same step and sets the same rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from accelerate import Accelerator
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_scheduler

BUDGETS = ("steps", "time")


def schedule_factor(schedule: str, progress: float, warmup: float) -> float:
    """The rate's multiplier at ``progress`` in [0, 1] of the budget, warming up over its first ``warmup`` fraction."""
    if progress < warmup:
        return progress / warmup
    if schedule == "constant_with_warmup":
        return 1.0
    rest = (progress - warmup) / (1.0 - warmup) if warmup < 1 else 1.0
    if schedule == "linear":
        return max(0.0, 1.0 - rest)
    if schedule == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(rest, 1.0))))
    raise ValueError(f"schedule {schedule!r} has no time-based form; use linear, cosine or constant_with_warmup")


class Budget:
    """How long a run trains, and the learning-rate schedule that follows it."""

    clock = staticmethod(time.perf_counter)
    """Seconds, read at the start, after each step and around pauses (tests replace it)."""

    def __init__(self, budget: str, max_steps: int, max_seconds: float | None, accelerator: Accelerator):
        self.budget, self.max_steps, self.max_seconds, self.accelerator = budget, max_steps, max_seconds, accelerator
        self.spent = 0.0
        """Seconds of training so far (agreed by all processes after each step)."""
        self._paused = 0.0
        self._start = self.clock()

    def begin(self) -> None:
        """Start the clock: the first training step follows."""
        self._start, self._paused, self.spent = self.clock(), 0.0, 0.0

    def scheduler(self, optimizer, schedule: str, warmup_ratio: float):
        if self.budget == "steps":
            return get_scheduler(
                schedule, optimizer, num_warmup_steps=math.ceil(warmup_ratio * self.max_steps), num_training_steps=self.max_steps
            )
        return LambdaLR(optimizer, lambda _: schedule_factor(schedule, min(self.spent / self.max_seconds, 1.0), warmup_ratio))

    def done(self, step: int) -> bool:
        """Whether training stops after ``step``: the steps are taken, or the seconds spent."""
        if self.budget == "steps":
            return step >= self.max_steps
        elapsed = torch.tensor(self.clock() - self._start - self._paused, device=self.accelerator.device)
        self.spent = (
            self.accelerator.reduce(elapsed, reduction="max").item() if self.accelerator.num_processes > 1 else elapsed.item()
        )
        return self.spent >= self.max_seconds

    @property
    def last_step(self) -> int | None:
        """The final step when it is known in advance (a step budget); None under a time budget."""
        return self.max_steps if self.budget == "steps" else None

    @contextmanager
    def paused(self):
        """Time that does not count as training (an evaluation, a checkpoint write)."""
        start = self.clock()
        try:
            yield
        finally:
            self._paused += self.clock() - start


class Seen:
    """What training read: examples and input tokens (padding not counted) of the global batches, over all processes."""

    def __init__(self) -> None:
        self.examples = 0
        self.tokens = 0

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        ids = batch["input_ids"]
        self.examples += ids.shape[0]
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else ids.numel()

    def counting(self, batches: Iterator[dict]) -> Iterator[dict]:
        """``batches``, each counted as it is taken."""
        for batch in batches:
            self.add(batch)
            yield batch
