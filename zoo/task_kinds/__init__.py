"""The built-in task kinds, classification and generation, each a registration of the task-kind protocol
(:mod:`zoo.tasks.kind`), and that protocol's public names for plug-ins: ``from zoo.task_kinds import TaskKind,
MetricSpec, register_task_kind``. zoo imports this package with itself, so the built-in kinds are always registered."""

from zoo.task_kinds import classification, generation  # noqa: F401  (each registers itself)
from zoo.tasks.kind import (
    ENTRY_POINT_GROUP,
    Evaluation,
    Formulation,
    TaskData,
    TaskKind,
    get_task_kind,
    list_task_kinds,
    register_task_kind,
    unregister_task_kind,
)
from zoo.tasks.metric import MetricSpec, get_metric, register_metric

__all__ = [
    "ENTRY_POINT_GROUP",
    "Evaluation",
    "Formulation",
    "MetricSpec",
    "TaskData",
    "TaskKind",
    "get_metric",
    "get_task_kind",
    "list_task_kinds",
    "register_metric",
    "register_task_kind",
    "unregister_task_kind",
]
