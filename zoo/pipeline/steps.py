"""Steps 4-7 of a run: train or fit the learner, evaluate it, save what it learnt, time it against the base model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zoo
from zoo.evaluate import evaluate
from zoo.latency import SAMPLE_BATCHES, latency_record
from zoo.models.load import load_model
from zoo.models.placement import to_device
from zoo.pipeline.base import Base, Score
from zoo.pipeline.learner import Classifier, Learner, classification_loss
from zoo.pipeline.plan import Plan
from zoo.tasks.data import ClassificationData
from zoo.tasks.head import save_head
from zoo.train import TrainResult, fit, train


def train_learner(plan: Plan, learner: Learner, data: ClassificationData, base: Base, out_dir: Path) -> TrainResult | None:
    """Fit a gradient-free method, train what has parameter groups; None when nothing trains (an untrained baseline)."""
    if plan.spec is not None and plan.spec.gradient_free:
        return fit(learner.model, learner.formulation.batches(data.train, plan.trainer.batch_size, base.tokenizer.pad_token_id,
                                                              seed=plan.seed), base.accelerator)
    if not learner.groups:
        return None
    batches = learner.formulation.batches(data.train, plan.trainer.batch_size, base.tokenizer.pad_token_id, seed=plan.seed)
    adapter = learner.adapter
    return train(
        Classifier(learner.model, learner.formulation), learner.groups, batches, classification_loss, plan.trainer, base.accelerator,
        checkpoint=(lambda: zoo.save_adapter(adapter, out_dir / "checkpoint")) if adapter is not None else None,
        evaluate=lambda: evaluate_learner(learner, data, base).metrics, desc=plan.name,
    )


def evaluate_learner(learner: Learner, data: ClassificationData, base: Base) -> Score:
    """The learner's score on the evaluation split, its batches shared among the processes."""
    if learner.evaluated is not None:
        return learner.evaluated
    metrics, predictions = evaluate(learner.model, learner.eval_batches, learner.formulation.scorer,
                                    [e.label for e in data.eval], data.label_names, base.accelerator)
    return Score(learner.formulation, learner.eval_batches, metrics, predictions)


@dataclass(frozen=True)
class Saved:
    adapter_bytes: int | None = None
    head_bytes: int | None = None


def save_learnt(plan: Plan, learner: Learner, data: ClassificationData, base: Base, out_dir: Path) -> Saved:
    """The adapter (``adapter/``) and the head (``head.safetensors``) on the main process, where the run saves them."""
    if not plan.save_adapter or learner.evaluated is not None or not base.accelerator.is_main_process:
        return Saved()  # an untrained baseline learnt nothing
    adapter = learner.adapter
    adapter_bytes = sum(f.stat().st_size for f in zoo.save_adapter(adapter, out_dir / "adapter").iterdir()) if adapter else None
    head_bytes = save_head(learner.head, out_dir / "head.safetensors", data.label_names) if learner.head is not None else None
    return Saved(adapter_bytes, head_bytes)


def time_learner(plan: Plan, learner: Learner, base: Base) -> dict:
    """Seconds per evaluation batch against the base model, timed in this process; a fresh base, as wrapping changed the first."""
    fresh = None
    if plan.spec is not None:
        fresh = to_device(load_model(plan.model)[0], base.accelerator.device, plan.model.placed_on_load)
    return latency_record(learner.model, learner.eval_batches[:SAMPLE_BATCHES], learner.formulation.scorer, fresh)
