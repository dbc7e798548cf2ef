"""Resuming a sweep: a run whose folder already holds the metrics of the same config is not run again.

Every run records the config it ran (``run_config`` in metrics.json, written atomically last,
so its presence means the run finished). With ``resume=true`` a run finds that record and
returns it instead of running; a record of another config (the sweep was changed between
the two launches) is run again, with a warning naming what differs. Of ``method_learning_rates``
only the run's own method's entry counts: giving another method a rate redoes that method's
runs, not the whole sweep.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from zoo.registry import spec_for_config

log = logging.getLogger(__name__)
NOT_RESULTS = ("resume", "predictions_cache", "trainer.progress")
"""Config keys that cannot change a run's results: a finished run counts whatever they were."""


def run_identity(cfg: DictConfig) -> dict:
    """The run's config as plain JSON data, without the keys in :data:`NOT_RESULTS`."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for dotted in NOT_RESULTS:
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node.get(parent, {})
        node.pop(key, None)
    return _own_learning_rate(json.loads(json.dumps(config, default=str)), _method_name(cfg))


def _method_name(cfg: DictConfig) -> str | None:
    """The registered name of the run's method; None for a baseline run (it trains no method)."""
    if cfg.get("baseline") or cfg.get("method") is None:
        return None
    return spec_for_config(OmegaConf.to_object(cfg.method)).name


def _own_learning_rate(config: dict, method: str | None) -> dict:
    """``config`` with ``method_learning_rates`` cut to ``method``'s entry: the others cannot change its results."""
    if "method_learning_rates" in config:
        config["method_learning_rates"] = {k: v for k, v in (config["method_learning_rates"] or {}).items() if k == method}
    return config


def finished_run(out_dir: Path, cfg: DictConfig) -> dict | None:
    """The metrics of a finished run of ``cfg`` in ``out_dir``, or None when it has to run."""
    path = out_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        log.warning("%s is unreadable (%s): running again", path, err)
        return None
    recorded = _own_learning_rate(dict(record.get("run_config") or {}), _method_name(cfg))
    differing = _differences(recorded, run_identity(cfg))
    if differing:
        log.warning("%s holds a run of another config (differs in %s): running again", path, ", ".join(differing[:5]))
        return None
    return record


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
