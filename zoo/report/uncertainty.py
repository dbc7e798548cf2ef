"""The uncertainty columns of a report row: the intervals of its scores, its spreads, and the paired test against a reference row.

A row of ``zoo-report`` (zoo.report.table.summarise) is every run of one configuration. Its runs
differ in the run's ``seed`` (initialisation, batch order) and, in the benchmark suite, in
``task.sample_seed`` (which training examples were drawn; zoo.tasks.config). Each spread is
the standard deviation of the row's objective (``RunRecord.objective_metric``): over every run
of the row (``run_std``: the benchmark's paired runs change both seeds together), and over
runs that differ in one seed alone: over seeds at the row's first training sample, and over
training samples at the row's first seed. Every metric that is a mean over evaluation examples
(``MetricSpec.per_example``, zoo.tasks.metric) gets a 95% interval that resamples both
runs and examples (zoo.report.bootstrap), from every run's ``example_scores``; a row whose
runs lack them (records of an older zoo) gets none.

The paired test compares each row's objective with the reference row's (``--reference``: a
method's name, ``lora`` by default) of the same model and task (of the same config where there
are several) on the same evaluation examples, by a test exact for the design
(zoo.report.paired_tests): McNemar's exact test where the objective is 0 or 1 on each example
(``MetricSpec.binary``) and each row has one run, else a paired permutation test of the
per-example differences. Runs pair by seed and training sample (run i of a row with the
reference's run of the same ``seed`` and ``task.sample_seed``); with several pairs each
example's difference is the mean over them. The p-values of one task's rows are adjusted by
Holm's method, and ``reference_test`` says how the row came out: ``differs`` (Holm-adjusted
p < 0.05), ``alike``, or ``unpaired`` (the rows were scored on other evaluation sets, or no run
of the row shares a seed and training sample with one of the reference's: refused, with a
warning). The difference's 95% paired bootstrap interval (zoo.report.bootstrap, every run of
both rows) is its size; each task's minimum detectable difference (zoo.report.power) says how
small a difference its comparisons could find.
"""

from __future__ import annotations

import statistics
import sys

from zoo.report.bootstrap import accuracy_interval, paired_difference
from zoo.report.paired_tests import PairedTest, holm, paired_test
from zoo.report.power import LEVEL, design_minimum_detectable_difference
from zoo.task_kinds import get_metric

TEST_COLUMNS = (
    "reference",
    "vs_reference",
    "vs_reference_low",
    "vs_reference_high",
    "reference_p",
    "reference_p_holm",
    "reference_test",
    "reference_mdd",
)
"""The columns :func:`compare_with_reference` adds to every row: the reference's name, the objective's difference from the
reference row's and its interval, the test's p-value raw and Holm-adjusted over the row's task, its outcome, and the task's
minimum detectable difference."""


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
        print(
            f"zoo-report: {runs[0]['method']} on {runs[0]['task']} gets no {get_metric(metric).label} interval: {err}",
            file=sys.stderr,
        )
        return None, None


def row_uncertainty(runs: list[dict]) -> dict:
    """``<metric>_low``/``<metric>_high`` (95% intervals) of every per-example metric the runs score, and the objective's
    spreads: ``run_std`` over every run, ``seed_std`` and ``sample_std`` over runs that differ in that seed alone."""
    runs = _ordered(runs)
    objective = runs[0]["objective_metric"]
    intervals = {}
    for metric in runs[0]["scores"]:
        if get_metric(metric).per_example:
            intervals[f"{metric}_low"], intervals[f"{metric}_high"] = _interval(runs, metric)
    first_sample, first_seed = min(_sample(r) for r in runs), min(r["seed"] for r in runs)
    return {
        **intervals,
        "run_std": _std([r["scores"][objective] for r in runs]),
        "seed_std": _std([r["scores"][objective] for r in runs if _sample(r) == first_sample]),
        "sample_std": _std([r["scores"][objective] for r in runs if r["seed"] == first_seed]),
    }


def score_cell(r: dict, metric: str) -> str:
    """A row's mean ``metric`` and its 95% interval where the runs recorded it per example, else ± std (the value alone
    for one run); ``-`` where no run of the row scores it."""
    spec, low, high, std = get_metric(metric), r.get(f"{metric}_low"), r.get(f"{metric}_high"), r.get(f"{metric}_std")
    if r.get(metric) is None:
        return spec.cell(None)
    if low is not None:
        return f"{spec.cell(r[metric])} [{spec.cell(low)}, {spec.cell(high)}]"
    return spec.cell(r[metric]) + ("" if std is None else f" ± {spec.cell(std)}")


def seed_spreads(rows: list[dict]) -> bool:
    """Whether a row has a spread over one seed alone (several seeds at a training sample, or several samples at a seed)."""
    return any(r.get("seed_std") is not None or r.get("sample_std") is not None for r in rows)


def _reference(row: dict, rows: list[dict], reference: str) -> int | None:
    """The index of the reference row ``row`` is tested against: same model and task, the same config where several are."""
    candidates = [
        i for i, r in enumerate(rows) if r["method"] == reference and (r["model"], r["task"]) == (row["model"], row["task"])
    ]
    same = [i for i in candidates if rows[i]["config"] == row["config"]]
    return same[0] if same else candidates[0] if len(candidates) == 1 else None


def _matched(mine: list[dict], theirs: list[dict], metric: str) -> tuple[list, list]:
    """The per-example values of ``metric`` of the runs of two rows that share a seed and training sample, pair by pair.

    Raises:
        ValueError: no run of one row shares its seed and training sample with a run of the other.
    """
    by_key = {(r["seed"], _sample(r)): r for r in theirs}
    pairs = [(r, by_key[(r["seed"], _sample(r))]) for r in mine if (r["seed"], _sample(r)) in by_key]
    if not pairs:
        keys = [sorted({(r["seed"], _sample(r)) for r in runs}) for runs in (mine, theirs)]
        raise ValueError(
            f"no run of one row has the seed and training sample of a run of the other ((seed, sample) {keys[0]} "
            f"and {keys[1]}); the paired test pairs run with run"
        )
    return [r["example_scores"][metric] for r, _ in pairs], [t["example_scores"][metric] for _, t in pairs]


def _compare(
    row: dict, members: list[dict], rows: list[dict], runs: list[list[dict]], reference: str
) -> tuple[dict, PairedTest | None]:
    """Row's :data:`TEST_COLUMNS` before the correction over its task, and its test (None: not tested)."""
    columns = {**dict.fromkeys(TEST_COLUMNS), "reference": reference}
    ref, objective = _reference(row, rows, reference), row["objective_metric"]
    mine = _examples(members, objective)
    theirs = _examples(runs[ref], objective) if ref is not None and rows[ref]["objective_metric"] == objective else None
    if row["method"] == reference or mine is None or theirs is None:
        return columns, None
    fingerprints = ({m.get("eval_fingerprint") for m in members}, {m.get("eval_fingerprint") for m in runs[ref]})
    try:
        paired = paired_difference(mine, theirs, fingerprints)
        test = paired_test(*_matched(members, runs[ref], objective), binary=get_metric(objective).binary)
    except ValueError as err:
        print(
            f"zoo-report: {row['method']} ({row['config'] or 'no overrides'}) on {row['task']} is not tested against "
            f"{reference}: {err}",
            file=sys.stderr,
        )
        return {**columns, "reference_test": "unpaired"}, None
    return {
        **columns,
        "vs_reference": paired.difference,
        "vs_reference_low": paired.low,
        "vs_reference_high": paired.high,
        "reference_p": test.p,
    }, test


def compare_with_reference(rows: list[dict], runs: list[list[dict]], reference: str) -> list[dict]:
    """``rows`` with :data:`TEST_COLUMNS`: each row tested against the ``reference`` row, the p-values of a task's rows
    adjusted together (Holm); ``runs[i]`` are row i's runs.

    Rows that cannot be tested (the reference itself, no reference row, runs without per-example scores) get None.
    """
    runs = [_ordered(members) for members in runs]
    compared = [_compare(row, members, rows, runs, reference) for row, members in zip(rows, runs, strict=True)]
    adjusted, detectable = {}, {}
    for task in dict.fromkeys(row["task"] for row in rows):
        family = [i for i, (row, (_, test)) in enumerate(zip(rows, compared)) if row["task"] == task and test is not None]
        adjusted.update(zip(family, holm([compared[i][1].p for i in family])))
        detectable[task] = design_minimum_detectable_difference([compared[i][1] for i in family])
    out = []
    for i, (row, (columns, _)) in enumerate(zip(rows, compared)):
        if i in adjusted:
            columns = {
                **columns,
                "reference_p_holm": adjusted[i],
                "reference_test": "differs" if adjusted[i] < LEVEL else "alike",
            }
        out.append({**row, **columns, "reference_mdd": detectable[row["task"]]})
    return out
