"""Resuming a sweep: a run whose folder already holds the metrics of the same config is not run again.

Every run records the config it ran (``run_config`` in metrics.json, written atomically last,
so its presence means the run finished). With ``resume=true`` a run finds that record and
returns it instead of running; a record of another config (the sweep was changed between
the two launches) is run again, with a warning naming what differs. The record holds the
learning rates the run resolved (zoo.training.learning_rate) instead of ``method_learning_rates`` and
``trainer.learning_rate_scale``: giving another method a rate redoes that method's runs, not the
whole sweep. A metrics.json that is not a run's record of this zoo's schema (zoo.io.records) is
named in a warning and run over.

Without ``resume`` a run does not overwrite what it cannot tell is its own: a folder holding
the metrics.json of another config, or one zoo cannot read, stops the run before it starts
(:func:`refuse_another_run`); a record of the same config is an earlier run of it, replaced.
Default run folders are unique (conf/config.yaml), so this guards the folders a user names
(``hydra.run.dir``, a reused ``hydra.sweep.dir`` whose defaults changed).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from zoo.io.records import RunRecord, UnusableRecord
from zoo.runner.plan import plan_run
from zoo.tasks.kind import get_task_kind

log = logging.getLogger(__name__)
NOT_RESULTS = ("resume", "predictions_cache", "trainer.progress", "trainer.log_with", "method_learning_rates")
"""Config keys that cannot change a run's results (a finished run counts whatever they were), and
``method_learning_rates``, of which only the rate the run resolved counts (``learning_rates`` in the identity)."""
SCALES_THE_RATE = ("trainer.learning_rate_scale",)
"""Config keys whose whole effect is the resolved rate in the identity, yet which name sweep folders (a search sweeps them):
left out of the identity like :data:`NOT_RESULTS`, so that records written before the key existed still resume."""
TIMING_ONLY = ("latency_batches",)
"""Config keys that change only how many batches a run's latency is timed on, which its record says (``latency.batches``): left
out of the identity as :data:`SCALES_THE_RATE` is, for the same reason."""


def run_identity(cfg: DictConfig) -> dict:
    """The run's config as plain JSON data, without the keys in :data:`NOT_RESULTS`, :data:`SCALES_THE_RATE` and
    :data:`TIMING_ONLY`, with its resolved learning rates."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config["task"] = get_task_kind(config["task"]["kind"]).recorded_task(config["task"])  # as the kind records it
    for dotted in NOT_RESULTS + SCALES_THE_RATE + TIMING_ONLY:
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node.get(parent, {})
        node.pop(key, None)
    rates = plan_run(cfg).rates
    return {**json.loads(json.dumps(config, default=str)), "learning_rates": {"method": rates.method, "head": rates.head}}


def finished_run(out_dir: Path, cfg: DictConfig) -> RunRecord | None:
    """The metrics of a finished run of ``cfg`` in ``out_dir``, or None when it has to run."""
    path = out_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        record = RunRecord.read(path)
    except UnusableRecord as err:
        log.warning("%s: running again", err)
        return None
    differing = _config_differences(record, cfg)
    if differing:
        log.warning("%s holds a run of another config (differs in %s): running again", path, ", ".join(differing[:5]))
        return None
    return record


def refuse_another_run(out_dir: Path, cfg: DictConfig) -> None:
    """Stop a run without ``resume`` before it overwrites a metrics.json in ``out_dir`` that is not an earlier run of ``cfg``.

    Raises:
        FileExistsError: naming the file, how it differs, and the two ways on.
    """
    path = out_dir / "metrics.json"
    if not path.is_file():
        return
    try:
        differing = _config_differences(RunRecord.read(path), cfg)
    except UnusableRecord as err:
        why = str(err)
    else:
        if not differing:
            log.info("%s holds an earlier run of this config: running it again replaces it", path)
            return
        why = f"{path} holds a run of another config (differs in {', '.join(differing[:5])})"
    raise FileExistsError(
        f"{why}; zoo does not overwrite it. Give this run a folder of its own (hydra.run.dir=..., or "
        f"hydra.sweep.dir=... for a sweep), or pass resume=true to run this config in its place"
    )


def _config_differences(record: RunRecord, cfg: DictConfig) -> list[str]:
    """Where the config a record ran differs from ``cfg``."""
    return _differences(record.run_config, run_identity(cfg))


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys
