"""Step 8: the run's :class:`~zoo.io.records.RunRecord`, from what the steps before returned."""

from __future__ import annotations

import dataclasses

import torch

import zoo
from zoo.io.records import RunRecord
from zoo.runner.pipeline.base import Base, Score
from zoo.runner.pipeline.learner import Learner
from zoo.runner.pipeline.steps import Saved
from zoo.runner.plan import Plan
from zoo.task_kinds import TaskData
from zoo.tasks.data import examples_fingerprint
from zoo.training.loop import TrainResult


def make_record(
    plan: Plan,
    data: TaskData,
    base: Base,
    scores: dict[str, Score],
    learner: Learner,
    result: TrainResult | None,
    after: Score,
    saved: Saved,
    latency: dict | None,
    forgetting: dict | None,
    identity: dict,
) -> RunRecord:
    head_params = sum(p.numel() for p in learner.head.parameters()) if learner.head is not None else 0
    trainable, total = (n + head_params for n in zoo.count_parameters(learner.model))
    device = base.accelerator.device
    before = learner.before.evaluation if learner.before is not None else None
    evaluation = after.evaluation
    return RunRecord(
        method=plan.name,
        method_config=dataclasses.asdict(learner.method) if learner.method is not None else None,
        baseline=plan.baseline.name if plan.baseline else None,
        formulation=plan.formulation,
        model=plan.model.name,
        model_config=dataclasses.asdict(plan.model),
        task=plan.task.name,
        task_kind=plan.kind.name,
        task_config=plan.kind.recorded_task(dataclasses.asdict(plan.task)),
        n_train=len(data.train),
        n_eval=len(data.eval),
        seed=plan.seed,
        learning_rate=None if plan.spec is not None and plan.spec.gradient_free else plan.rates.method,
        head_learning_rate=plan.rates.head if learner.head is not None else None,
        trainable_params=trainable,
        total_params=total,
        base_params=base.params,
        trainable_percent=100.0 * trainable / base.params,
        objective_metric=plan.kind.objective.name,
        scores=evaluation.scores,
        example_scores=evaluation.example_scores,
        eval_details=evaluation.details,
        baseline_scores={name: s.evaluation.scores for name, s in scores.items()},
        latency=latency,
        adapter_bytes=saved.adapter_bytes,
        head_bytes=saved.head_bytes,
        zoo_version=zoo.__version__,
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        run_config=identity,
        processes=base.accelerator.num_processes,
        forgetting=forgetting,
        splits_read=list(data.splits_read),
        eval_fingerprint=examples_fingerprint(data.eval),
        **_trained(result),
        **plan.kind.record_fields(data, before, evaluation),
    )


def _trained(result: TrainResult | None) -> dict:
    """The record's fields of what training did (None: a baseline, or a gradient-free method's fit: nothing stepped)."""
    if result is None:
        return {
            "train_steps": 0,
            "train_seconds": 0.0,
            "peak_memory_bytes": None,
            "final_loss": None,
            "diverged": False,
            "divergence": None,
            "max_abs_weight": None,
            "history": [],
        }
    return {
        "train_steps": result.steps,
        "train_seconds": result.train_seconds,
        "peak_memory_bytes": result.peak_memory_bytes,
        "final_loss": result.final_loss,
        "diverged": result.diverged,
        "divergence": result.divergence,
        "max_abs_weight": result.max_abs_weight,
        "history": result.history,
        "train_tokens": result.tokens,
        "train_examples": result.examples,
        "optimizer": result.optimizer,
    }
