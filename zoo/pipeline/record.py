"""Step 8: the run's :class:`~zoo.records.RunRecord`, from what the steps before returned."""
from __future__ import annotations

import dataclasses

import torch

import zoo
from zoo.analysis.flips import flips
from zoo.pipeline.base import Base, Score
from zoo.pipeline.learner import Learner
from zoo.pipeline.plan import Plan
from zoo.pipeline.steps import Saved
from zoo.records import RunRecord
from zoo.tasks.config import recorded_task
from zoo.tasks.data import ClassificationData, examples_fingerprint
from zoo.train import TrainResult


def make_record(plan: Plan, data: ClassificationData, base: Base, scores: dict[str, Score], learner: Learner,
                result: TrainResult | None, after: Score, saved: Saved, latency: dict | None, forgetting: dict | None,
                identity: dict) -> RunRecord:
    head_params = sum(p.numel() for p in learner.head.parameters()) if learner.head is not None else 0
    trainable, total = (n + head_params for n in zoo.count_parameters(learner.model))
    device = base.accelerator.device
    before = learner.before.predictions if learner.before is not None else None
    return RunRecord(
        method=plan.name, method_config=dataclasses.asdict(learner.method) if learner.method is not None else None,
        baseline=plan.baseline.name if plan.baseline else None, formulation=plan.formulation,
        model=plan.model.name, model_config=dataclasses.asdict(plan.model), task=plan.task.name,
        task_config=recorded_task(dataclasses.asdict(plan.task)),
        label_names=data.label_names, n_train=len(data.train), n_eval=len(data.eval), seed=plan.seed,
        learning_rate=plan.rates.method, head_learning_rate=plan.rates.head if learner.head is not None else None,
        trainable_params=trainable, total_params=total, base_params=base.params, trainable_percent=100.0 * trainable / base.params,
        train_steps=result.steps if result else 0, train_seconds=result.train_seconds if result else 0.0,
        peak_memory_bytes=result.peak_memory_bytes if result else None, final_loss=result.final_loss if result else None,
        diverged=result.diverged if result else False, divergence=result.divergence if result else None,
        max_abs_weight=result.max_abs_weight if result else None,
        eval=after.metrics, accuracy=after.metrics["accuracy"], macro_f1=after.metrics["macro_f1"],
        baseline_scores={name: {"accuracy": s.metrics["accuracy"], "macro_f1": s.metrics["macro_f1"]} for name, s in scores.items()},
        flips=flips(before, after.predictions, [e.label for e in data.eval], data.label_names) if before is not None else None,
        latency=latency, adapter_bytes=saved.adapter_bytes, head_bytes=saved.head_bytes, history=result.history if result else [],
        zoo_version=zoo.__version__, device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else None, run_config=identity,
        processes=base.accelerator.num_processes, train_tokens=result.tokens if result else None,
        train_examples=result.examples if result else None, forgetting=forgetting, splits_read=list(data.splits_read),
        eval_correct=[p == e.label for p, e in zip(after.predictions, data.eval, strict=True)],
        eval_fingerprint=examples_fingerprint(data.eval),
    )
