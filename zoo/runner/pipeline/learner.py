"""Step 3: what the run trains and evaluates (the learner): the wrapped model, or a baseline's frozen base, with its formulation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import zoo
from zoo.inject import freeze
from zoo.method import MethodConfig, TaskContext
from zoo.models.placement import to_device
from zoo.runner.baselines import get_baseline
from zoo.runner.pipeline.base import Base, Score
from zoo.runner.plan import Plan
from zoo.task_kinds import Formulation, TaskData
from zoo.training.optimizer import MakeOptimizer, method_groups, optimizer_of


@dataclass
class Learner:
    model: nn.Module
    """The wrapped model (a method) or the frozen base model (a baseline)."""
    formulation: Formulation
    groups: list[dict]
    """Optimiser parameter groups with their learning rates; empty: nothing trains."""
    before: Score | None
    """The base model's score with the run's own prompt (what the run's answers are compared with)."""
    evaluated: Score | None = None
    """An untrained baseline's own score: it is evaluated already."""
    method: MethodConfig | None = None
    """The method's config bound to the task (MethodConfig.bind): what wrapped the model."""
    make_optimizer: MakeOptimizer = torch.optim.AdamW
    """The optimiser the groups train with: the method's own (its spec's ``optimizer``), else AdamW."""

    @property
    def adapter(self) -> zoo.ZooModel | None:
        return self.model if isinstance(self.model, zoo.ZooModel) else None

    @property
    def head(self) -> nn.Module | None:
        return self.formulation.head


def prepare_learner(plan: Plan, data: TaskData, base: Base, scores: dict[str, Score]) -> Learner:
    """Wrap the base model with the run's method, or freeze it for a baseline, in the run's formulation."""
    own = next((scores[name] for name in scores if get_baseline(name).demonstrations == plan.shows_demonstrations), None)
    if plan.baseline is not None:
        freeze(base.model)  # nothing of the base model trains in a baseline
        if plan.baseline.untrained:
            return Learner(base.model, own.formulation, [], own, evaluated=own)
    form = plan.kind.formulate(
        plan.task,
        base.tokenizer,
        base.kind,
        name=plan.formulation,
        data=data,
        demonstrations=plan.shows_demonstrations,
        model=base.model,
    )
    if plan.baseline is not None:
        model, groups, bound = base.model, [], None
    else:
        bound = plan.method.bind(TaskContext(list(plan.task.label_words), form.label_token_ids, base.tokenizer))
        model = to_device(zoo.wrap(base.model, bound), base.accelerator.device, plan.model.placed_on_load)
        groups = method_groups(model, plan.rates.method)
    if form.head is not None:
        groups.append({"params": list(form.head.parameters()), "lr": plan.rates.head})
    return Learner(model, form, [g for g in groups if g["params"]], own, method=bound, make_optimizer=optimizer_of(plan.spec))
