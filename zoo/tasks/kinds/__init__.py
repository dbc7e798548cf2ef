"""Task kinds as registered plug-ins (:mod:`zoo.tasks.kinds.kind`) and the metrics they declare
(:mod:`zoo.tasks.kinds.metric`); the built-in kinds, classification and generation, register on import."""
from zoo.tasks.evaluation import Evaluation
from zoo.tasks.kinds import classification, generation  # noqa: F401  (each registers itself)
from zoo.tasks.kinds.kind import (
    ENTRY_POINT_GROUP,
    Formulation,
    TaskData,
    TaskKind,
    get_task_kind,
    list_task_kinds,
    register_task_kind,
    unregister_task_kind,
)
from zoo.tasks.kinds.metric import MetricSpec, get_metric, register_metric

__all__ = ["ENTRY_POINT_GROUP", "Evaluation", "Formulation", "MetricSpec", "TaskData", "TaskKind", "get_metric", "get_task_kind",
           "list_task_kinds", "register_metric", "register_task_kind", "unregister_task_kind"]
