"""Hydra structured configs: the run schema and one ``method`` group entry per registered method.

Every registered method's config (plugins included) is stored in the ConfigStore group
``method`` under the method's name, so ``zoo method=<name> method.<field>=...`` needs no YAML.
YAML files in ``conf/`` choose models, tasks, trainers and sweeps; this schema types them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from zoo.method import MethodConfig
from zoo.models.load import ModelConfig
from zoo.registry import get_method, list_methods
from zoo.tasks.config import TaskConfig
from zoo.train import TrainerConfig


@dataclass
class RunConfig:
    method: MethodConfig = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    save_adapter: bool = True
    baseline: str | None = None
    """zero_shot, in_context or linear_probe: run that baseline instead of the method (zoo.tasks.baselines)."""


def store_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="zoo_schema", node=RunConfig)
    for name in list_methods():
        cs.store(group="method", name=name, node=get_method(name).config)
