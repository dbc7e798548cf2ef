"""The tuned protocol's search: per method and task, successive halving over the same log-spaced grid, on the validation split.

    python -m benchmarks.tune --profile smoke     # the tiny Llama (CI)
    python -m benchmarks.tune --profile full      # every method on every task of the full profile
    python -m benchmarks.suite --profile full --tuned    # then: default and tuned rows, on the test split

The search space is ``conf/search/<profile>.yaml`` (:mod:`search_space`): for every method that
trains by gradient steps ``trainer.learning_rate_scale`` (a multiplier on its registered rate,
zoo.training.learning_rate) over 6 log-spaced values spanning 2 decades around 1, for the
gradient-free closed-form head its ridge over 6 decades, and a successive-halving schedule
(zoo.training.halving): every value trains for the first rung's share of the task's steps, the
best ``1/eta`` of them again for the next rung's, and so on. Every method runs the same number of
trials. Trials are runs of the ``zoo`` app through Hydra's basic sweeper, with
``task.eval_split=validation`` at the task's first run of the profile's plan (``suite.first_run``)
and neither the forgetting nor the latency passes, into
``<out>/search/<task>/<method>/rung<k>/<trial>``: rung 0 is one ``zoo -m`` per task and group of
methods sharing a grid, each later rung one per method over its survivors. The profiles set
``resume=true``: a search started again (on this machine or, from the committed files, another)
skips the trials that finished, and a rung's survivors follow from the records alone.

Why the basic sweeper with halving rungs rather than Optuna (hydra-optuna-sweeper): with a grid
this small a sampler has nothing to learn, and Optuna's pruners prune inside a trial from
intermediate values the training loop would have to report (an evaluation on validation every
few steps, which costs more than the rung's training on a CPU). Rungs of ordinary runs keep every
trial a resumable record in a folder, run under any Hydra launcher and give the same survivors on
every machine. ``zoo -m hydra/sweeper=optuna`` works for users (docs/learning-rate-search.md).

The choice is the last rung's best by validation score (``RunRecord.objective``: accuracy, or
ROUGE-L F on a generation task) among its trials that did not diverge (``RunRecord.diverged``: a
diverged trial ranks below every other, here and at each promotion); ties (here and at each promotion) go to the smaller change from
the defaults (the sum over the grid's keys of |log(value / default)|), then to the lower learning
rate, then to the earlier value of the grid. The runner-up is the last rung's second; McNemar's
exact test (a permutation test for ROUGE-L) on the two trials' validation answers says whether they
differ beyond the validation noise. Before choosing, every trial's record must show that it read no
``test`` split (``splits_read``): a search that did is refused. Written atomically into
``benchmarks/tuned/<profile>/``: ``<task>.yaml`` (the choices, :mod:`tuned`), ``<task>.search.json``
(every trial, the choice and runner-up with the test, read by the report) and ``<task>.trials.md``.
These validation scores choose; they are never the tuned rows' figures, which ``suite.py --tuned``
measures on the test split.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks.plans import BRIDGED_PROFILES, SEARCH, SEARCH_SETTINGS
from benchmarks.search_space import Grid, SearchSpace, load_space, searched_methods, space_path, trials
from benchmarks.search_trials import Trial, check_no_test, choose, collect, rank, write_search
from benchmarks.stopping import exit_status, stopping_on_signals
from benchmarks.suite import (
    PLANS,
    first_run,
    hydra_value,
    method_selection,
    parse_arguments,
    record_session,
    records_dir,
    resume_from,
    save_records,
    selected,
    unless_set,
    zoo_command,
)
from benchmarks.task_kinds import methods_for, task_kind
from benchmarks.tuned import DEFAULT_DIR

__all__ = [
    "Trial",
    "check_no_test",
    "choose",
    "collect",
    "main",
    "rung_sweeps",
    "rung_trials",
    "search_sweeps",
    "survivors",
    "task_steps",
]


def task_steps(profile: str, task: str) -> int:
    """The training steps of the task's first run: its plan's ``trainer.max_steps``, else the profile's."""
    for override in first_run(PLANS[profile][task]):
        key, _, value = override.partition("=")
        if key == "trainer.max_steps":
            return int(value)
    return int(OmegaConf.load(str(files("zoo.conf").joinpath("benchmark", f"{profile}.yaml"))).trainer.max_steps)


def _command(
    profile: str,
    task: str,
    methods: list[str],
    sweep: list[str],
    steps: int,
    rung: int,
    keys: list[str],
    out: Path,
    extra: list[str],
) -> list[str]:
    trial_dir = ",".join(f"{key}=${{{key}}}" for key in keys)
    return [
        *zoo_command(),
        "-m",
        f"+benchmark={profile}",
        f"method={','.join(methods)}",
        f"task={task}",
        *unless_set(first_run(PLANS[profile][task]), list(SEARCH_SETTINGS.get(task, ()))),
        *SEARCH_SETTINGS.get(task, ()),
        "task.eval_split=validation",
        "save_adapter=false",
        "forgetting.text=none",
        "latency=false",
        *sweep,
        f"trainer.max_steps={steps}",
        f"hydra.sweep.dir={hydra_value(str(out / SEARCH))}",
        f"hydra.sweep.subdir='${{task.name}}/${{hydra:runtime.choices.method}}/rung{rung}/{trial_dir}'",
        *extra,
    ]


def search_sweeps(profile: str, space: SearchSpace, out: Path, extra: list[str]) -> list[list[str]]:
    """The ``zoo -m`` command lines of the first rung: per task, one per group of methods sharing a grid; extra overrides last."""
    commands = []
    for task in PLANS[profile]:
        runnable, steps = set(methods_for(task_kind(task))), space.halving.steps(task_steps(profile, task))[0]
        for methods, grid in space.groups():
            methods = [m for m in methods if m in runnable]
            if methods:
                sweep = [f"{key}={','.join(str(v) for v in values)}" for key, values in grid.items()]
                commands.append(_command(profile, task, methods, sweep, steps, 0, list(grid), out, extra))
    return commands


def rung_sweeps(profile: str, space: SearchSpace, out: Path, extra: list[str], rung: int) -> list[list[str]]:
    """The ``zoo -m`` command lines of rung ``rung`` (>= 1): per task, the methods whose survivors of the rung before
    (:func:`survivors`) are the same values together, one multirun over them where the grid has one key, else one per
    survivor.

    Raises:
        SystemExit: a trial of an earlier rung is missing or read the test split.
    """
    commands = []
    for task in PLANS[profile]:
        runnable, steps = set(methods_for(task_kind(task))), space.halving.steps(task_steps(profile, task))[rung]
        groups: dict[tuple, list[str]] = {}
        for method, grid in space.grids.items():
            if method in runnable:
                kept = survivors(out, task, method, grid, rung, space)
                groups.setdefault((tuple(grid), tuple(sorted(tuple(v.values()) for v in kept))), []).append(method)
        for (keys, kept), methods in groups.items():
            sweeps = (
                [[f"{key}={','.join(str(v[i]) for v in kept)}" for i, key in enumerate(keys)]]
                if len(keys) == 1
                else [[f"{key}={v[i]}" for i, key in enumerate(keys)] for v in kept]
            )
            commands += [_command(profile, task, methods, sweep, steps, rung, list(keys), out, extra) for sweep in sweeps]
    return commands


def survivors(out: Path, task: str, method: str, grid: Grid, rung: int, space: SearchSpace) -> list[dict]:
    """The values rung ``rung`` trains: the whole grid at rung 0, else the best ``sizes[rung]`` of the rung before
    (:func:`search_trials.rank`), best first."""
    if rung == 0:
        return trials(grid)
    before = rung_trials(out, task, method, grid, rung - 1, space)
    keep = space.halving.sizes(len(trials(grid)))[rung]
    return [t.values for t in sorted(before, key=lambda t: rank(t, before))[:keep]]


def rung_trials(out: Path, task: str, method: str, grid: Grid, rung: int, space: SearchSpace) -> list[Trial]:
    """A method's finished trials of ``rung`` (every one it should have), checked never to have read the test split."""
    found = collect(out / SEARCH / task, method, grid, rung, survivors(out, task, method, grid, rung, space))
    check_no_test(found)
    return found


def _run_all(commands: list[list[str]]) -> list[str]:
    failed = []
    for cmd in commands:
        print("tune:", shlex.join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(shlex.join(cmd))
    return failed


def tune_task(
    out: Path, tuned_dir: Path, profile: str, task: str, space: SearchSpace, keep_others: bool = False
) -> dict[str, Trial]:
    """Collect a task's trials of every rung, check they never read test, choose and write the choices (``keep_others``:
    beside those of the methods this search left out); return them."""
    runnable = set(methods_for(task_kind(task)))
    rungs = {
        m: [rung_trials(out, task, m, grid, k, space) for k in range(len(space.halving.fractions))]
        for m, grid in space.grids.items()
        if m in runnable
    }
    return write_search(tuned_dir, profile, task, space, rungs, keep_others)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Other arguments are Hydra overrides, passed to every trial."
    )
    parser.add_argument(
        "--profile", required=True, choices=sorted(PLANS), help="conf/benchmark/<profile>.yaml and conf/search/<profile>.yaml"
    )
    parser.add_argument(
        "--out", type=Path, help="the suite's sweep folder; trials go to <out>/search (default: multirun/benchmark-<profile>)"
    )
    parser.add_argument("--tuned-dir", type=Path, help="folder of the chosen values (default: benchmarks/tuned/<profile>)")
    parser.add_argument("--records", type=Path, help="the record set the trials are kept in (as suite.py's)")
    parser.add_argument("--methods", metavar="M1,M2", help="search only these of zoo's methods (default: every one searched)")
    args, extra, out = parse_arguments(parser, argv)
    only = method_selection(args.methods)
    records = records_dir(args.profile, out, args.records)
    resume_from(records, out, args.profile)
    searched = searched_methods(bridged=args.profile in BRIDGED_PROFILES)
    space = load_space(space_path(args.profile), [m for m in searched if selected(m, only)])
    tuned_dir = args.tuned_dir or DEFAULT_DIR / args.profile
    failed, start = [], time.perf_counter()
    with stopping_on_signals():  # SIGTERM too runs the finally block: what finished is kept
        try:
            for rung in range(len(space.halving.fractions)):
                failed = _run_all(
                    rung_sweeps(args.profile, space, out, extra, rung) if rung else search_sweeps(args.profile, space, out, extra)
                )
                if failed:
                    break
        finally:  # an interrupted search's time counts too: the suite's wall time in RESULTS.md includes the search's
            record_session(
                out,
                shlex.join(["python", "-m", "benchmarks.tune", *(argv if argv is not None else sys.argv[1:])]),
                args.profile,
                time.perf_counter() - start,
            )
            save_records(records, out, args.profile)
    if failed:
        print(
            "tune: these searches failed (the trials that finished are kept; fix and run the same command again):",
            *failed,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    for task in PLANS[args.profile]:
        chosen = tune_task(out, tuned_dir, args.profile, task, space, keep_others=only is not None)
        print(f"tune: {task}: " + "; ".join(f"{m} {t.name} ({t.score:.3f})" for m, t in sorted(chosen.items())))
    print(f"tune: wrote {tuned_dir}; next: python -m benchmarks.suite --profile {args.profile} --tuned --tuned-dir {tuned_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(exit_status(main, "tune"))
