"""``zoo-report <folder>``: every ``metrics.json`` under a (multi)run folder -> one table per task kind and a plot.

Runs that differ only in their seed or training sample (``task.sample_seed``) are one row. Its
columns come from the metrics its records' task kind declares (zoo.tasks.metric): the
objective first, mean with a 95% bootstrap interval over runs and evaluation examples; its
difference from the reference row's (``--reference``, LoRA by default) on the same examples,
with the 95% paired bootstrap interval of the difference and a mark ``≠`` where the rows differ
at the 5% level by an exact paired test (McNemar's exact test for 0/1 scores of one run a row,
else a paired permutation test), Holm-corrected over the task's rows (zoo.report.uncertainty);
the std over seeds and over training samples; then every other metric, with its interval where
it is a mean over examples, else as mean ± std over the runs. Under each table, each task's
minimum detectable difference: the smallest true difference in the objective its paired
comparisons find with 80% power at the 5% level (zoo.report.power). Baselines are rows too: a
run of a baseline (``zoo baseline=zero_shot|in_context|linear_probe``) is a row like a method's,
and ``--baseline-rows`` adds a row per untrained baseline from the scores of the base model that
every run records (one row per model, task and the options that change them), so a sweep of methods alone gets its baselines; the baseline that declares
``report_column`` (zero-shot) is also a column beside every row. Writes ``report.md``,
``report.csv`` and ``report.png`` (the objective against trainable parameters, log scale;
zoo.report.pareto_plot) into the folder, and prints the tables. Latency is the
tuned model's median time per evaluation batch over the base model's, timed in the same run
(unmerged / merged, for methods that merge; a baseline against the base model on the bare prompt);
``!`` after the merged ratio: a run of the row timed its merged model outside 1 ± 0.05 of the
base. A merged model runs the base model's own modules (zoo.models.layout), so such a ratio is the machine's timing
noise, or a module of the method that its merge left in the forward pass (``latency_flags`` in report.csv counts
those runs). A row with runs that diverged (zoo.training.divergence)
says so after its method name, ``lora [diverged 1/3]``, and in the ``diverged`` column of
report.csv (how many of its runs). A metrics.json that is not a run's record is skipped with a
warning naming it. ``benchmarks/results_md.py`` builds RESULTS.md from these pieces.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import logging
import shlex
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

from zoo.io.records import RunRecord, UnusableRecord
from zoo.report.html_page import write_html
from zoo.report.html_provenance import provenance, sweep_command
from zoo.report.pareto_plot import plot
from zoo.report.peft_results import read_peft_results, write_peft_results
from zoo.report.uncertainty import TEST_COLUMNS, compare_with_reference, row_uncertainty, score_cell, seed_spreads
from zoo.runner.baselines import report_column, untrained_baselines
from zoo.runtime.errors import run_command, user_error_line
from zoo.runtime.written import write_file, write_text
from zoo.task_kinds import get_metric, get_task_kind, list_task_kinds

log = logging.getLogger(__name__)

REFERENCE = "lora"
"""The method each row is tested against unless ``--reference`` names another."""
COLUMNS = [
    "method",
    "config",
    "model",
    "task",
    "task_kind",
    "objective_metric",
    "seeds",
    "trainable_params",
    "trainable_percent",
    "run_std",
    "seed_std",
    "sample_std",
    *TEST_COLUMNS,
    "base_score",
    "corrections",
    "regressions",
    "forgetting",
    "train_seconds",
    "train_tokens",
    "peak_memory_mb",
    "adapter_kb",
    "latency_ratio",
    "merged_latency_ratio",
    "latency_flags",
    "diverged",
]
"""report.csv's columns besides each metric's (``<metric>``, ``<metric>_std``, ``<metric>_low``, ``<metric>_high``)."""


def load_runs(folder: Path, skip: tuple[str, ...] = ()) -> list[dict]:
    """One entry per readable run record under ``folder`` (:func:`_entry`); any other metrics.json is skipped with a warning naming it.

    ``skip``: folders directly under ``folder`` not read (a benchmark's search trials, its tuned rows).
    """
    runs = []
    for path in sorted(folder.rglob("metrics.json")):
        if path.relative_to(folder).parts[0] in skip:
            continue
        try:
            record = RunRecord.read(path)
        except UnusableRecord as err:
            print(f"zoo-report: {err}; skipped", file=sys.stderr)
            continue
        runs.append({**_entry(record, _overrides(path.parent)), "_folder": path.parent})
    return runs


def _entry(record: RunRecord, overrides: str) -> dict:
    """The record's fields, what distinguishes the run from its sweep's others (its overrides in one order, whatever order
    they were given in: the same config is the same row), and its score under the baseline reports show beside every row
    (``base``)."""
    shown = report_column()
    return {
        **dataclasses.asdict(record),
        "_overrides": " ".join(sorted(overrides.split())),
        "base": record.baseline_scores.get(shown.name) if shown is not None else None,
    }


def _overrides(run_dir: Path) -> str:
    """The run's command-line overrides other than the method, the seeds and how it was timed (what distinguishes its scores)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return ""
    items = [line.strip().removeprefix("- ").strip("'\"") for line in path.read_text().splitlines() if line.strip()]
    skip = (
        "method=",
        "seed=",
        "task.sample_seed=",
        "hydra.",
        "+sweep=",
        "trainer.progress=",
        "baseline=",
        "latency=",
        "predictions_cache=",
        "latency_batches=",
    )
    return " ".join(i for i in items if not i.startswith(skip))


# overrides that cannot change an untrained baseline's score: what trains, and how
_NOT_BASELINE = ("method", "trainer.", "save_adapter", "task.formulation", "task.head_learning_rate")
_NOT_ZERO_SHOT = _NOT_BASELINE + ("task.demonstrations", "task.demonstration_separator", "task.shots_per_class")


def _baseline_config(overrides: str, demonstrations: bool) -> str:
    skip = _NOT_BASELINE if demonstrations else _NOT_ZERO_SHOT
    return " ".join(i for i in overrides.split() if not i.lstrip("+~").startswith(skip))


def with_baselines(runs: list[dict]) -> list[dict]:
    """``runs`` plus one record per untrained baseline score each run holds, configs reduced to what changes them.

    A score seen twice (a sweep scores the same base model once per run) counts once per seed and training sample.
    """
    untrained = {spec.name: spec for spec in untrained_baselines()}
    out, seen = [], set()
    for r in runs:
        records = [r] + [
            {
                "method": name,
                "model": r["model"],
                "task": r["task"],
                "seed": r["seed"],
                "task_config": r["task_config"],
                "_overrides": r["_overrides"],
                "task_kind": r["task_kind"],
                "objective_metric": r["objective_metric"],
                "scores": score,
                "example_scores": {},
                "base": r["base"],
                "flips": None,
                "trainable_params": 0,
                "trainable_percent": 0.0,
                "train_seconds": 0.0,
                "peak_memory_bytes": None,
                "adapter_bytes": None,
            }
            for name, score in r["baseline_scores"].items()
            if name in untrained and r["method"] != name
        ]
        for record in records:
            if record["method"] in untrained:
                record = {
                    **record,
                    "_overrides": _baseline_config(record["_overrides"], untrained[record["method"]].demonstrations),
                }
                key = (
                    record["method"],
                    record["_overrides"],
                    record["model"],
                    record["task"],
                    record["seed"],
                    record["task_config"].get("sample_seed"),
                )
                if key in seen:
                    continue
                seen.add(key)
            out.append(record)
    return out


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the std of ``values``; no std of one value (a row of one run has no spread to show)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _in_order(metrics: Iterable[str], kind: str) -> list[str]:
    """``metrics``, once each, in the order task kind ``kind`` declares them (metrics.json stores a record's scores sorted by
    name); any it does not declare (a kind not installed here) after them, as met."""
    declared = [m.name for m in get_task_kind(kind).metrics] if kind in list_task_kinds() else []
    return sorted(dict.fromkeys(metrics), key=lambda m: declared.index(m) if m in declared else len(declared))


def _metric_columns(members: list[dict], metrics: list[str]) -> dict:
    """Each of ``metrics``: its mean over the runs that score it and their std, under ``<metric>`` and ``<metric>_std``."""
    columns = {}
    for metric in metrics:
        columns[metric], columns[f"{metric}_std"] = _mean_std([m["scores"][metric] for m in members if metric in m["scores"]])
    return columns


def summarise(runs: list[dict], baseline_rows: bool = False, reference: str = REFERENCE) -> list[dict]:
    """One row per configuration, tested against the ``reference`` method's row; sorted by task, then best objective first."""
    groups: dict[tuple, list[dict]] = {}
    for r in with_baselines(runs) if baseline_rows else runs:
        groups.setdefault((r["method"], r["_overrides"], r["model"], r["task"]), []).append(r)
    rows = []
    for (method, overrides, model, task), members in groups.items():
        first = members[0]
        objective, metrics = first["objective_metric"], _in_order((m for r in members for m in r["scores"]), first["task_kind"])
        adapter, memory = _mean([m.get("adapter_bytes") for m in members]), _mean([m["peak_memory_bytes"] for m in members])
        rows.append(
            {
                "method": method,
                "config": overrides,
                "model": model,
                "task": task,
                "task_kind": first["task_kind"],
                "objective_metric": objective,
                "metrics": metrics,
                "seeds": len(members),
                "trainable_params": first["trainable_params"],
                "trainable_percent": first["trainable_percent"],
                **_metric_columns(members, metrics),
                **row_uncertainty(members),
                "base_score": _mean([(m["base"] or {}).get(objective) for m in members]),
                "corrections": _mean([(m["flips"] or {}).get("corrections") for m in members]),
                "regressions": _mean([(m["flips"] or {}).get("regressions") for m in members]),
                "forgetting": _mean([(m.get("forgetting") or {}).get("delta") for m in members]),
                "train_seconds": statistics.fmean(m["train_seconds"] for m in members),
                "train_tokens": _mean([m.get("train_tokens") for m in members]),
                "peak_memory_mb": memory / 2**20 if memory is not None else None,
                "adapter_kb": adapter / 1024 if adapter is not None else None,
                "latency_ratio": _mean([(m.get("latency") or {}).get("ratio") for m in members]),
                "merged_latency_ratio": _mean([(m.get("latency") or {}).get("merged_ratio") for m in members]),
                "latency_flags": sum(bool((m.get("latency") or {}).get("flag")) for m in members),
                "diverged": sum(bool(m.get("diverged")) for m in members),
            }
        )
    rows = compare_with_reference(rows, list(groups.values()), reference)
    return sorted(rows, key=lambda r: (r["task"], -objective_value(r)))


def objective_value(row: dict) -> float:
    """The row's objective, signed so that larger is better (its metric's direction)."""
    value = row[row["objective_metric"]]
    return value if get_metric(row["objective_metric"]).higher_is_better else -value


def _thousands(value: float | None) -> float | None:
    return None if value is None else value / 1000


def _cell(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


REFERENCE_MARKS = {"differs": " ≠"}
"""What follows a row's difference from the reference row: differs at the 5% level by its paired test, Holm-corrected over
the task's rows (zoo.report.uncertainty)."""
DETECTABLE = "minimum detectable difference (80% power, 5% level, paired)"
"""The line under a task's table (zoo.report.power)."""


def reference_cell(r: dict) -> str:
    """The row's objective minus the reference row's, the difference's 95% interval and the mark of the paired test;
    ``?`` where the rows could not be paired, ``-`` where nothing was tested."""
    if r.get("reference_test") == "unpaired":
        return "?"
    if r.get("vs_reference") is None:
        return "-"
    signed = "+" + get_metric(r["objective_metric"]).format
    low, high = format(r["vs_reference_low"], signed), format(r["vs_reference_high"], signed)
    return f"{format(r['vs_reference'], signed)} [{low}, {high}]" + REFERENCE_MARKS.get(r["reference_test"], "")


def _header(metric: str) -> str:
    spec = get_metric(metric)
    return f"{spec.label} [95% CI]" if spec.per_example else spec.label


def table(rows: list[dict]) -> str:
    """The rows' table (rows of one task kind): the objective and its spreads, every other metric, the report column's
    baseline, what flipped, forgetting, cost and latency; its columns from the kind's metric specs. The spreads over one
    seed alone (*sd seed / sample*) are shown where a row has one: not under the paired design, whose runs change both."""
    objective = rows[0]["objective_metric"]
    others = [m for m in _in_order((m for r in rows for m in r["metrics"]), rows[0]["task_kind"]) if m != objective]
    shown, flips, split = report_column(), any(r["corrections"] is not None for r in rows), seed_spreads(rows)
    head = (
        [
            "method",
            "config",
            "task",
            "trainable",
            "%",
            _header(objective),
            f"vs {rows[0]['reference']} [95% CI]",
            "sd runs",
            *(["sd seed / sample"] if split else []),
            *map(_header, others),
        ]
        + ([shown.name.replace("_", "-")] if shown else [])
        + (["fixed / broken"] if flips else [])
        + ["forgetting", "train s", "train k-tokens", "peak MB", "adapter KB", "latency x base (merged)"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        method = r["method"] + (f" [diverged {r['diverged']}/{r['seeds']}]" if r.get("diverged") else "")
        cells = [
            method,
            r["config"] or "-",
            r["task"],
            f"{r['trainable_params']:,}",
            f"{r['trainable_percent']:.3f}",
            score_cell(r, objective),
            reference_cell(r),
            _cell(r.get("run_std"), ".3f"),
            *([f"{_cell(r.get('seed_std'), '.3f')} / {_cell(r.get('sample_std'), '.3f')}"] if split else []),
            *(score_cell(r, m) for m in others),
        ]
        cells += [get_metric(objective).cell(r["base_score"])] if shown else []
        cells += [f"{_cell(r['corrections'], '.0f')} / {_cell(r['regressions'], '.0f')}"] if flips else []
        cells += [
            _cell(r.get("forgetting"), "+.3f"),
            _cell(r["train_seconds"] or None, ".1f"),
            _cell(_thousands(r.get("train_tokens")), ".1f"),
            _cell(r["peak_memory_mb"], ".0f"),
            _cell(r["adapter_kb"], ".1f"),
            latency_cell(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


LATENCY_MARK = "!"
"""What follows a row's merged latency ratio where one of its runs flagged it (zoo.evaluation.latency: outside 1 ± 0.05, noise)."""


def latency_cell(r: dict) -> str:
    """``ratio (merged ratio)``, the merged one marked where a run of the row flagged it as not credible."""
    mark = LATENCY_MARK if r.get("latency_flags") else ""
    return f"{_cell(r.get('latency_ratio'), '.2f')} ({_cell(r.get('merged_latency_ratio'), '.2f')}{mark})"


def by_kind(rows: list[dict]) -> list[list[dict]]:
    """``rows`` split by task kind (each kind's metrics are a table's columns), kinds in order of their first row."""
    kinds: dict[str, list[dict]] = {}
    for r in rows:
        kinds.setdefault(r["task_kind"], []).append(r)
    return list(kinds.values())


def detectable(rows: list[dict]) -> str:
    """The rows' tasks' minimum detectable differences, a line each (the task named where there are several); none for
    a task without a paired comparison."""
    tasks = {r["task"]: r for r in rows if r.get("reference_mdd") is not None}
    return "".join(
        f"{DETECTABLE}{f' on {task}' if len(tasks) > 1 else ''}: {get_metric(r['objective_metric']).cell(r['reference_mdd'])}\n"
        for task, r in tasks.items()
    )


def markdown(rows: list[dict]) -> str:
    """One table per task kind among the rows, each task's minimum detectable difference under it."""
    return "\n".join(table(group) + (f"\n{lines}" if (lines := detectable(group)) else "") for group in by_kind(rows))


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    metrics = list(
        dict.fromkeys(
            m for group in by_kind(rows) for m in _in_order((m for r in group for m in r["metrics"]), group[0]["task_kind"])
        )
    )
    fields = COLUMNS[:9] + [f"{m}{suffix}" for m in metrics for suffix in ("", "_std", "_low", "_high")] + COLUMNS[9:]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def report(
    folder: Path, baseline_rows: bool = False, reference: str = REFERENCE, html: Path | None = None, out: Path | None = None
) -> str:
    """The tables of every run record under ``folder`` and of every peft results file there (zoo.report.peft_results),
    written with their CSV and plot into ``out`` (default: ``folder``) where they can be (:func:`write_report`), and as
    the HTML page ``html`` where given."""
    runs = report_runs(folder)
    rows = summarise(runs, baseline_rows, reference)
    tables = markdown(rows)
    write_report(folder if out is None else out, rows, tables)
    if html is not None:
        write_page(folder, runs, rows, baseline_rows, reference, html)
    return tables


def report_runs(folder: Path) -> list[dict]:
    """Every run record under ``folder`` and every peft results file there."""
    runs = load_runs(folder) + read_peft_results(folder)
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {str(folder)!r}; point zoo-report at a run or multirun folder")
    return runs


def write_page(folder: Path, runs: list[dict], rows: list[dict], baseline_rows: bool, reference: str, html: Path) -> None:
    """The report as one self-contained HTML page (zoo.report.html_page), with the command that wrote it."""
    command = shlex.join(
        [
            "zoo-report",
            folder.name,
            *(["--baseline-rows"] if baseline_rows else []),
            "--reference",
            reference,
            "--html",
            html.name,
        ]
    )
    write_html(
        html,
        rows,
        with_baselines(runs) if baseline_rows else runs,
        provenance(runs, command=sweep_command(folder), written_by=command),
    )


def write_report(out: Path, rows: list[dict], tables: str) -> bool:
    """Write ``report.md``, ``.csv`` and ``.png`` into ``out``; False, with a warning naming why, where it cannot be written
    (a teammate's sweep, a read-only mount, a report.md of the user's: zoo.runtime.written)."""
    try:
        write_text(out / "report.md", tables, "the report")
        write_text(out / "report.csv", to_csv(rows), "the report's table")
        write_file(out / "report.png", lambda tmp: plot(rows, tmp), "the report's plot")
    except OSError as err:
        log.warning("wrote no report files into %s: %s; give --out a folder to write them to", out, user_error_line(err) or err)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Exit status 0, or 2 where a user error stopped it (zoo.runtime.errors: one line, its traceback with ``--debug``)."""
    parser = argparse.ArgumentParser(prog="zoo-report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run or multirun output folder")
    parser.add_argument(
        "--baseline-rows",
        action="store_true",
        help="add zero-shot and in-context rows from the base-model scores every run records",
    )
    parser.add_argument(
        "--reference",
        default=REFERENCE,
        metavar="METHOD",
        help=f"the row every other row is tested against, by its method's or baseline's name (default: {REFERENCE})",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write the report as one self-contained HTML page (sortable tables, plots, curves, flips)",
    )
    parser.add_argument(
        "--peft-json",
        type=Path,
        metavar="DIR",
        help="also write each run as a JSON file in peft's method-comparison layout (docs/peft-results-format.md)",
    )
    parser.add_argument("--out", type=Path, metavar="FOLDER", help="write report.md, .csv and .png here (default: FOLDER)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    return run_command("zoo-report", lambda: _report(args), args.debug)


def _report(args: argparse.Namespace) -> int:
    out = args.out or args.folder
    runs = report_runs(args.folder)
    rows = summarise(runs, args.baseline_rows, args.reference)
    tables = markdown(rows)
    print(tables, end="", flush=True)  # the table first: it is the result, whether or not the files can be written
    if write_report(out, rows, tables):
        print(f"\nwrote {out / 'report.csv'} and {out / 'report.png'}")
    if args.html is not None:
        write_page(args.folder, runs, rows, args.baseline_rows, args.reference, args.html)
        print(f"wrote {args.html}")
    if args.peft_json is not None:
        print(f"wrote {len(write_peft_results(load_runs(args.folder), args.peft_json))} peft results into {args.peft_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
