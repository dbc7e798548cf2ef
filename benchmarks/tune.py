"""The tuned protocol's search: per method and task, the best of an equal number of trials on the validation split.

    python -m benchmarks.tune --profile smoke     # 2 trials per method (seconds; CI)
    python -m benchmarks.tune --profile full      # 2 trials per method and task
    python -m benchmarks.suite --profile full --tuned    # then: default and tuned rows, on the test split

The search space is ``conf/search/<profile>.yaml`` (:mod:`search_space`): a learning-rate grid
(``trainer.learning_rate_scale``, a multiplier on each method's own rate, zoo.training.learning_rate)
for every method, and for the methods a size knob matters to, a grid of rate and knob of the
same size. Every trial is a run of the ``zoo`` app through Hydra's basic sweeper: one
``zoo -m`` per task and group of methods sharing a grid, with ``task.eval_split=validation``
at the task's first run of the profile's plan (its seed and settings: ``suite.first_run``) and
neither the forgetting nor the latency passes (``forgetting.text=none latency=false``: a trial is
scored on its validation score alone), into
``<out>/search/<task>/<method>/<trial>``. The
profiles set ``resume=true``: a search started again skips the trials that finished.

Per method and task the chosen trial is the one of best validation score (``RunRecord.objective``, the task kind's
objective: accuracy, or ROUGE-L F on a generation task, whose exact match is 0 for nearly every trial); ties go to the
smaller change from the defaults (the sum over the grid's keys of |log(value / default)|, a
default being the schema's: scale 1, the method config's field default), then to the lower
learning rate, then to the earlier trial of the grid. Before choosing, every trial's record must
show that it read no ``test`` split (``splits_read``): a search that did is refused. The choices go to
``benchmarks/tuned/<profile>/<task>.yaml`` (:mod:`tuned`), atomically, and every trial's
validation score to ``<task>.trials.md`` beside it. These validation scores choose; they
are never the tuned rows' figures, which ``suite.py --tuned`` measures on the test split.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks.results_md import SEARCH
from benchmarks.search_space import Grid, SearchSpace, load_space, space_path, trials
from benchmarks.suite import PLANS, first_run, hydra_value, parse_arguments, record_session, zoo_command
from benchmarks.task_kinds import methods_for, task_kind
from benchmarks.tuned import DEFAULT_DIR, change, tuned_path, write_tuned
from zoo.io.records import RunRecord, UnusableRecord
from zoo.runtime.atomic import write_text
from zoo.task_kinds import get_task_kind


@dataclass(frozen=True)
class Trial:
    method: str
    values: dict
    """The grid's key -> the value this trial ran with."""
    folder: Path
    score: float
    """On the validation split: ``RunRecord.objective`` (the task kind's objective: accuracy; ROUGE-L F on a generation task)."""
    learning_rate: float | None
    splits_read: list[str]

    @property
    def name(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items())


def search_sweeps(profile: str, space: SearchSpace, out: Path, extra: list[str]) -> list[list[str]]:
    """The ``zoo -m`` command lines of a search: per task, one per group of methods sharing a grid; extra overrides last."""
    commands = []
    for task, seed_sweeps in PLANS[profile].items():
        runnable = set(methods_for(task_kind(task)))
        for methods, grid in space.groups():
            methods = [m for m in methods if m in runnable]
            if not methods:
                continue
            trial_dir = ",".join(f"{key}=${{{key}}}" for key in grid)
            commands.append([*zoo_command(), "-m", f"+benchmark={profile}", f"method={','.join(methods)}", f"task={task}",
                             *first_run(seed_sweeps), "task.eval_split=validation", "save_adapter=false", "forgetting.text=none",
                             "latency=false",
                             *(f"{key}={','.join(str(v) for v in values)}" for key, values in grid.items()),
                             f"hydra.sweep.dir={hydra_value(str(out / SEARCH))}",
                             f"hydra.sweep.subdir='${{task.name}}/${{hydra:runtime.choices.method}}/{trial_dir}'", *extra])
    return commands


def collect(task_dir: Path, method: str, grid: Grid) -> list[Trial]:
    """The method's finished trials of ``grid`` under ``task_dir`` (folders of other grids, from an earlier space, are left out).

    Raises:
        SystemExit: a trial of the grid without a readable record.
    """
    found = []
    for path in sorted((task_dir / method).glob("*/metrics.json")):
        if [part.partition("=")[0] for part in path.parent.name.split(",")] != list(grid):
            continue  # a trial of another grid's keys (search_sweeps names a folder by its grid's keys, in order)
        config = OmegaConf.load(path.parent / ".hydra" / "config.yaml")
        values = {key: OmegaConf.select(config, key) for key in grid}
        try:
            record = RunRecord.read(path)
        except UnusableRecord as err:
            raise SystemExit(f"tune: {err}; run the search again") from None
        found.append(Trial(method, values, path.parent, record.objective, record.learning_rate, record.splits_read))
    wanted = trials(grid)
    kept = [t for t in found if t.values in wanted]
    missing = [w for w in wanted if w not in [t.values for t in kept]]
    if missing:
        raise SystemExit(f"tune: {method} on {task_dir.name} has no finished trial for {missing} under {task_dir / method}; "
                         f"run the search again")
    return sorted(kept, key=lambda t: wanted.index(t.values))


def check_no_test(found: list[Trial]) -> None:
    """Refuse a search whose trials read the test split (chosen on it, the tuned rows' test scores would be optimistic)."""
    read_test = [f"{t.method} {t.name} ({t.folder})" for t in found if "test" in t.splits_read]
    if read_test:
        raise SystemExit("tune: these trials read the test split, which a search must never see (task.eval_split must be "
                         "validation):\n  " + "\n  ".join(read_test))


def choose(found: list[Trial]) -> Trial:
    """The best validation score; ties: the smaller change from the defaults, then the lower learning rate, then the
    earlier trial of ``found`` (the grid's order: values listed smallest first give the smaller model)."""
    return min(found, key=lambda t: (-t.score, change(t.method, t.values),
                                     t.learning_rate if t.learning_rate is not None else 0.0, found.index(t)))


def trials_table(task: str, profile: str, by_method: dict[str, list[Trial]], chosen: dict[str, Trial]) -> str:
    lines = [f"# Search trials: {task} ({profile} profile)", "",
             "Written by `python -m benchmarks.tune`; regenerate, never edit. Validation score of every trial "
             f"({get_task_kind(task_kind(task)).objective.label}; task.eval_split=validation), the same number of trials per "
             "method. The chosen trial (bold) has the best; "
             "ties go to the smaller change from the defaults (sum of |log(value / default)|), then to the lower learning "
             "rate, then to the earlier trial of the grid. Not test figures: the tuned rows of RESULTS.md are measured on the "
             "test split.", "",
             "| method | trial | learning rate | validation score |", "|---|---|---|---|"]
    for method, found in sorted(by_method.items()):
        for t in found:
            bold = "**" if t is chosen[method] else ""
            rate = "-" if t.learning_rate is None else f"{t.learning_rate:.3g}"
            lines.append(f"| {method} | {bold}{t.name}{bold} | {rate} | {bold}{t.score:.3f}{bold} |")
    return "\n".join(lines) + "\n"


def tune_task(out: Path, tuned_dir: Path, profile: str, task: str, space: SearchSpace) -> dict[str, Trial]:
    """Collect a task's trials, check they never read test, choose and write the choices; return them."""
    runnable = set(methods_for(task_kind(task)))
    by_method = {m: collect(out / SEARCH / task, m, grid) for m, grid in space.grids.items() if m in runnable}
    check_no_test([t for found in by_method.values() for t in found])
    chosen = {m: choose(found) for m, found in by_method.items()}
    path = tuned_path(tuned_dir, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tuned(path, {m: t.values for m, t in chosen.items()},
                f"Chosen by `python -m benchmarks.tune --profile {profile}` on {task}'s validation split, {space.trials} trials\n"
                f"per method ({space.path.name} in conf/search/); the trials: {path.stem}.trials.md. Regenerate, never edit.\n"
                f"Read by `python -m benchmarks.suite --profile {profile} --tuned`: each method's tuned row runs with these\n"
                f"overrides.")
    write_text(path.with_name(f"{task}.trials.md"), trials_table(task, profile, by_method, chosen))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Other arguments are Hydra overrides, passed to every trial.")
    parser.add_argument("--profile", required=True, choices=sorted(PLANS),
                        help="conf/benchmark/<profile>.yaml and conf/search/<profile>.yaml")
    parser.add_argument("--out", type=Path,
                        help="the suite's sweep folder; trials go to <out>/search (default: multirun/benchmark-<profile>)")
    parser.add_argument("--tuned-dir", type=Path, help="folder of the chosen values (default: benchmarks/tuned/<profile>)")
    args, extra, out = parse_arguments(parser, argv)
    space = load_space(space_path(args.profile))
    tuned_dir = args.tuned_dir or DEFAULT_DIR / args.profile
    failed, start = [], time.perf_counter()
    try:
        for cmd in search_sweeps(args.profile, space, out, extra):
            print("tune:", shlex.join(cmd), flush=True)
            if subprocess.run(cmd).returncode != 0:
                failed.append(shlex.join(cmd))
    finally:  # an interrupted search's time counts too: the suite's wall time in RESULTS.md includes the search's
        record_session(out, shlex.join(["python", "-m", "benchmarks.tune", *(argv if argv is not None else sys.argv[1:])]),
                       args.profile, time.perf_counter() - start)
    if failed:
        print("tune: these searches failed (the trials that finished are kept; fix and run the same command again):",
              *failed, sep="\n  ", file=sys.stderr)
        return 1
    for task in PLANS[args.profile]:
        chosen = tune_task(out, tuned_dir, args.profile, task, space)
        print(f"tune: {task}: " + "; ".join(f"{m} {t.name} ({t.score:.3f})" for m, t in sorted(chosen.items())))
    print(f"tune: wrote {tuned_dir}; next: python -m benchmarks.suite --profile {args.profile} --tuned --tuned-dir {tuned_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
