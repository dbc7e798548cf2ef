"""One task's part of RESULTS.md: what ran, the main table, the search's choices, the default rows and the plots.

The main table holds the tuned rows of every method (``suite.py --tuned``) and the baselines, sorted
by score, each tested against the reference row (default: the tuned ``lora`` row, like with like),
Holm-corrected over the table; the default rows, each method at its registered rate, are a second
table tested against the default ``lora`` row. A profile run without ``--tuned`` has one table, its
default rows and baselines. The settings line says what every run shared; the rates line the
learning rate each row trained at, as recorded; the search's table, for each method, its choice,
the runner-up and whether the two differ beyond the validation noise (benchmarks/tuned/).
"""

from __future__ import annotations

from pathlib import Path

from zoo.report.table import markdown, plot, summarise
from zoo.task_kinds import get_metric

REFERENCE = "lora"
TUNED = " (tuned)"
TUNED_NOTE = (
    "Rows marked *(tuned)*: the method at the values `benchmarks/tune.py` chose on the validation split, "
    "the same number of trials per method (*config* gives the values; the trials: benchmarks/tuned/), "
    "scored here on the test split. Where the chosen values are the method's defaults, the tuned row is the "
    "default row's first run (the same configuration, not run twice)."
)


def task_section(task: str, runs: list[dict], page_dir: Path, reference: str | None, search: dict | None) -> list[str]:
    """The markdown of one task, its plots written into ``page_dir``."""
    tuned = [r for r in runs if r["method"].endswith(TUNED)]
    baselines = [r for r in runs if r.get("baseline")]
    defaults = [r for r in runs if r not in tuned and r not in baselines]
    main = tuned + baselines if tuned else defaults + baselines
    rows = _distinct_configs(summarise(main, reference=reference or (REFERENCE + TUNED if tuned else REFERENCE)))
    label = get_metric(rows[0]["objective_metric"]).label
    for name, x in (("pareto", "trainable_params"), ("time", "train_seconds")):
        plot(rows, page_dir / f"{name}_{task}.png", x=x, title=f"{task}: {label} against {x.replace('_', ' ')}")
    lines = [f"## {task}", "", _settings(runs), "", _rates(runs), ""]
    if tuned:
        lines += [TUNED_NOTE, "", "### Tuned rows and baselines", ""]
    lines += [
        markdown(rows),
        f"![{label} against trainable parameters](pareto_{task}.png) ![{label} against training time](time_{task}.png)",
        "",
    ]
    lines += _search_table(search) if search and tuned else []
    if tuned and defaults:
        lines += [
            "### Default rows",
            "",
            f"Each method at its registered default learning rate, tested against the default `{REFERENCE}` row.",
            "",
            markdown(_distinct_configs(summarise(defaults, reference=REFERENCE))),
            "",
        ]
    return lines


def _rates(runs: list[dict]) -> str:
    """The learning rate each row's method parameters (a baseline: its head) trained at, as its records say; none for a
    row that took no gradient step (the closed-form head solves for its weights)."""
    by_row: dict[str, set] = {}
    for r in [r for r in runs if r.get("train_steps")]:
        rate = r.get("learning_rate") if r.get("learning_rate") is not None else r.get("head_learning_rate")
        if rate is not None:
            by_row.setdefault(r["method"], set()).add(rate)
    listed = "; ".join(f"{row} {', '.join(f'{v:.3g}' for v in sorted(rates))}" for row, rates in sorted(by_row.items()))
    return (
        "Learning rates, as run (default rows: each method's registered default; tuned rows: the search's choice; "
        f"a baseline's head: its own; a row that takes no gradient step has none): {listed or 'none'}."
    )


def _search_table(search: dict) -> list[str]:
    """Per method: the search's choice, its validation score, the runner-up, McNemar's exact p between the two, and
    whether the choice sits at an end of its grid."""
    lines = [
        "### The search's choices",
        "",
        f"On the validation split, {search['trials_per_method']} trials per method by successive halving (eta "
        f"{search['halving']['eta']}); *p*: the exact paired test of the choice against the runner-up (the last rung's "
        "second) on the validation answers; *differ*: p < 0.05, the choice beats the runner-up beyond the validation "
        "noise; *no*: the two are within it, and either could have been chosen. *grid end*: the choice is the lowest or "
        "highest value the search tried on that axis, so the best value may lie beyond the grid.",
        "",
        "| method | chosen | validation | runner-up | validation | p | differ | grid end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in search["methods"].items():
        up = entry["runner_up"] or {}
        values = (
            " ".join(f"{k}={v}" for k, v in entry["chosen"].items()),
            " ".join(f"{k}={v}" for k, v in (up.get("values") or {}).items()) or "-",
        )
        p = "-" if up.get("p") is None else f"{up['p']:.3g}"
        differ = "-" if up.get("differs") is None else ("yes" if up["differs"] else "no")
        runner = "-" if up.get("score") is None else f"{up['score']:.3f}"
        lines.append(
            f"| {method} | {values[0]} | {entry['chosen_score']:.3f} | {values[1]} | {runner} | {p} | {differ} | "
            f"{_grid_end(entry)} |"
        )
    return [*lines, ""]


def _grid_end(entry: dict) -> str:
    """The axes on which a method's choice is the lowest or highest value its trials tried ("-": inside on every axis)."""
    ends = []
    for key, value in entry["chosen"].items():
        tried = sorted({t["values"][key] for t in entry["trials"] if key in t["values"]})
        if len(tried) > 1 and value in (tried[0], tried[-1]):
            ends.append(f"{key} {'lowest' if value == tried[0] else 'highest'}")
    return "; ".join(ends) or "-"


def _settings(runs: list[dict]) -> str:
    """One line of what a task's runs share: model, data sizes, seeds, steps and batch size (the rates: :func:`_rates`)."""
    trained = [r for r in runs if r.get("train_steps")]
    configs = [r.get("run_config") or {} for r in trained]
    steps = sorted({r["train_steps"] for r in trained})
    batch = sorted({c.get("trainer", {}).get("batch_size") for c in configs} - {None})
    rates = {k: v for c in configs for k, v in (c.get("method_learning_rates") or {}).items()}
    shots = {r["task_config"]["shots_per_class"] for r in runs} - {None}
    parts = [
        f"model {', '.join(sorted({r['model'] for r in runs}))}",
        f"{_span(r['n_train'] for r in runs)} training examples" + (f" ({_span(shots)} per class)" if shots else ""),
        f"{_span(r['n_eval'] for r in runs)} evaluation examples ({runs[0]['task_config']['eval_split']} split, fixed)",
        _seeds(runs),
    ]
    if steps:
        parts.append(f"{_span(steps)} steps at batch size {_span(batch)}")
    if rates:
        parts.append(f"method_learning_rates {', '.join(f'{k} {v:g}' for k, v in sorted(rates.items()))}")
    return "Settings: " + "; ".join(parts) + "."


def _seeds(runs: list[dict]) -> str:
    """Which run seeds and sample seeds a task's runs used, and the data seed of its evaluation set."""
    data_seed = _span(r["task_config"].get("seed") for r in runs)
    sampled = [r for r in runs if r["task_config"].get("sample_seed") is not None]
    seeds = ", ".join(str(s) for s in sorted({r["seed"] for r in runs if r["task_config"].get("sample_seed") is None}))
    if not sampled:
        return (
            f"seeds {seeds} (initialisation and batch order: the training sample and evaluation set are drawn once, "
            f"with data seed {data_seed})"
        )
    samples = ", ".join(str(s) for s in sorted({r["task_config"]["sample_seed"] for r in sampled}))
    return (
        f"seeds {seeds} (initialisation and batch order) on the training sample of data seed {data_seed}, and sample seeds "
        f"{samples} (other training samples and their demonstrations) at seed {_span(r['seed'] for r in sampled)}; the "
        f"evaluation set is drawn once, with data seed {data_seed}"
    )


def _span(values) -> str:
    """``a`` when every value is ``a``, else ``min-max``; ``?`` when there is none."""
    values = sorted(set(values))
    if not values:
        return "?"
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def _distinct_configs(rows: list[dict]) -> list[dict]:
    """Rows whose ``config`` keeps only the overrides that differ between them (the profile and task are shared)."""
    tokens = [set((r["config"] or "").split()) for r in rows]
    common = set.intersection(*tokens) if tokens else set()
    return [{**r, "config": " ".join(t for t in (r["config"] or "").split() if t not in common)} for r in rows]
