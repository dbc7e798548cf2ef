"""Telling a run that diverged from one that trained: the rule the loop applies and records.

A finished run *diverged* when either
- its loss rose far above its start: the mean loss of its last k steps is above
  :data:`LOSS_FACTOR` (3) times the mean of its first k, with k a tenth of the steps
  (at most 50), in runs of :data:`MIN_LOSS_STEPS` (10) steps or more (in fewer, one
  batch's loss against another's says more about the batches than about a trend); or
- its weights blew up: the largest |trainable weight| at the end is above
  :data:`WEIGHT_FACTOR` (1000) times the larger of 1 and the largest at the start. AdamW
  moves every weight by about the learning rate per step, so a rate far too high shows
  here even where the loss stays at chance (500 LoRA steps at ``trainer.learning_rate=1e6``
  on the tiny Llama with random weights: weights of 5e7, final loss 0.65).
Such a run still ends (the model may be usable; the record says ``diverged`` and why, and a
warning is logged). A weight that is NaN or infinite is another matter: training stops
(``zoo.training.loop.NonFiniteWeightError``), as for a non-finite loss.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import torch

LOSS_FACTOR = 3.0
MIN_LOSS_STEPS = 10
MAX_WINDOW = 50
WEIGHT_FACTOR = 1e3


def largest_weight(params: Iterable[torch.Tensor]) -> float:
    """The largest |value| over ``params``: NaN if any is NaN, inf if any is infinite (so one check covers both)."""
    peaks = [p.detach().abs().max().float().cpu() for p in params if p.numel()]
    return torch.stack(peaks).max().item() if peaks else 0.0


def divergence(losses: list[float], start_weight: float, end_weight: float) -> str | None:
    """Why a run with these step losses and largest weights at start and end diverged; None when it did not."""
    reasons = []
    if len(losses) >= MIN_LOSS_STEPS:
        k = min(MAX_WINDOW, len(losses) // 10)
        first, last = statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])
        if last > LOSS_FACTOR * first:
            reasons.append(f"mean loss of the last {k} steps {last:.4g} > {LOSS_FACTOR:g} x that of the first {k} ({first:.4g})")
    limit = WEIGHT_FACTOR * max(1.0, start_weight)
    if end_weight > limit:
        reasons.append(f"largest |weight| {end_weight:.4g} > {WEIGHT_FACTOR:g} x max(1, {start_weight:.4g}) at the start")
    return "; ".join(reasons) or None
