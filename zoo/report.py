"""``zoo-report <folder>``: every ``metrics.json`` under a (multi)run folder -> one table and a plot.

Runs that differ only in their seed or training sample (``task.sample_seed``) are one row: mean
accuracy with a 95% bootstrap interval over runs and evaluation examples, the std over seeds and
over training samples, and a mark where the row differs from LoRA's on the same examples
(zoo.analysis.uncertainty); macro-F1 as mean ± std over the runs. Baselines are rows
too: a run of a baseline (``zoo baseline=zero_shot|in_context|linear_probe``) is a row like a
method's, and ``--baseline-rows`` adds zero-shot and in-context rows from the scores of the
base model that every run records (one row per model, task and the options that change
them), so a sweep of methods alone gets its baselines. Writes ``report.csv`` and
``report.png`` (metric against trainable parameters, log scale; untrained baselines as
horizontal lines) into the folder, and prints the markdown table. Latency is the tuned
model's time per evaluation batch over the base model's, timed in the same run (unmerged /
merged, for methods that merge). A row with runs that diverged (zoo.divergence) says so after
its method name, ``lora [diverged 1/3]``, and in the ``diverged`` column of report.csv (how
many of its runs). A metrics.json that is not a run's record is skipped with a warning naming
it. ``benchmarks/results_md.py`` builds RESULTS.md from these pieces.

Runs of generation tasks (zoo.records: exact match in ``accuracy``, ROUGE-L F in ``macro_f1``)
get a table of their own, headed exact match / ROUGE-L / log-likelihood per token, after the
classification table: both scores with their 95% intervals (from the records' ``eval_correct`` and
``eval_rouge_l``), the mark against LoRA after ROUGE-L, which it tests. report.csv then has the
columns :data:`GENERATION_COLUMNS` too, whose ``task_kind`` says what a row's ``accuracy`` and
``macro_f1`` are.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import statistics
import sys
from pathlib import Path

from zoo.analysis.uncertainty import compare_with_lora, row_uncertainty
from zoo.atomic import write_text
from zoo.baselines import untrained_baselines
from zoo.records import RunRecord, UnusableRecord

COLUMNS = ["method", "config", "model", "task", "seeds", "trainable_params", "trainable_percent",
           "accuracy", "accuracy_std", "accuracy_low", "accuracy_high", "accuracy_seed_std", "accuracy_sample_std",
           "vs_lora", "vs_lora_low", "vs_lora_high", "lora_test", "macro_f1", "macro_f1_std", "zero_shot_accuracy",
           "corrections", "regressions", "forgetting", "train_seconds", "train_tokens", "peak_memory_mb", "adapter_kb", "latency_ratio",
           "merged_latency_ratio", "diverged"]
GENERATION_COLUMNS = ["task_kind", "macro_f1_low", "macro_f1_high", "log_likelihood_per_token", "zero_shot_rouge_l"]
"""report.csv's extra columns where a generation run is among the rows."""
AXES = {"trainable_params": "trainable parameters (log scale)", "train_seconds": "training wall time, s (log scale)"}
"""What :func:`plot` can put on its x axis, and the axis label."""


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
        runs.append(_entry(record, _overrides(path.parent)))
    return runs


def _entry(record: RunRecord, overrides: str) -> dict:
    """The record's fields, what distinguishes the run from its sweep's others, and its zero-shot score (a column)."""
    return {**dataclasses.asdict(record), "_overrides": overrides, "zero_shot": record.score("zero_shot")}


def _overrides(run_dir: Path) -> str:
    """The run's command-line overrides other than the method, the seeds and whether it was timed (what distinguishes its scores)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return ""
    items = [line.strip().removeprefix("- ").strip("'\"") for line in path.read_text().splitlines() if line.strip()]
    skip = ("method=", "seed=", "task.sample_seed=", "hydra.", "+sweep=", "trainer.progress=", "baseline=", "latency=")
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
            {"method": name, "model": r["model"], "task": r["task"], "seed": r["seed"], "task_config": r["task_config"],
             "_overrides": r["_overrides"],
             "accuracy": score["accuracy"], "macro_f1": score["macro_f1"], "zero_shot": r["zero_shot"], "flips": None,
             "trainable_params": 0, "trainable_percent": 0.0, "train_seconds": 0.0, "peak_memory_bytes": None, "adapter_bytes": None,
             "task_kind": r["task_kind"], "generation": score if r["task_kind"] == "generation" else None}
            for name, score in r["baseline_scores"].items() if name in untrained and r["method"] != name
        ]
        for record in records:
            if record["method"] in untrained:
                record = {**record, "_overrides": _baseline_config(record["_overrides"], untrained[record["method"]].demonstrations)}
                key = (record["method"], record["_overrides"], record["model"], record["task"], record["seed"],
                       record["task_config"].get("sample_seed"))
                if key in seen:
                    continue
                seen.add(key)
            out.append(record)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarise(runs: list[dict], baseline_rows: bool = False) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in with_baselines(runs) if baseline_rows else runs:
        groups.setdefault((r["method"], r["_overrides"], r["model"], r["task"]), []).append(r)
    rows = []
    for (method, overrides, model, task), members in groups.items():
        acc, acc_sd = _mean_std([m["accuracy"] for m in members])
        f1, f1_sd = _mean_std([m["macro_f1"] for m in members])
        adapter, memory = _mean([m.get("adapter_bytes") for m in members]), _mean([m["peak_memory_bytes"] for m in members])
        rows.append({
            "method": method, "config": overrides, "model": model, "task": task, "seeds": len(members),
            "trainable_params": members[0]["trainable_params"], "trainable_percent": members[0]["trainable_percent"],
            "accuracy": acc, "accuracy_std": acc_sd, **row_uncertainty(members), "macro_f1": f1, "macro_f1_std": f1_sd,
            "zero_shot_accuracy": _mean([(m["zero_shot"] or {}).get("accuracy") for m in members]),
            "corrections": _mean([(m["flips"] or {}).get("corrections") for m in members]),
            "regressions": _mean([(m["flips"] or {}).get("regressions") for m in members]),
            "forgetting": _mean([(m.get("forgetting") or {}).get("delta") for m in members]),
            "train_seconds": statistics.fmean(m["train_seconds"] for m in members),
            "train_tokens": _mean([m.get("train_tokens") for m in members]),
            "peak_memory_mb": memory / 2**20 if memory is not None else None,
            "adapter_kb": adapter / 1024 if adapter is not None else None,
            "latency_ratio": _mean([(m.get("latency") or {}).get("ratio") for m in members]),
            "merged_latency_ratio": _mean([(m.get("latency") or {}).get("merged_ratio") for m in members]),
            "diverged": sum(bool(m.get("diverged")) for m in members),
            **(_generation_columns(members) if members[0].get("task_kind") == "generation" else {}),
        })
    rows = compare_with_lora(rows, list(groups.values()))
    return sorted(rows, key=lambda r: (r["task"], -r["accuracy"]))


def _thousands(value: float | None) -> float | None:
    return None if value is None else value / 1000


def _generation_columns(members: list[dict]) -> dict:
    """A generation row's own columns: its kind, the mean response log-likelihood per token, the zero-shot ROUGE-L."""
    return {
        "task_kind": "generation",
        "log_likelihood_per_token": _mean([(m.get("generation") or {}).get("log_likelihood_per_token") for m in members]),
        "zero_shot_rouge_l": _mean([(m["zero_shot"] or {}).get("rouge_l") for m in members]),
    }


def _cell(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


LORA_MARKS = {"differs": " ≠", "unpaired": " ?"}
"""What follows a row's accuracy for its paired test against LoRA (zoo.analysis.uncertainty): differs at 5%, or not tested."""


def _score_cell(r: dict, score: str = "accuracy", marked: bool = True) -> str:
    """A row's mean ``score``, its 95% interval where the runs recorded it per example (else ± std), and, where ``marked``,
    the mark against LoRA."""
    low, high = r.get(f"{score}_low"), r.get(f"{score}_high")
    spread = f"[{low:.3f}, {high:.3f}]" if low is not None else f"± {r[f'{score}_std']:.3f}"
    return f"{r[score]:.3f} {spread}" + (LORA_MARKS.get(r.get("lora_test"), "") if marked else "")


def markdown(rows: list[dict]) -> str:
    """The classification rows' table, then the generation rows' (each only where it has rows)."""
    classification = [r for r in rows if r.get("task_kind") != "generation"]
    generation = [r for r in rows if r.get("task_kind") == "generation"]
    tables = ([_classification_table(classification)] if classification or not generation else []) + (
        [_generation_table(generation)] if generation else [])
    return "\n".join(tables)


def _generation_table(rows: list[dict]) -> str:
    """The generation rows' table: exact match and ROUGE-L with their intervals, the mark against LoRA after ROUGE-L (which
    the paired test compares on this kind)."""
    head = ("| method | config | task | trainable | % | exact match [95% CI] | ROUGE-L [95% CI] | log-lik / token "
            "| zero-shot EM / ROUGE-L | forgetting | train s | train k-tokens | peak MB | adapter KB | latency x base (merged) |")
    lines = [head, "|" + "|".join(["---"] * 15) + "|"]
    for r in rows:
        method = r["method"] + (f" [diverged {r['diverged']}/{r['seeds']}]" if r.get("diverged") else "")
        lines.append(
            f"| {method} | {r['config'] or '-'} | {r['task']} | {r['trainable_params']:,} | {r['trainable_percent']:.3f} "
            f"| {_score_cell(r, marked=False)} | {_score_cell(r, 'macro_f1')} "
            f"| {_cell(r['log_likelihood_per_token'], '.3f')} | {_cell(r['zero_shot_accuracy'], '.3f')} / {_cell(r['zero_shot_rouge_l'], '.3f')} "
            f"| {_cell(r.get('forgetting'), '+.3f')} | {r['train_seconds']:.1f} | {_cell(_thousands(r.get('train_tokens')), '.1f')} "
            f"| {_cell(r['peak_memory_mb'], '.0f')} | {_cell(r['adapter_kb'], '.1f')} "
            f"| {_cell(r.get('latency_ratio'), '.2f')} ({_cell(r.get('merged_latency_ratio'), '.2f')}) |"
        )
    return "\n".join(lines) + "\n"


def _classification_table(rows: list[dict]) -> str:
    head = ("| method | config | task | trainable | % | accuracy [95% CI] | sd seed / sample | macro-F1 | zero-shot | fixed / broken "
            "| forgetting | train s | train k-tokens | peak MB | adapter KB | latency x base (merged) |")
    lines = [head, "|" + "|".join(["---"] * 16) + "|"]
    for r in rows:
        method = r["method"] + (f" [diverged {r['diverged']}/{r['seeds']}]" if r.get("diverged") else "")
        lines.append(
            f"| {method} | {r['config'] or '-'} | {r['task']} | {r['trainable_params']:,} | {r['trainable_percent']:.3f} "
            f"| {_score_cell(r)} | {_cell(r.get('accuracy_seed_std'), '.3f')} / {_cell(r.get('accuracy_sample_std'), '.3f')} "
            f"| {r['macro_f1']:.3f} ± {r['macro_f1_std']:.3f} "
            f"| {_cell(r['zero_shot_accuracy'], '.3f')} | {_cell(r['corrections'], '.0f')} / {_cell(r['regressions'], '.0f')} "
            f"| {_cell(r.get('forgetting'), '+.3f')} | {r['train_seconds']:.1f} | {_cell(_thousands(r.get('train_tokens')), '.1f')} "
            f"| {_cell(r['peak_memory_mb'], '.0f')} | {_cell(r['adapter_kb'], '.1f')} "
            f"| {_cell(r.get('latency_ratio'), '.2f')} ({_cell(r.get('merged_latency_ratio'), '.2f')}) |"
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    generation = any(r.get("task_kind") == "generation" for r in rows)
    writer = csv.DictWriter(buf, fieldnames=COLUMNS + GENERATION_COLUMNS if generation else COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


GENERATION_SCORE = ("macro_f1", "ROUGE-L")
"""What a plot shows for a generation task (its record's key and the axis name): ROUGE-L F, ``RunRecord.objective`` of
such a run, as exact match is 0 for most written text."""


def plot(rows: list[dict], path: Path, metric: str = "accuracy", x: str = "trainable_params", title: str | None = None,
         ylabel: str | None = None) -> None:
    """``metric`` against ``x`` (a key of :data:`AXES`, log scale) as a PNG at ``path``, its axis named ``ylabel`` (default: ``metric``).

    Error bars: the 95% bootstrap interval where the row has one (accuracy of runs that recorded
    their answers), else ± std over the runs. Rows with ``x`` = 0 (nothing trained) have no place
    on a log axis: they are horizontal lines, a level to beat.
    """
    if x not in AXES:
        raise ValueError(f"x {x!r} is not one of {sorted(AXES)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if not r[x]:
            ax.axhline(r[metric], linestyle="--", linewidth=1, color="gray")
            ax.annotate(r["method"], (0.01, r[metric]), xycoords=("axes fraction", "data"), xytext=(0, 3), textcoords="offset points", fontsize=8)
            continue
        ax.errorbar(r[x], r[metric], yerr=_error_bar(r, metric), fmt="o", capsize=3)
        label = r["method"] + (f" {r['config']}" if r["config"] else "")
        ax.annotate(label, (r[x], r[metric]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(AXES[x])
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title or f"{metric} against {AXES[x].removesuffix(' (log scale)')}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _error_bar(row: dict, metric: str) -> list[list[float]] | float:
    """The interval around ``row[metric]`` as matplotlib's (below, above) distances, else its std."""
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None:
        return row[f"{metric}_std"]
    return [[max(row[metric] - low, 0.0)], [max(high - row[metric], 0.0)]]  # a mean at an end of its interval: no negative bar


def report(folder: Path, baseline_rows: bool = False) -> str:
    runs = load_runs(folder)
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {str(folder)!r}; point zoo-report at a run or multirun folder")
    rows = summarise(runs, baseline_rows)
    table = markdown(rows)
    write_text(folder / "report.md", table)
    write_text(folder / "report.csv", to_csv(rows))
    generation = all(r.get("task_kind") == "generation" for r in rows)
    metric, label = GENERATION_SCORE if generation else ("accuracy", None)
    plot(rows, folder / "report.png", metric=metric, title=f"{label} against trainable parameters" if generation else None, ylabel=label)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoo-report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run or multirun output folder")
    parser.add_argument("--baseline-rows", action="store_true",
                        help="add zero-shot and in-context rows from the base-model scores every run records")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    try:
        print(report(args.folder, args.baseline_rows), end="")
    except FileNotFoundError as err:
        print(f"zoo-report: {err}", file=sys.stderr)
        return 1
    print(f"\nwrote {args.folder / 'report.csv'} and {args.folder / 'report.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
