"""The ``zoo`` command: one Hydra run (or a sweep with ``-m``) of a method or a baseline on a task.

A run (:func:`zoo.runner.pipeline.run`) loads the data and the base model, scores the untrained
baselines the task allows on the base model (zero-shot; in-context with demonstrations),
wraps the model with the method, trains it (or fits it, for gradient-free methods) with the
task's formulation (prompt or head), evaluates, times inference against the base model, and
writes ``metrics.json`` (a :class:`~zoo.io.records.RunRecord`), ``flips.jsonl``, the adapter and
the head into its output folder. ``baseline=<name>`` runs a registered baseline
(zoo.runner.baselines) instead of the method. The base model's predictions are cached across runs
(``predictions_cache``); ``resume=true`` skips a run whose folder holds its finished record.
``trainer.learning_rate=auto`` searches the method's rate on the validation split first
(zoo.runner.rate_search). ``zoo`` returns the run's objective on its evaluation split; under a
sweeper that optimises it, that split must be validation (zoo.runner.sweeper_objective).
"""
from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from zoo.io.records import RunRecord
from zoo.runner.config import store_configs
from zoo.runner.pipeline import run
from zoo.runner.rate_search import run_with_rate_search, wants_search
from zoo.runner.resume import finished_run, refuse_another_run
from zoo.runner.sweeper_objective import check_sweeper_objective
from zoo.runtime.cpu_threads import set_cpu_threads
from zoo.runtime.distributed import launch_rank, quiet_other_processes
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
    untrained = ", ".join(f"{name.replace('_', '-')} {get_metric(objective).cell(s.get(objective))}"
                          for name, s in record.baseline_scores.items()) or "zero-shot n/a"
    others = "".join(f", {_score(record, name)}" for name in record.scores if name != objective)
    diverged = f" (diverged: {record.divergence})" if record.diverged else ""
    return (f"{record.method} ({record.formulation}): {_score(record, objective)} ({untrained}){others}, "
            f"{record.trainable_params:,} trainable ({record.trainable_percent:.2f}% of the base model's {record.base_params:,}), "
            f"{record.train_seconds:.1f}s{diverged} -> {path}")


store_configs()


@hydra.main(version_base=None, config_path="pkg://zoo.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run ``cfg``; return its objective on its evaluation split (what an optimising sweeper maximises: a validation score,
    zoo.runner.sweeper_objective)."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    check_sweeper_objective(cfg, HydraConfig.get())
    quiet_other_processes()
    if wants_search(cfg):
        set_cpu_threads(cfg.cpu_threads)
        return _report(run_with_rate_search(cfg, out_dir), out_dir)
    if cfg.resume and (done := finished_run(out_dir, cfg)) is not None:
        print(f"skipped (done): {done.method} on {done.task}, seed {done.seed}: {_score(done, done.objective_metric)} "
              f"-> {out_dir / 'metrics.json'}")
        return done.objective
    if not cfg.resume:
        refuse_another_run(out_dir, cfg)
    set_cpu_threads(cfg.cpu_threads)
    return _report(run(cfg, out_dir), out_dir)


def _report(record: RunRecord, out_dir: Path) -> float:
    if launch_rank() == 0:
        print(summary(record, out_dir / "metrics.json"))
    return record.objective


if __name__ == "__main__":
    main()
