"""Hydra structured configs: the run schema and one ``method`` group entry per registered method.

Every registered method's config (plugins included) is stored in the ConfigStore group
``method`` under the method's name, so ``zoo method=<name> method.<field>=...`` needs no YAML.
YAML files in ``conf/`` choose models, tasks, trainers, sweeps and benchmark profiles; this
schema types them. The resolver ``zoo.row`` names a run's row (its baseline, else its method)
for sweep folders: ``hydra.sweep.subdir=${zoo.row:${baseline},${hydra:runtime.choices.method}}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

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
    resume: bool = False
    """Skip the run when its output folder already holds the metrics.json of the same config (zoo.resume)."""
    method_learning_rates: dict[str, float] = field(default_factory=dict)
    """Learning rate per method name, used where trainer.learning_rate is unset and the method's own default
    does not suit the model (a sweep over every method on a pretrained model: ``{full_finetune: 5e-5}``)."""
    predictions_cache: str | None = "~/.cache/zoo/predictions"
    """Folder of cached base-model predictions (zero-shot, in-context; zoo.prediction_cache); null: no cache."""


def store_configs() -> None:
    """Store the run schema and every registered method's config; register the ``zoo.row`` resolver."""
    OmegaConf.register_new_resolver("zoo.row", lambda baseline, method: baseline or method, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="zoo_schema", node=RunConfig)
    for name in list_methods():
        cs.store(group="method", name=name, node=get_method(name).config)
