"""Hydra structured configs: the run schema and one ``method`` group entry per registered method.

Every registered method's config (plugins included) is stored in the ConfigStore group
``method`` under the method's name, so ``zoo method=<name> method.<field>=...`` needs no YAML.
YAML files in ``conf/`` choose models, tasks, trainers, sweeps and benchmark profiles; this
schema types them. Resolvers for folder names (conf/config.yaml, conf/benchmark/):

- ``zoo.unique`` ends the default run and sweep folder names, so that two launches in the
  same second do not share one;
- ``zoo.subdir`` makes a sweep job's folder name of its overrides (``hydra.job.override_dirname``);
- ``zoo.main_process_only`` keeps a value in the main process of a distributed launch only
  (``hydra.output_subdir``: the other processes write no ``.hydra`` folder);
- ``zoo.row`` names a run's row (its baseline, else its method):
  ``hydra.sweep.subdir=${zoo.row:${hydra:runtime.choices.baseline},${hydra:runtime.choices.method}}``;
- ``zoo.seed_folder`` names a run's seeds: ``seed0``, or ``seed0-sample1`` with a ``task.sample_seed``
  (``${zoo.seed_folder:${seed},${task.sample_seed}}``), so the runs of a sample-seed sweep keep folders of
  their own and the folders of runs without one stay what they were.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from zoo.evaluation.forgetting import ForgettingConfig
from zoo.evaluation.latency import BATCHES
from zoo.method import MethodConfig
from zoo.models.load import ModelConfig
from zoo.registry import get_method, list_methods
from zoo.runner.baselines import BaselineConfig, list_baselines
from zoo.runtime.distributed import main_process_only
from zoo.tasks.config import TaskConfig
from zoo.training.loop import TrainerConfig


@dataclass
class RunConfig:
    method: MethodConfig = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    forgetting: ForgettingConfig = field(default_factory=ForgettingConfig)
    """The general text a method run's next-token loss is measured on before and after training (zoo.evaluation.forgetting)."""
    seed: int = 0
    save_adapter: bool = True
    baseline: BaselineConfig | None = None
    """A registered baseline (the ``baseline`` group: zero_shot, in_context, linear_probe, ...) run instead of the method
    (zoo.runner.baselines); ``zoo -m 'baseline=glob(*)'`` runs every one."""
    resume: bool = False
    """Skip the run when its output folder already holds the metrics.json of the same config (zoo.runner.resume)."""
    method_learning_rates: dict[str, float] = field(default_factory=dict)
    """Learning rate per method name, used where trainer.learning_rate is unset and the method's own default
    does not suit the model (a sweep over every method on a pretrained model: ``{full_finetune: 5e-5}``)."""
    predictions_cache: str | None = "~/.cache/zoo/predictions"
    """Folder of cached base-model predictions (zero-shot, in-context; zoo.runner.prediction_cache); null: no cache."""
    latency: bool = True
    """Time the tuned model against the base model after training (zoo.evaluation.latency); false: no timing passes, the record's
    latency is null (a search trial, scored on its accuracy alone)."""
    latency_batches: int = BATCHES
    """Evaluation batches timed per model after the warm-up ones, the evaluation set's batches cycled where it has fewer
    (zoo.evaluation.latency): the latency ratio is a ratio of medians over them."""
    cpu_threads: int | None = None
    """torch's CPU threads for the run; null: one per physical core the process may run on, whatever OMP_NUM_THREADS
    says, so that a sweep's records are the same under every launcher (zoo.runtime.cpu_threads)."""


MAX_NAME_BYTES = 200
"""Longest sweep folder name kept whole (file systems allow 255 bytes); a longer one is cut and ends in a hash of it."""


def launch_token() -> str:
    """A short token that tells two launches apart: random, or the launcher's process id under torchrun/accelerate.

    Registered with ``use_cache``: OmegaConf keeps the first value for the config it resolves
    in, Hydra copies that cache into every job of a sweep, so one launch has one token. The
    processes of a distributed launch compose a config each; they share their parent, the
    launcher, and so its id and their folder.
    """
    return f"p{os.getppid()}" if "LOCAL_RANK" in os.environ else secrets.token_hex(3)


def sweep_subdir(override_dirname: str) -> str:
    """A sweep job's folder name from its sorted overrides (``method=lora,seed=1``): where resume finds the run again.

    No overrides: ``defaults``. ``%`` and ``/`` (in paths given as values) are percent-encoded,
    so that each run stays one folder and two overrides never map to one name.
    """
    if not override_dirname:
        return "defaults"
    name = override_dirname.replace("%", "%25").replace("/", "%2F")
    if len(name.encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = name.encode()[: MAX_NAME_BYTES - len(digest) - 1].decode(errors="ignore") + "-" + digest
    return name


def seed_folder(seed: int, sample_seed: int | None) -> str:
    """``seed<seed>``, and ``-sample<sample_seed>`` after it when the run draws its training sample with a seed of its own."""
    return f"seed{seed}" if sample_seed in (None, "null") else f"seed{seed}-sample{sample_seed}"


def store_configs() -> None:
    """Store the run schema, every registered method's config and every baseline; register the folder-name resolvers."""
    OmegaConf.register_new_resolver(
        "zoo.row", lambda baseline, method: method if baseline in (None, "null") else baseline, replace=True
    )
    OmegaConf.register_new_resolver("zoo.unique", launch_token, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("zoo.subdir", sweep_subdir, replace=True)
    OmegaConf.register_new_resolver("zoo.main_process_only", main_process_only, replace=True)
    OmegaConf.register_new_resolver("zoo.seed_folder", seed_folder, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="zoo_schema", node=RunConfig)
    for name in list_methods():
        cs.store(group="method", name=name, node=get_method(name).config)
    for name in list_baselines():
        cs.store(group="baseline", name=name, node=BaselineConfig(name=name))
