"""Step 3: what the run trains and evaluates (the learner): the wrapped model, or a baseline's frozen base, with its formulation."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

import zoo
from zoo.baselines import get_baseline
from zoo.inject import freeze
from zoo.method import MethodConfig, TaskContext
from zoo.models.placement import to_device
from zoo.pipeline.base import Base, Score
from zoo.pipeline.plan import Plan
from zoo.tasks.data import ClassificationData
from zoo.tasks.formulation import Formulation, formulation_for


class Classifier(nn.Module):
    """A model and its formulation's scorer as one module, ``forward(batch) -> (B, k)`` class scores.

    Everything that trains (the method's parameters, a classification head) is inside it, so
    accelerate prepares, and under several processes synchronises, one module.
    """

    def __init__(self, model: nn.Module, formulation: Formulation):
        super().__init__()
        self.model = model
        self.scorer = formulation.scorer  # a head is a module: registered here, so it trains and moves with the model

    def forward(self, batch: dict):
        return self.scorer(self.model, batch)


def classification_loss(classifier: nn.Module, batch: dict):
    return F.cross_entropy(classifier(batch).float(), batch["labels"])


@dataclass
class Learner:
    model: nn.Module
    """The wrapped model (a method) or the frozen base model (a baseline)."""
    formulation: Formulation
    eval_batches: list[dict]
    groups: list[dict]
    """Optimiser parameter groups with their learning rates; empty: nothing trains."""
    before: Score | None
    """The base model's score with the run's own prompt (the flips are counted against it)."""
    evaluated: Score | None = None
    """An untrained baseline's own score: it is evaluated already."""
    method: MethodConfig | None = None
    """The method's config bound to the task (MethodConfig.bind): what wrapped the model."""

    @property
    def adapter(self) -> zoo.ZooModel | None:
        return self.model if isinstance(self.model, zoo.ZooModel) else None

    @property
    def head(self) -> nn.Module | None:
        return self.formulation.head


def prepare_learner(plan: Plan, data: ClassificationData, base: Base, scores: dict[str, Score]) -> Learner:
    """Wrap the base model with the run's method, or freeze it for a baseline, in the run's formulation."""
    own = next((scores[name] for name in scores if get_baseline(name).demonstrations == plan.shows_demonstrations), None)
    if plan.baseline is not None:
        freeze(base.model)  # nothing of the base model trains in a baseline
        if plan.baseline.untrained:
            return Learner(base.model, own.formulation, own.batches, [], own, evaluated=own)
    form = formulation_for(plan.task, base.tokenizer, base.kind, name=plan.formulation, train=data.train, model=base.model)
    eval_batches = form.batches(data.eval, plan.trainer.batch_size, base.tokenizer.pad_token_id, seed=None)
    if plan.baseline is not None:
        model, groups, bound = base.model, [], None
    else:
        bound = plan.method.bind(TaskContext(list(plan.task.label_words), form.label_token_ids, base.tokenizer))
        model = to_device(zoo.wrap(base.model, bound), base.accelerator.device, plan.model.placed_on_load)
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": plan.rates.method}]
    if form.head is not None:
        groups.append({"params": list(form.head.parameters()), "lr": plan.rates.head})
    return Learner(model, form, eval_batches, [g for g in groups if g["params"]], own, method=bound)
