"""Inference latency of a tuned model relative to its base model, measured in the same run.

Shared machines make absolute timings noisy, and their load changes from second to second,
so a run times the two models batch by batch in turn (base, tuned, base, tuned, ...) on the
same evaluation batches: a burst of load falls on both. Each first scores :data:`WARMUP`
batches that are not counted (first-call allocations and kernel selection), then ``batches``
timed ones (the run config's ``latency_batches``, :data:`BATCHES` by default), cycling
through the evaluation batches where there are fewer. The ratio is the median of the tuned
model's seconds per batch over the median of the base model's: a median ignores the few
batches a burst slowed. A mergeable method is also timed merged (adapter folded into the
weights), against the base again, then unmerged.

A merged model is the base model's own modules again, the update in their weights
(:mod:`zoo.models.layout`): it computes what the base computes, as the base does. A merged ratio
outside 1 ± :data:`MERGED_BAND` is therefore timing noise the medians did not remove, or a
module of the method that its merge left in the forward pass: the record says so in its
``flag`` and zoo-report marks the row.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from zoo.evaluation.classification import predict
from zoo.wrapped import ZooModel, can_merge, merge, unmerge

BATCHES = 20
"""Timed batches per model (and per merged model) unless the run config's ``latency_batches`` says otherwise."""
WARMUP = 2
"""Batches each model scores before the timed ones, not counted."""
MERGED_BAND = 0.05
"""How far from 1 a merged ratio may be before the record flags it as noise."""


@dataclass(frozen=True)
class Timed:
    """A model and what it is timed on: its formulation's evaluation batches and scorer (``Formulation.timing``)."""

    model: nn.Module
    batches: list[dict]
    scorer: object


@torch.no_grad()
def _seconds(timed: Timed, i: int) -> float:
    """Seconds ``timed.model`` takes to score its ``i``-th batch, counting round its batches."""
    batch = timed.batches[i % len(timed.batches)]
    start = time.perf_counter()
    predict(timed.model, [batch], timed.scorer)
    return time.perf_counter() - start


def interleave(base: Timed, other: Timed, batches: int, warmup: int = WARMUP) -> tuple[list[float], list[float]]:
    """The seconds ``base`` and ``other`` take per batch, scoring each batch in turn, ``base`` first; the first ``warmup`` turns
    are not counted."""
    base_seconds, other_seconds = [], []
    for i in range(warmup + batches):
        pair = _seconds(base, i), _seconds(other, i)
        if i >= warmup:
            base_seconds.append(pair[0])
            other_seconds.append(pair[1])
    return base_seconds, other_seconds


def merged_flag(merged_ratio: float | None) -> str | None:
    """Why a merged ratio is not credible (outside 1 ± :data:`MERGED_BAND` at the two decimals reports show), or None."""
    if merged_ratio is None or round(abs(merged_ratio - 1), 2) <= MERGED_BAND:
        return None
    if merged_ratio < 1:
        return (
            f"merged {merged_ratio:.2f}x the base, faster than the base model whose own modules it runs: no cost of the "
            "method, but timing noise or a difference outside its modules"
        )
    return (
        f"merged {merged_ratio:.2f}x the base, where a merged model runs the base model's own modules: timing noise, "
        "or a module of the method that its merge left in the forward pass"
    )


def latency_record(model: Timed, base: Timed, batches: int = BATCHES) -> dict:
    """Median seconds per batch of ``model`` and of ``base`` (the base model, untouched), and their ratio.

    Where ``model``'s method merges (and its base is not quantized), it is also timed merged, then unmerged again.
    """
    base_seconds, seconds = map(statistics.median, interleave(base, model, batches))
    merged_ratio, merged = None, None
    if isinstance(model.model, ZooModel) and can_merge(model.model):
        merge(model.model)
        try:
            base_merged, merged = map(statistics.median, interleave(base, model, batches))  # against its own base batches
        finally:
            unmerge(model.model)
        merged_ratio = merged / base_merged
    return {
        "batches": batches,
        "distinct_batches": min(batches, len(model.batches)),
        "base_seconds_per_batch": base_seconds,
        "seconds_per_batch": seconds,
        "merged_seconds_per_batch": merged,
        "ratio": seconds / base_seconds,
        "merged_ratio": merged_ratio,
        "flag": merged_flag(merged_ratio),
    }
