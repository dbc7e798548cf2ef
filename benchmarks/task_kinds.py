"""What the suite and the search run on a task of each kind: the methods and baselines that declare it (``task_kinds``).

A method or baseline that declares no kinds runs on every kind. A generation task
(``task.kind: generation``) has no classes, so the closed-form head and the linear probe, which
declare classification only, get no row on it; a run of either there would stop at planning.
The kind is read from the task's own config, ``conf/task/<task>.yaml``.
"""

from __future__ import annotations

from importlib.resources import files

from omegaconf import OmegaConf

import zoo
from zoo.runner.baselines import get_baseline, list_baselines
from zoo.tasks.config import TaskConfig


def task_kind(task: str) -> str:
    """The kind of the task ``conf/task/<task>.yaml`` describes (TaskConfig's default where it names none)."""
    path = files("zoo.conf").joinpath("task", f"{task}.yaml")
    if not path.is_file():
        raise SystemExit(
            f"suite: no conf/task/{task}.yaml; tasks: {sorted(p.name.removesuffix('.yaml') for p in path.parent.iterdir())}"
        )
    return OmegaConf.load(str(path)).get("kind", TaskConfig.kind)


def _runs_on(kinds: tuple[str, ...] | None, kind: str) -> bool:
    return kinds is None or kind in kinds


def methods_for(kind: str) -> list[str]:
    """The registered methods that run on tasks of ``kind``."""
    return [m for m in zoo.list_methods() if _runs_on(zoo.registry.get_method(m).task_kinds, kind)]


def plain_baselines(kind: str) -> list[str]:
    """The baselines without demonstrations that run on tasks of ``kind`` (the suite's ``baselines`` row), the one reports show
    beside every row (zero-shot) first."""
    found = [b for b in list_baselines() if _runs_on(get_baseline(b).task_kinds, kind) and not get_baseline(b).demonstrations]
    return sorted(found, key=lambda b: not get_baseline(b).report_column)
