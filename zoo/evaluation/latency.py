"""Inference latency of a tuned model relative to its base model, measured in the same run.

Shared machines make absolute timings noisy, and their load changes from minute to minute,
so a run times the tuned model and a fresh copy of the base model on the same evaluation
batches in alternation, and records the ratio of their best passes (the least disturbed
ones). A mergeable method is also timed merged (adapter folded into the weights, against the
base again), then unmerged.
"""
from __future__ import annotations

import time

import torch

from zoo.evaluation.classification import predict
from zoo.wrapped import ZooModel, can_merge, merge, unmerge

SAMPLE_BATCHES = 2
"""Evaluation batches timed per pass."""
ROUNDS = 3
"""Alternating passes per model (and per merged model)."""


@torch.no_grad()
def _seconds(model, batches: list[dict], scorer) -> float:
    start = time.perf_counter()
    predict(model, batches, scorer)
    return time.perf_counter() - start


def _alternate(models: list, batches: list[dict], scorer, rounds: int) -> list[float]:
    """Each model's best pass over ``batches``, the models taking turns ``rounds`` times after one warm-up batch each."""
    for model in models:
        _seconds(model, batches[:1], scorer)  # first-call allocations and kernel selection
    best = [float("inf")] * len(models)
    for _ in range(rounds):
        for i, model in enumerate(models):
            best[i] = min(best[i], _seconds(model, batches, scorer))
    return best


def latency_record(model, batches: list[dict], scorer, base=None, rounds: int = ROUNDS) -> dict:
    """Seconds per batch of ``model`` and of ``base`` (the base model, untouched) on ``batches``, and their ratio.

    ``base`` None: ``model`` is the base model itself (a baseline), whose ratio is 1. Where
    ``model``'s method merges (and its base is not quantized), it is also timed merged, then unmerged again.
    """
    n = max(1, len(batches))
    if base is None:
        (seconds,) = _alternate([model], batches, scorer, rounds)
        return {"batches": len(batches), "base_seconds_per_batch": seconds / n, "seconds_per_batch": seconds / n,
                "merged_seconds_per_batch": None, "ratio": 1.0, "merged_ratio": None}
    base_seconds, tuned = _alternate([base, model], batches, scorer, rounds)
    base_merged, merged = None, None
    if isinstance(model, ZooModel) and can_merge(model):
        merge(model)
        try:
            base_merged, merged = _alternate([base, model], batches, scorer, rounds)  # each ratio against its own base passes
        finally:
            unmerge(model)
    return {
        "batches": len(batches),
        "base_seconds_per_batch": min(base_seconds, base_merged or base_seconds) / n,
        "seconds_per_batch": tuned / n,
        "merged_seconds_per_batch": merged / n if merged is not None else None,
        "ratio": tuned / base_seconds,
        "merged_ratio": merged / base_merged if merged is not None else None,
    }
