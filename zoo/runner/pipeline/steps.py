"""Steps 4-7 of a run: train or fit the learner, evaluate it, save what it learnt, time it against the base model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zoo
from zoo.evaluation.latency import Timed, latency_record
from zoo.models.load import load_model
from zoo.models.placement import to_device
from zoo.runner.baselines import get_baseline
from zoo.runner.pipeline.base import Base, Score
from zoo.runner.pipeline.learner import Learner
from zoo.runner.pipeline.outputs import adapter_bytes
from zoo.runner.plan import Plan
from zoo.task_kinds import TaskData
from zoo.tasks.head import save_head
from zoo.training.loop import TrainResult, fit, train


def train_learner(plan: Plan, learner: Learner, data: TaskData, base: Base, out_dir: Path) -> TrainResult | None:
    """Fit a gradient-free method, train what has parameter groups; None when nothing trains (an untrained baseline)."""
    form, size = learner.formulation, plan.trainer.batch_size
    if plan.spec is not None and plan.spec.gradient_free:
        return fit(learner.model, form.train_batches(data.train, size, seed=plan.seed), base.accelerator)
    if not learner.groups:
        return None
    adapter = learner.adapter
    return train(
        form.trainable(learner.model),
        learner.groups,
        form.train_batches(data.train, size, seed=plan.seed),
        form.loss,
        plan.trainer,
        base.accelerator,
        checkpoint=(lambda: zoo.save_adapter(adapter, out_dir / "checkpoint")) if adapter is not None else None,
        evaluate=lambda: evaluate_learner(plan, learner, data, base).evaluation.scores,
        desc=plan.name,
        make_optimizer=learner.make_optimizer,
    )


def evaluate_learner(plan: Plan, learner: Learner, data: TaskData, base: Base) -> Score:
    """The learner's score on the evaluation examples, its batches shared among the processes."""
    if learner.evaluated is not None:
        return learner.evaluated
    evaluation = learner.formulation.evaluate(learner.model, data.eval, plan.trainer.batch_size, base.accelerator)
    return Score(learner.formulation, evaluation)


@dataclass(frozen=True)
class Saved:
    adapter_bytes: int | None = None
    head_bytes: int | None = None


def save_learnt(plan: Plan, learner: Learner, data: TaskData, base: Base, out_dir: Path) -> Saved:
    """The adapter (``adapter/``) and the head (``head.safetensors``) on the main process, where the run saves them."""
    if not plan.save_adapter or learner.evaluated is not None or not base.accelerator.is_main_process:
        return Saved()  # an untrained baseline learnt nothing
    adapter = learner.adapter
    size = adapter_bytes(zoo.save_adapter(adapter, out_dir / "adapter")) if adapter else None
    head_bytes = save_head(learner.head, out_dir / "head.safetensors", data.label_names) if learner.head is not None else None
    return Saved(size, head_bytes)


def time_learner(plan: Plan, learner: Learner, data: TaskData, base: Base, scores: dict[str, Score]) -> dict:
    """Seconds per evaluation batch against the base model, timed in this process (zoo.evaluation.latency).

    A method against a fresh base (wrapping changed the first) on its own batches; a baseline, whose model is the base
    model, against the base model on the bare prompt (the formulation of the baseline reports show beside every row,
    zero-shot) where the run scored it, else on its own batches: an in-context prompt costs what its demonstrations add.
    """
    size = plan.trainer.batch_size
    timed = Timed(learner.model, *learner.formulation.timing(data.eval, size))
    if plan.spec is not None:
        fresh = to_device(load_model(plan.model)[0], base.accelerator.device, plan.model.placed_on_load)
        return latency_record(timed, Timed(fresh, timed.batches, timed.scorer), plan.latency_batches)
    bare = next((s.formulation for name, s in scores.items() if get_baseline(name).report_column), learner.formulation)
    return latency_record(timed, Timed(base.model, *bare.timing(data.eval, size)), plan.latency_batches)
