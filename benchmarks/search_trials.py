"""A search's trials read back from their run folders, the tie rule that ranks them, and the files the choice is written to.

``benchmarks/tune.py`` runs the trials; this module reads each trial's record
(``<out>/search/<task>/<method>/rung<k>/<trial>/metrics.json``), ranks a rung's trials (best
validation score; ties: the smaller change from the defaults, then the lower learning rate, then
the earlier value of the grid), and writes what the search chose into ``benchmarks/tuned/<profile>/``:
``<task>.yaml`` (method -> chosen overrides, read by ``suite.py --tuned``), ``<task>.search.json``
(every trial, the choice, the runner-up and the paired test between them on the validation answers,
read by RESULTS.md) and ``<task>.trials.md`` (the same, for a reader).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks.search_space import Grid, SearchSpace
from benchmarks.tuned import change, tuned_path, write_tuned
from zoo.io.records import RunRecord, UnusableRecord
from zoo.report.paired_tests import paired_test
from zoo.runtime.atomic import write_text
from zoo.task_kinds import get_metric

NOISE_LEVEL = 0.05
"""The level at which the choice and the runner-up "differ beyond the validation noise"."""


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
    rung: int = 0
    steps: int = 0
    metric: str = "accuracy"
    answers: tuple[float, ...] | None = None
    """The objective's value on each validation example (``example_scores``), for the paired test against the runner-up."""
    diverged: bool = False
    """The run's own divergence check fired (``RunRecord.diverged``): its score is a broken model's."""

    @property
    def name(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items())


def _read(path: Path, method: str, grid: Grid, rung: int) -> Trial:
    config = OmegaConf.load(path.parent / ".hydra" / "config.yaml")
    try:
        record = RunRecord.read(path)
    except UnusableRecord as err:
        raise SystemExit(f"tune: {err}; run the search again") from None
    answers = record.example_scores.get(record.objective_metric)
    return Trial(
        method,
        {key: OmegaConf.select(config, key) for key in grid},
        path.parent,
        record.objective,
        record.learning_rate,
        record.splits_read,
        rung,
        record.train_steps,
        record.objective_metric,
        tuple(answers) if answers is not None else None,
        record.diverged,
    )


def collect(task_dir: Path, method: str, grid: Grid, rung: int, wanted: list[dict]) -> list[Trial]:
    """The method's finished trials of ``rung`` under ``task_dir`` whose values are ``wanted``, in that order (folders of
    other grids, from an earlier space, are left out).

    Raises:
        SystemExit: a wanted trial without a readable record.
    """
    found = []
    for path in sorted((task_dir / method / f"rung{rung}").glob("*/metrics.json")):
        if [part.partition("=")[0] for part in path.parent.name.split(",")] == list(
            grid
        ):  # tune names a folder by its grid's keys
            found.append(_read(path, method, grid, rung))
    kept = [t for t in found if t.values in wanted]
    missing = [w for w in wanted if w not in [t.values for t in kept]]
    if missing:
        raise SystemExit(
            f"tune: {method} on {task_dir.name} has no finished trial for {missing} under "
            f"{task_dir / method / f'rung{rung}'}; run the search again"
        )
    return sorted(kept, key=lambda t: wanted.index(t.values))


def check_no_test(found: list[Trial]) -> None:
    """Refuse a search whose trials read the test split (chosen on it, the tuned rows' test scores would be optimistic)."""
    read_test = [f"{t.method} {t.name} ({t.folder})" for t in found if "test" in t.splits_read]
    if read_test:
        raise SystemExit(
            "tune: these trials read the test split, which a search must never see (task.eval_split must be "
            "validation):\n  " + "\n  ".join(read_test)
        )


def rank(t: Trial, found: list[Trial]) -> tuple:
    """``t``'s place among ``found`` (smaller is better): a trial that diverged after every one that did not, whatever its
    score; then the best validation score; ties: the smaller change from the defaults, then the lower learning rate, then
    the earlier trial of ``found`` (the grid's order)."""
    rate = t.learning_rate if t.learning_rate is not None else 0.0
    return (t.diverged, -t.score, change(t.method, t.values), rate, found.index(t))


def choose(found: list[Trial]) -> Trial:
    """The best of ``found`` by :func:`rank`."""
    return min(found, key=lambda t: rank(t, found))


def runner_up(found: list[Trial]) -> dict | None:
    """The second of ``found`` by :func:`rank`, and whether the best differs from it beyond the validation noise: McNemar's
    exact test on their validation answers (a paired permutation test where the objective is not 0 or 1 per example)."""
    ordered = sorted(found, key=lambda t: rank(t, found))
    if len(ordered) < 2:
        return None
    best, second = ordered[:2]
    entry = {"values": second.values, "score": second.score, "p": None, "differs": None}
    if best.answers is not None and second.answers is not None and len(best.answers) == len(second.answers):
        test = paired_test([list(best.answers)], [list(second.answers)], binary=get_metric(best.metric).binary)
        entry.update(test=test.test, p=test.p, differs=test.p < NOISE_LEVEL)
    return entry


def _trial_entry(t: Trial) -> dict:
    entry = {"rung": t.rung, "steps": t.steps, "values": t.values, "learning_rate": t.learning_rate, "score": t.score}
    return {**entry, "diverged": True} if t.diverged else entry


def search_summary(profile: str, task: str, space: SearchSpace, rungs: dict[str, list[list[Trial]]]) -> dict:
    """What ``<task>.search.json`` holds: the schedule, and per method every trial, the choice and the runner-up."""
    methods = {}
    for method, by_rung in sorted(rungs.items()):
        chosen = choose(by_rung[-1])
        methods[method] = {
            "trials": [_trial_entry(t) for found in by_rung for t in found],
            "chosen": chosen.values,
            "chosen_score": chosen.score,
            "runner_up": runner_up(by_rung[-1]),
        }
    first = next(iter(rungs.values()))[-1][0]
    return {
        "profile": profile,
        "task": task,
        "split": "validation",
        "objective": first.metric,
        "halving": {"eta": space.halving.eta, "fractions": list(space.halving.fractions)},
        "trials_per_method": space.trials,
        "methods": methods,
    }


def trials_table(summary: dict) -> str:
    lines = [
        f"# Search trials: {summary['task']} ({summary['profile']} profile)",
        "",
        "Written by `python -m benchmarks.tune`; regenerate, never edit. Validation score of every trial "
        f"({get_metric(summary['objective']).label}; task.eval_split=validation), successive halving "
        f"(eta {summary['halving']['eta']}, rungs at {summary['halving']['fractions']} of the steps), "
        f"{summary['trials_per_method']} trials per method. The chosen trial (bold) is the last rung's best that did not "
        "diverge (*diverged*: the run's own divergence check fired; such a trial ranks below every other); ties go to the smaller change from the defaults (sum of |log(value / default)|), then to the lower learning "
        "rate, then to the earlier trial of the grid. *runner-up p*: McNemar's exact test (permutation test for a score "
        "that is not 0 or 1 per example) of the choice against the last rung's second on the validation answers. Not test "
        "figures: the tuned rows of RESULTS.md are measured on the test split.",
        "",
        "| method | rung | steps | trial | learning rate | validation score | runner-up p |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, entry in summary["methods"].items():
        last = max(t["rung"] for t in entry["trials"])
        for t in entry["trials"]:
            bold = "**" if t["rung"] == last and t["values"] == entry["chosen"] else ""
            name = " ".join(f"{k}={v}" for k, v in t["values"].items())
            rate = "-" if t["learning_rate"] is None else f"{t['learning_rate']:.3g}"
            up = entry["runner_up"]
            p = f"{up['p']:.3f}" if bold and up and up["p"] is not None else ""
            score = f"{bold}{t['score']:.3f}{bold}" + (" diverged" if t.get("diverged") else "")
            lines.append(f"| {method} | {t['rung']} | {t['steps']} | {bold}{name}{bold} | {rate} | {score} | {p} |")
    return "\n".join(lines) + "\n"


def write_search(
    tuned_dir: Path,
    profile: str,
    task: str,
    space: SearchSpace,
    rungs: dict[str, list[list[Trial]]],
    keep_others: bool = False,
) -> dict[str, Trial]:
    """Write a task's choices, its search summary and its trials table; return the chosen trials.

    ``keep_others`` (a search of some methods, ``tune.py --methods``): the other methods' entries of the summary already
    written, under the same schedule, stay in all three files; without it the files hold ``rungs``' methods alone.
    """
    chosen = {m: choose(by_rung[-1]) for m, by_rung in rungs.items()}
    path = tuned_path(tuned_dir, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = search_summary(profile, task, space, rungs)
    before = path.with_name(f"{task}.search.json")
    if keep_others and before.is_file():
        kept = json.loads(before.read_text())
        if {k: v for k, v in kept.items() if k != "methods"} == {k: v for k, v in summary.items() if k != "methods"}:
            summary["methods"] = dict(sorted({**kept["methods"], **summary["methods"]}.items()))
    write_tuned(
        path,
        {m: entry["chosen"] for m, entry in summary["methods"].items()},
        f"Chosen by `python -m benchmarks.tune --profile {profile}` on {task}'s validation split, {space.trials} trials\n"
        f"per method by successive halving ({space.path.name} in conf/search/); the trials: {path.stem}.search.json and\n"
        f"{path.stem}.trials.md. Regenerate, never edit.\n"
        f"Read by `python -m benchmarks.suite --profile {profile} --tuned`: each method's tuned row runs with these\n"
        f"overrides.",
    )
    write_text(before, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    write_text(path.with_name(f"{task}.trials.md"), trials_table(summary))
    return chosen
