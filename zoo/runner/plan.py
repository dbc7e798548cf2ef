"""Step 1 of a run: the config, typed and checked, and every decision that needs nothing loaded."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

import zoo
from zoo.evaluation.forgetting import ForgettingConfig
from zoo.method import MethodConfig, MethodSpec
from zoo.models.load import ModelConfig
from zoo.runner.baselines import BaselineSpec, get_baseline
from zoo.task_kinds import TaskKind, get_task_kind, list_task_kinds
from zoo.tasks.config import TaskConfig
from zoo.tasks.formulation import trains_head
from zoo.training.learning_rate import LearningRates, resolve
from zoo.training.loop import TrainerConfig


@dataclass(frozen=True)
class Plan:
    """What one run does: a method (``spec``) or a baseline, on a model and a task, trained how."""

    model: ModelConfig
    task: TaskConfig
    kind: TaskKind
    """The task's kind (``task.kind``): its data, formulation, loss, metrics and record fields."""
    trainer: TrainerConfig
    method: MethodConfig | None
    """None: a baseline run."""
    spec: MethodSpec | None
    baseline: BaselineSpec | None
    formulation: str
    """``prompt`` or ``head``: the baseline's own, else the task's."""
    rates: LearningRates
    seed: int
    save_adapter: bool
    predictions_cache: str | None
    forgetting: ForgettingConfig
    latency: bool
    """Whether the run times the tuned model against the base model (zoo.evaluation.latency)."""
    latency_batches: int
    """Evaluation batches it times per model."""

    @property
    def name(self) -> str:
        """The row the run is: its method's name, or its baseline's."""
        return self.baseline.name if self.baseline else self.spec.name

    @property
    def shows_demonstrations(self) -> bool:
        """Whether the run's own prompt shows the task's demonstrations (the in-context baseline does; a method with them does)."""
        return self.baseline.demonstrations if self.baseline else self.task.demonstrations > 0


def plan_run(cfg: DictConfig) -> Plan:
    """The run ``cfg`` describes.

    Raises:
        ValueError: a task its kind refuses, a baseline or method that cannot run on the task (its kind, its demonstrations),
            bad ``method_learning_rates``, or ``latency_batches`` below 1 in a timed run.
    """
    model, task, trainer = (OmegaConf.to_object(cfg[k]) for k in ("model", "task", "trainer"))
    kind = task_kind(task)
    baseline = get_baseline(cfg.baseline.name) if cfg.get("baseline") else None
    if baseline is not None:
        baseline.check(task.demonstrations)
    method = None if baseline else OmegaConf.to_object(cfg.method)
    spec = None if baseline else zoo.registry.spec_for_config(method)
    check_task_kind(task, baseline or spec)
    formulation = baseline.formulation if baseline else task.formulation
    rates = resolve(
        trainer.learning_rate,
        dict(cfg.method_learning_rates),
        spec,
        trains_head(formulation),
        task.head_learning_rate,
        trainer.learning_rate_scale,
    )
    forgetting = OmegaConf.to_object(cfg.forgetting)
    if cfg.latency and cfg.latency_batches < 1:
        raise ValueError(f"latency_batches must be at least 1, got {cfg.latency_batches}; latency=false times nothing")
    return Plan(
        model,
        task,
        kind,
        trainer,
        method,
        spec,
        baseline,
        formulation,
        rates,
        cfg.seed,
        cfg.save_adapter,
        cfg.predictions_cache,
        forgetting,
        cfg.latency,
        cfg.latency_batches,
    )


def task_kind(task: TaskConfig) -> TaskKind:
    """The task's registered kind, once it has checked the task; a built-in task of another kind is refused, naming its kind."""
    kind = get_task_kind(task.kind)
    if task.path is None and task.dataset is None and task.name not in kind.builtin_tasks:
        for other in map(get_task_kind, list_task_kinds()):
            if task.name in other.builtin_tasks:
                raise ValueError(
                    f"task {task.name!r} is a {other.name} task: set task.kind={other.name} "
                    f"(conf/task/{task.name}.yaml does; use task={task.name})"
                )
    kind.check_task(task)
    return kind


def check_task_kind(task: TaskConfig, spec: MethodSpec | BaselineSpec) -> None:
    """Refuse a method or baseline on a task of a kind it does not declare (``task_kinds``), naming the kinds it supports."""
    if spec.task_kinds is not None and task.kind not in spec.task_kinds:
        what = "baseline" if isinstance(spec, BaselineSpec) else "method"
        raise ValueError(
            f"{what} {spec.name!r} supports {' and '.join(spec.task_kinds)} tasks only, and task {task.name!r} is a "
            f"{task.kind} task; choose another {what} (zoo.list_methods(), zoo.runner.baselines.list_baselines())"
        )
