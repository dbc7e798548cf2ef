"""The "What this table supports" section that opens RESULTS.md: the questions a reader brings, each answered with an interval.

Per task, at tuned settings (the tuned rows where the suite ran them, else the default rows), four
comparisons: GIFT against LoRA (the GIFT paper, Savadikar et al. 2023, claims GIFT matches or beats
LoRA with far fewer parameters), the best prompt-based row against the best head-based one (a
classification head on the last hidden state: the linear probe, or a method in the head
formulation), the closed-form head against the linear probe, and full fine-tuning against the best
PEFT method. Each is the difference of the two rows' objectives on the same evaluation examples,
its 95% paired bootstrap interval and the exact paired test of ``zoo.report.table`` (McNemar's exact
test for one run a row, else the paired permutation test), the p-values Holm-adjusted over the
task's comparisons. A comparison whose adjusted p is not below 0.05 is said to be undecided at
this size, with the smallest difference the comparison could have found (80% power).
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.report.paired_tests import holm
from zoo.report.power import LEVEL
from zoo.report.table import summarise
from zoo.task_kinds import get_metric

TUNED = " (tuned)"
HEAD_FORMULATION = "head"
FULL = "full_finetune"
Rows = dict[str, list[dict]]
"""A task's runs by row name."""


def _named(name: str) -> Callable[[Rows, str], str | None]:
    def pick(rows: Rows, suffix: str) -> str | None:
        return next((row for row in (f"{name}{suffix}", name) if row in rows), None)

    return pick


def _best(keep: Callable[[str, list[dict]], bool]) -> Callable[[Rows, str], str | None]:
    """The best-scoring row among those ``keep`` accepts, tuned rows only where there are tuned rows."""

    def pick(rows: Rows, suffix: str) -> str | None:
        tuned = any(name.endswith(TUNED) for name in rows)
        candidates = [
            name for name, runs in rows.items() if keep(name, runs) and (not tuned or name.endswith(TUNED) or runs[0]["baseline"])
        ]
        return max(candidates, key=lambda name: _score(rows[name]), default=None)

    return pick


def _score(runs: list[dict]) -> float:
    value = sum(r["scores"][r["objective_metric"]] for r in runs) / len(runs)
    return value if get_metric(runs[0]["objective_metric"]).higher_is_better else -value


def _trained(runs: list[dict]) -> bool:
    return bool(runs[0]["train_steps"]) or bool(runs[0]["trainable_params"])


QUESTIONS = [
    ("GIFT against LoRA", _named("gift"), _named("lora")),
    (
        "prompt-based against head-based classification",
        _best(lambda name, runs: _trained(runs) and runs[0]["formulation"] != HEAD_FORMULATION),
        _best(lambda name, runs: _trained(runs) and runs[0]["formulation"] == HEAD_FORMULATION),
    ),
    ("the closed-form head against the linear probe", _named("closed_form_head"), _named("linear_probe")),
    (
        "full fine-tuning against the best PEFT method",
        _named(FULL),
        _best(lambda name, runs: not runs[0]["baseline"] and not name.startswith(FULL)),
    ),
]
"""Each question: its words, the row it asks about and the row it compares with, each chosen from a task's rows."""


def _compare(rows: Rows, a: str, b: str) -> dict | None:
    """Row ``a`` against row ``b``: the difference, its interval, the raw p-value and the comparison's detectable size."""
    (row,) = [r for r in summarise(rows[a] + rows[b], reference=b) if r["method"] == a]
    if row.get("vs_reference") is None or row.get("reference_p") is None:
        return None
    return {
        "a": a,
        "b": b,
        "difference": row["vs_reference"],
        "low": row["vs_reference_low"],
        "high": row["vs_reference_high"],
        "p": row["reference_p"],
        "mdd": row["reference_mdd"],
        "metric": row["objective_metric"],
    }


def task_findings(runs: list[dict]) -> list[tuple[str, dict | None]]:
    """One task's answers to :data:`QUESTIONS`, in order, their p-values Holm-adjusted together (``p_holm``); None where the
    task lacks a row the question needs or the two rows cannot be paired."""
    rows: Rows = {}
    for r in runs:
        rows.setdefault(r["method"], []).append(r)
    suffix = TUNED if any(name.endswith(TUNED) for name in rows) else ""
    answers = []
    for question, first, second in QUESTIONS:
        a, b = first(rows, suffix), second(rows, suffix)
        answers.append((question, _compare(rows, a, b) if a and b and a != b else None))
    tested = [i for i, (_, found) in enumerate(answers) if found is not None]
    for i, p in zip(tested, holm([answers[i][1]["p"] for i in tested])):
        answers[i][1]["p_holm"] = p
    return answers


def statement(question: str, found: dict | None) -> str:
    """One finding in words, with the interval behind it."""
    if found is None:
        return f"- *{question}*: not answered here (the task lacks one of the two rows, or they were not scored on the same examples)."
    metric = get_metric(found["metric"])
    d, low, high = (format(found[k], "+" + metric.format) for k in ("difference", "low", "high"))
    measured = (
        f"{found['a']} minus {found['b']}: {d} {metric.label} [95% CI {low}, {high}], Holm-adjusted p = {found['p_holm']:.3g}"
    )
    if found["p_holm"] < LEVEL:
        better = found["a"] if (found["difference"] > 0) == metric.higher_is_better else found["b"]
        return f"- *{question}*: {better} scores higher. {measured}."
    detectable = f"; this comparison detects {metric.cell(found['mdd'])} with 80% power" if found.get("mdd") is not None else ""
    return f"- *{question}*: undecided at this size. {measured}{detectable}."


def section(runs: list[dict]) -> list[str]:
    """The markdown of the section: per task (best objective first among its rows), its statements."""
    lines = [
        "## What this table supports",
        "",
        "At tuned settings (the tuned rows; the default rows where a task has none). Each statement: the difference of "
        "the two rows on the same evaluation examples, its 95% paired bootstrap interval and the exact paired test, "
        "Holm-adjusted over the task's four comparisons; *undecided*: not shown to differ at the 5% level.",
        "",
    ]
    for task in sorted({r["task"] for r in runs}):
        task_runs = [r for r in runs if r["task"] == task]
        lines += [f"**{task}**", "", *(statement(q, found) for q, found in task_findings(task_runs)), ""]
    return lines
