"""What the HTML report shows of each run and of each row's runs: the family of a row, its whole config, each run's learning
curve and the evaluation examples it fixed and broke against zero-shot.

A row of ``zoo-report`` (zoo.report.table.summarise) is every run of one configuration; :func:`row_runs` finds them again by
the same key (method, overrides, model, task). A run's learning curve is its ``history`` (one entry every
``trainer.eval_every`` steps: the training loss at that step and every score) closed by its final point (``train_steps``,
``final_loss``, ``scores``); a run without ``eval_every`` has that point alone. Its fixed and broken examples come from the
file its task kind writes beside metrics.json (``TaskKind.outputs``) where the kind counts flips (``RunRecord.flips``): one
JSON line per answer that changed against the base model's with the run's own prompt (zero-shot), with the example's text.
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.registry import get_method, list_methods
from zoo.runner.baselines import list_baselines
from zoo.task_kinds import get_task_kind, list_task_kinds

TUNED = " (tuned)"
"""The suffix of a tuned row's method name (benchmarks/results_md.py)."""
FAMILIES = {
    "baseline": "a baseline: an untrained model, or one that trains no method (linear probe)",
    "closed form": "solved once, no gradient steps (gradient-free)",
    "mergeable": "changes the weights: the trained update merges into them",
    "additive": "adds modules, identity at init, not mergeable",
    "prompt-like": "adds inputs (virtual tokens, prefixes): not identity at init",
    "other source": "a row read from another tool's results",
}
"""A row's family, from its method's capability flags (zoo.method.MethodSpec), never from its name; what each means."""


def base_method(method: str) -> str:
    """A row's method name without the marks a report adds (``lora (tuned)``, ``lora (peft)`` -> ``lora``)."""
    return method.split(" (")[0]


def family(method: str, source: str = "zoo") -> str:
    """The row's family (a key of :data:`FAMILIES`)."""
    name = base_method(method)
    if source != "zoo":
        return "other source"
    if name in list_baselines():
        return "baseline"
    if name not in list_methods():
        return "other source"
    spec = get_method(name)
    if spec.gradient_free:
        return "closed form"
    if spec.mergeable:
        return "mergeable"
    return "additive" if spec.identity_at_init else "prompt-like"


def setting(method: str) -> str:
    return "tuned" if method.endswith(TUNED) else "default"


def row_key(run: dict) -> tuple:
    return run["method"], run["_overrides"], run["model"], run["task"]


def row_runs(rows: list[dict], runs: list[dict]) -> list[list[dict]]:
    """Each row's runs, in the rows' order (``runs``: the list the rows were summarised from, baselines added)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(row_key(run), []).append(run)
    return [groups.get((r["method"], r["config"], r["model"], r["task"]), []) for r in rows]


def run_label(run: dict) -> str:
    sample = (run.get("task_config") or {}).get("sample_seed")
    return " ".join(
        filter(None, [run["method"], run["_overrides"], f"seed {run['seed']}", f"sample {sample}" if sample is not None else ""])
    )


def whole_config(row: dict, members: list[dict]) -> list[tuple[str, str]]:
    """What the row ran, as (name, value) pairs: its overrides, model, task, runs, and its method's config and rates."""
    first = members[0] if members else {}
    trainer = (first.get("run_config") or {}).get("trainer") or {}
    items = [
        ("method", row["method"]),
        ("overrides", row["config"] or "-"),
        ("model", row["model"]),
        ("task", row["task"]),
        ("runs", str(row["seeds"])),
        ("learning rate", _text(first.get("learning_rate"))),
        ("steps", _text(first.get("train_steps"))),
        ("batch size", _text(trainer.get("batch_size"))),
    ]
    return items + [
        (f"{base_method(row['method'])}.{k}", _text(v)) for k, v in sorted((first.get("method_config") or {}).items())
    ]


def _text(value) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def learning_curve(run: dict) -> dict | None:
    """The run's training loss and scores against steps (``history`` and the final point); None for a run that trained nothing."""
    if not run.get("train_steps"):
        return None
    points = [*(run.get("history") or []), {"step": run["train_steps"], "loss": run.get("final_loss"), **run["scores"]}]
    metrics = [m for m in run["scores"] if any(isinstance(p.get(m), (int, float)) for p in points)]
    return {
        "step": [p["step"] for p in points],
        "loss": [p.get("loss") for p in points],
        "scores": {m: [p.get(m) for p in points] for m in metrics},
    }


def flipped_examples(run: dict) -> dict | None:
    """The evaluation examples the run ``fixed`` (wrong zero-shot, right now) and ``broke`` (right zero-shot, wrong now),
    each with its text, its label and both answers; None where the run's kind counts no flips or its folder lacks the file."""
    kind = run.get("task_kind")
    if run.get("flips") is None or run.get("_folder") is None or kind not in list_task_kinds():
        return None
    path = Path(run["_folder"]) / get_task_kind(kind).outputs
    if not path.is_file():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    shown = [{k: line.get(k) for k in ("index", "text", "label", "before", "after")} for line in lines]
    return {"fixed": [e for e in shown if e["after"] == e["label"]], "broken": [e for e in shown if e["before"] == e["label"]]}
