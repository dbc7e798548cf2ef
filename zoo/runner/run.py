"""The ``zoo`` command: one Hydra run (or a sweep with ``-m``) of a method or a baseline on a task.

A run (:func:`zoo.runner.pipeline.run`) loads the data and the base model, scores the untrained
baselines the task allows on the base model (zero-shot; in-context with demonstrations),
wraps the model with the method, trains it (or fits it, for gradient-free methods) with the
task's formulation (prompt or head), evaluates, times inference against the base model, and
writes ``metrics.json`` (a :class:`~zoo.io.records.RunRecord`), ``flips.jsonl``, the adapter and
the head into its output folder. ``baseline=<name>`` runs a registered baseline
(zoo.runner.baselines) instead of the method. The base model's predictions are cached across runs
(``predictions_cache``); ``resume=true`` skips a run whose folder holds its finished record.
``zoo new-method NAME`` writes a plugin repository for a new method instead (:mod:`zoo.runner.new_method`).

A run holds its folder's lock while it runs (zoo.runtime.run_lock: a second launch waits), replaces
only the files zoo wrote there (zoo.runtime.written), and in a sweep's worker process ends with its
launcher (zoo.runtime.pool_worker). A user error ends the command with one line and exit status 2
(zoo.runtime.errors; ``HYDRA_FULL_ERROR=1`` for its traceback).

``trainer.learning_rate=auto`` searches the method's rate on the validation split first
(zoo.runner.rate_search). ``zoo`` returns the run's objective on its evaluation split; under a
sweeper that optimises it, that split must be validation (zoo.runner.sweeper_objective).
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from zoo.io.records import RunRecord
from zoo.runner import new_method
from zoo.runner.config import store_configs
from zoo.runner.pipeline import run
from zoo.runner.rate_search import run_with_rate_search, wants_search
from zoo.runner.resume import finished_run, refuse_another_run
from zoo.runner.sweeper_objective import check_sweeper_objective
from zoo.runtime import pool_worker
from zoo.runtime.cpu_threads import set_cpu_threads
from zoo.runtime.distributed import launch_rank, quiet_other_processes
from zoo.runtime.errors import UserError, run_command, stop, user_error_line
from zoo.runtime.run_lock import owning
from zoo.task_kinds import get_metric

__all__ = ["main", "run"]


def _score(record: RunRecord, name: str, scores: dict | None = None) -> str:
    metric = get_metric(name)
    return f"{metric.label} {metric.cell((record.scores if scores is None else scores).get(name))}"


def summary(record: RunRecord, path: Path) -> str:
    """The line a run prints: its objective against the untrained baselines' (zoo.task_kinds), its other scores, its size
    and time, and where its record is.

    Classification: ``lora (prompt): accuracy 0.980 (zero-shot 0.512), macro-F1 0.980, ...``.
    """
    objective = record.objective_metric
    untrained = (
        ", ".join(
            f"{name.replace('_', '-')} {get_metric(objective).cell(s.get(objective))}"
            for name, s in record.baseline_scores.items()
        )
        or "zero-shot n/a"
    )
    others = "".join(f", {_score(record, name)}" for name in record.scores if name != objective)
    diverged = f" (diverged: {record.divergence})" if record.diverged else ""
    return (
        f"{record.method} ({record.formulation}): {_score(record, objective)} ({untrained}){others}, "
        f"{record.trainable_params:,} trainable ({record.trainable_percent:.2f}% of the base model's {record.base_params:,}), "
        f"{record.train_seconds:.1f}s{diverged} -> {path}"
    )


store_configs()
CONFIG_ERRORS = (HydraException, OmegaConfBaseException)
"""Hydra's and OmegaConf's errors: a config that does not compose or an override that does not parse (zoo.runtime.errors)."""


TRACEBACKS = "ZOO_TRACEBACKS"
"""Set by :func:`main` for its jobs (a sweep's worker processes inherit it): "1" where the user asked for every traceback with
``HYDRA_FULL_ERROR=1``, which main sets for Hydra's sake either way."""


def _debug() -> bool:
    return os.environ.get(TRACEBACKS, os.environ.get("HYDRA_FULL_ERROR")) == "1"


@hydra.main(version_base=None, config_path="pkg://zoo.conf", config_name="config")
def job(cfg: DictConfig) -> float:
    """One job of the ``zoo`` command (the only one, or one of a sweep's): a user error leaves it as one line (zoo.runtime.errors)."""
    try:
        return _job(cfg)
    except Exception as err:
        line = None if _debug() else user_error_line(err, CONFIG_ERRORS)
        if line is None:
            raise
        if HydraConfig.get().mode == RunMode.RUN:  # ended here, before Hydra adds its line with every override in it
            stop("zoo", line)
        raise UserError(line) from None  # a sweep's other jobs still run; one line, picklable, it crosses from a worker process


def _job(cfg: DictConfig) -> float:
    """Run ``cfg``; return its objective on its evaluation split (what an optimising sweeper maximises: a validation score,
    zoo.runner.sweeper_objective)."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    check_sweeper_objective(cfg, HydraConfig.get())
    quiet_other_processes()
    with pool_worker.job(), owning(out_dir) if launch_rank() == 0 else nullcontext():
        if wants_search(cfg):
            set_cpu_threads(cfg.cpu_threads)
            return _report(run_with_rate_search(cfg, out_dir), out_dir)
        if cfg.resume and (done := finished_run(out_dir, cfg)) is not None:
            print(
                f"skipped (done): {done.method} on {done.task}, seed {done.seed}: {_score(done, done.objective_metric)} "
                f"-> {out_dir / 'metrics.json'}"
            )
            return done.objective
        if not cfg.resume:
            refuse_another_run(out_dir, cfg)
        set_cpu_threads(cfg.cpu_threads)
        return _report(run(cfg, out_dir), out_dir)


def _report(record: RunRecord, out_dir: Path) -> float:
    if launch_rank() == 0:
        print(summary(record, out_dir / "metrics.json"))
    return record.objective


def main() -> None:
    """The ``zoo`` command: Hydra's command line; a user error ends it with one line and status 2, a bug with its traceback.

    ``zoo new-method NAME`` writes a plugin repository instead (:mod:`zoo.runner.new_method`).

    ``HYDRA_FULL_ERROR=1`` shows every error's traceback.
    """
    if sys.argv[1:2] == ["new-method"]:
        raise SystemExit(new_method.main(sys.argv[2:]))
    debug = _debug()
    saved = {name: os.environ.get(name) for name in ("HYDRA_FULL_ERROR", TRACEBACKS)}
    # Hydra hands its errors on to run_command instead of printing them with a traceback; the jobs know what the user asked
    os.environ.update({"HYDRA_FULL_ERROR": "1", TRACEBACKS: "1" if debug else "0"})
    try:
        status = run_command("zoo", lambda: job() or 0, debug, CONFIG_ERRORS)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()
