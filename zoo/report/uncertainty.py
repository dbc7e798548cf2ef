"""The uncertainty columns of a report row: the intervals of its scores, the two spreads, and the paired test against a reference row.

A row of ``zoo-report`` (zoo.report.table.summarise) is every run of one configuration. Its runs
differ in the run's ``seed`` (initialisation, batch order) and, in the benchmark suite, in
``task.sample_seed`` (which training examples were drawn; zoo.tasks.config). Each spread is
the standard deviation of the row's objective (``RunRecord.objective_metric``) over runs that
differ in that one seed alone: over seeds at the row's first training sample, and over
training samples at the row's first seed. Every metric that is a mean over evaluation examples
(``MetricSpec.per_example``, zoo.tasks.metric) gets a 95% interval that resamples both
runs and examples (zoo.report.bootstrap), from every run's ``example_scores``; a row whose
runs lack them (records of an older zoo) gets none.

The paired test compares each row's objective with the reference row's (``--reference``: a
method's name, ``lora`` by default) of the same model and task (of the same config where there
are several) on the same evaluation examples. ``reference_test`` says how it came out:
``differs`` (the 95% interval of the difference excludes 0), ``alike``, or ``unpaired`` (the
rows were scored on other evaluation sets: refused, with a warning).
"""
from __future__ import annotations

import statistics
import sys

from zoo.report.bootstrap import accuracy_interval, paired_difference
from zoo.task_kinds import get_metric

TEST_COLUMNS = ("vs_reference", "vs_reference_low", "vs_reference_high", "reference_test")
"""The columns :func:`compare_with_reference` adds to every row."""


def _sample(run: dict) -> int:
    """The seed a run's training sample was drawn with: its ``task.sample_seed``, else its data seed."""
    task = run.get("task_config") or {}
    return task["sample_seed"] if task.get("sample_seed") is not None else task.get("seed", 0)


def _ordered(runs: list[dict]) -> list[dict]:
    """``runs`` by seed and training sample: the bootstrap draws by position, so the same runs give the same digits in any order."""
    return sorted(runs, key=lambda r: (r["seed"], _sample(r)))


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _examples(runs: list[dict], metric: str) -> list | None:
    """Every run's per-example values of ``metric``, or None where a run lacks them."""
    values = [(r.get("example_scores") or {}).get(metric) for r in runs]
    return None if None in values else values


def _interval(runs: list[dict], metric: str) -> tuple[float | None, float | None]:
    """The 95% interval of the mean of ``metric`` over runs and examples (runs in :func:`_ordered` order), or ``(None, None)``."""
    values = _examples(runs, metric)
    if values is None:
        return None, None
    try:
        return accuracy_interval(values)
    except ValueError as err:
        print(f"zoo-report: {runs[0]['method']} on {runs[0]['task']} gets no {get_metric(metric).label} interval: {err}", file=sys.stderr)
        return None, None


def row_uncertainty(runs: list[dict]) -> dict:
    """``<metric>_low``/``<metric>_high`` (95% intervals) of every per-example metric the runs score, and the objective's
    two spreads, ``seed_std`` and ``sample_std``."""
    runs = _ordered(runs)
    objective = runs[0]["objective_metric"]
    intervals = {}
    for metric in runs[0]["scores"]:
        if get_metric(metric).per_example:
            intervals[f"{metric}_low"], intervals[f"{metric}_high"] = _interval(runs, metric)
    first_sample, first_seed = min(_sample(r) for r in runs), min(r["seed"] for r in runs)
    return {
        **intervals,
        "seed_std": _std([r["scores"][objective] for r in runs if _sample(r) == first_sample]),
        "sample_std": _std([r["scores"][objective] for r in runs if r["seed"] == first_seed]),
    }


def _reference(row: dict, rows: list[dict], reference: str) -> int | None:
    """The index of the reference row ``row`` is tested against: same model and task, the same config where several are."""
    candidates = [i for i, r in enumerate(rows) if r["method"] == reference and (r["model"], r["task"]) == (row["model"], row["task"])]
    same = [i for i in candidates if rows[i]["config"] == row["config"]]
    return same[0] if same else candidates[0] if len(candidates) == 1 else None


def compare_with_reference(rows: list[dict], runs: list[list[dict]], reference: str) -> list[dict]:
    """``rows`` with :data:`TEST_COLUMNS`: the objective minus the ``reference`` row's, its interval and the test's outcome;
    ``runs[i]`` are row i's runs.

    Rows that cannot be tested (the reference itself, no reference row, runs without per-example scores) get None.
    """
    out = []
    runs = [_ordered(members) for members in runs]
    for row, members in zip(rows, runs, strict=True):
        test = dict.fromkeys(TEST_COLUMNS)
        ref, objective = _reference(row, rows, reference), row["objective_metric"]
        mine = _examples(members, objective)
        theirs = _examples(runs[ref], objective) if ref is not None and rows[ref]["objective_metric"] == objective else None
        if row["method"] != reference and mine is not None and theirs is not None:
            fingerprints = ({m.get("eval_fingerprint") for m in members}, {m.get("eval_fingerprint") for m in runs[ref]})
            try:
                paired = paired_difference(mine, theirs, fingerprints)
            except ValueError as err:
                print(f"zoo-report: {row['method']} ({row['config'] or 'no overrides'}) on {row['task']} is not tested against "
                      f"{reference}: {err}", file=sys.stderr)
                test["reference_test"] = "unpaired"
            else:
                test = {"vs_reference": paired.difference, "vs_reference_low": paired.low, "vs_reference_high": paired.high,
                        "reference_test": "differs" if paired.distinguishable else "alike"}
        out.append({**row, **test})
    return out
