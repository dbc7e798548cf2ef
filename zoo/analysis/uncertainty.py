"""The uncertainty columns of a report row: accuracy interval, the two spreads, and the paired test against LoRA.

A row of ``zoo-report`` (zoo.report.summarise) is every run of one configuration. Its runs
differ in the run's ``seed`` (initialisation, batch order) and, in the benchmark suite, in
``task.sample_seed`` (which training examples were drawn; zoo.tasks.config). Each spread is
the standard deviation over runs that differ in that one seed alone: over seeds at the row's
first training sample, and over training samples at the row's first seed. The interval
resamples both runs and evaluation examples (zoo.analysis.bootstrap), so it needs every run's
``eval_correct``; records of an older zoo lack it, and their rows get none. A generation row gets a
second interval, of its ROUGE-L F, from every run's ``eval_rouge_l``.

The paired test compares each row with the ``lora`` row of the same model and task (of the
same config where there are several) on the same evaluation examples, by accuracy on
classification and by ROUGE-L F on generation (:data:`PER_EXAMPLE`). ``lora_test`` says how
it came out: ``differs`` (the 95% interval of the difference excludes 0), ``alike``,
or ``unpaired`` (the rows were scored on other evaluation sets: refused, with a warning).
"""
from __future__ import annotations

import statistics
import sys

from zoo.analysis.bootstrap import accuracy_interval, paired_difference

REFERENCE = "lora"
"""The method every row is tested against."""


def _sample(run: dict) -> int:
    """The seed a run's training sample was drawn with: its ``task.sample_seed``, else its data seed."""
    task = run.get("task_config") or {}
    return task["sample_seed"] if task.get("sample_seed") is not None else task.get("seed", 0)


def _ordered(runs: list[dict]) -> list[dict]:
    """``runs`` by seed and training sample: the bootstrap draws by position, so the same runs give the same digits in any order."""
    return sorted(runs, key=lambda r: (r["seed"], _sample(r)))


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


PER_EXAMPLE = {"classification": "eval_correct", "generation": "eval_rouge_l"}
"""Per task kind, the record's per-example list that the paired test against LoRA pairs: what the kind's runs are chosen
by (``RunRecord.objective``), correctness on classification and ROUGE-L F on generation, where exact match is 0 for
nearly every written headline and would find no row distinguishable."""


def _kind(runs: list[dict]) -> str:
    return runs[0].get("task_kind") or "classification"


def _interval(runs: list[dict], key: str, score: str) -> tuple[float | None, float | None]:
    """The 95% interval of the mean of ``key`` (a per-example list every run records; runs in :func:`_ordered` order), or
    ``(None, None)`` where a run lacks it."""
    values = [r.get(key) for r in runs]
    if None in values:
        return None, None
    try:
        return accuracy_interval(values)
    except ValueError as err:
        print(f"zoo-report: {runs[0]['method']} on {runs[0]['task']} gets no {score} interval: {err}", file=sys.stderr)
        return None, None


def row_uncertainty(runs: list[dict]) -> dict:
    """``accuracy_low``/``accuracy_high`` (95% interval; None without per-example records) and the two spreads; a
    generation row's ROUGE-L interval too, as ``macro_f1_low``/``macro_f1_high`` (its record's ROUGE-L is ``macro_f1``)."""
    runs = _ordered(runs)
    low, high = _interval(runs, "eval_correct", "accuracy")
    first_sample, first_seed = min(_sample(r) for r in runs), min(r["seed"] for r in runs)
    rouge = dict(zip(("macro_f1_low", "macro_f1_high"), _interval(runs, "eval_rouge_l", "ROUGE-L"))) if _kind(runs) == "generation" else {}
    return {
        "accuracy_low": low, "accuracy_high": high,
        "accuracy_seed_std": _std([r["accuracy"] for r in runs if _sample(r) == first_sample]),
        "accuracy_sample_std": _std([r["accuracy"] for r in runs if r["seed"] == first_seed]),
        **rouge,
    }


def _reference(row: dict, rows: list[dict]) -> int | None:
    """The index of the LoRA row ``row`` is tested against: same model and task, the same config where several are."""
    candidates = [i for i, r in enumerate(rows) if r["method"] == REFERENCE and (r["model"], r["task"]) == (row["model"], row["task"])]
    same = [i for i in candidates if rows[i]["config"] == row["config"]]
    return same[0] if same else candidates[0] if len(candidates) == 1 else None


def compare_with_lora(rows: list[dict], runs: list[list[dict]]) -> list[dict]:
    """``rows`` with ``vs_lora`` (the score of :data:`PER_EXAMPLE` minus LoRA's), its interval and ``lora_test``; ``runs[i]``
    are row i's runs.

    Rows that cannot be tested (LoRA itself, no LoRA row, runs without per-example records) get None.
    """
    out = []
    runs = [_ordered(members) for members in runs]
    for row, members in zip(rows, runs, strict=True):
        test = {"vs_lora": None, "vs_lora_low": None, "vs_lora_high": None, "lora_test": None}
        ref, key = _reference(row, rows), PER_EXAMPLE[_kind(members)]
        if ref is not None and row["method"] != REFERENCE and all(m.get(key) is not None for m in members + runs[ref]):
            fingerprints = ({m.get("eval_fingerprint") for m in members}, {m.get("eval_fingerprint") for m in runs[ref]})
            try:
                paired = paired_difference([m[key] for m in members], [m[key] for m in runs[ref]], fingerprints)
            except ValueError as err:
                print(f"zoo-report: {row['method']} ({row['config'] or 'no overrides'}) on {row['task']} is not tested against "
                      f"{REFERENCE}: {err}", file=sys.stderr)
                test["lora_test"] = "unpaired"
            else:
                test = {"vs_lora": paired.difference, "vs_lora_low": paired.low, "vs_lora_high": paired.high,
                        "lora_test": "differs" if paired.distinguishable else "alike"}
        out.append({**row, **test})
    return out
