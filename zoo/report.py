"""``zoo-report <folder>``: every ``metrics.json`` under a (multi)run folder -> one table and a plot.

Runs that differ only in their seed are one row (mean ± std over seeds). Writes
``report.csv`` and ``report.png`` (metric against trainable parameters, log scale) into
the folder, and prints the markdown table.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
from pathlib import Path

from zoo.atomic import write_text

COLUMNS = ["method", "config", "model", "task", "seeds", "trainable_params", "trainable_percent",
           "accuracy", "accuracy_std", "macro_f1", "macro_f1_std", "zero_shot_accuracy",
           "corrections", "regressions", "train_seconds", "peak_memory_mb", "adapter_kb"]


def load_runs(folder: Path) -> list[dict]:
    runs = []
    for path in sorted(folder.rglob("metrics.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            print(f"zoo-report: skipping unreadable {path}: {err}", file=sys.stderr)
            continue
        record["_overrides"] = _overrides(path.parent)
        runs.append(record)
    return runs


def _overrides(run_dir: Path) -> str:
    """The run's command-line overrides other than the method and seed (what distinguishes it)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return ""
    items = [line.strip().removeprefix("- ").strip("'\"") for line in path.read_text().splitlines() if line.strip()]
    return " ".join(i for i in items if not i.startswith(("method=", "seed=", "hydra.", "+sweep=", "trainer.progress=")))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["_overrides"], r["model"], r["task"]), []).append(r)
    rows = []
    for (method, overrides, model, task), members in groups.items():
        acc, acc_sd = _mean_std([m["accuracy"] for m in members])
        f1, f1_sd = _mean_std([m["macro_f1"] for m in members])
        adapter = [m["adapter_bytes"] for m in members if m.get("adapter_bytes") is not None]
        rows.append({
            "method": method, "config": overrides, "model": model, "task": task, "seeds": len(members),
            "trainable_params": members[0]["trainable_params"], "trainable_percent": members[0]["trainable_percent"],
            "accuracy": acc, "accuracy_std": acc_sd, "macro_f1": f1, "macro_f1_std": f1_sd,
            "zero_shot_accuracy": statistics.fmean(m["zero_shot"]["accuracy"] for m in members),
            "corrections": statistics.fmean(m["flips"]["corrections"] for m in members),
            "regressions": statistics.fmean(m["flips"]["regressions"] for m in members),
            "train_seconds": statistics.fmean(m["train_seconds"] for m in members),
            "peak_memory_mb": statistics.fmean(m["peak_memory_bytes"] for m in members) / 2**20,
            "adapter_kb": statistics.fmean(adapter) / 1024 if adapter else None,
        })
    return sorted(rows, key=lambda r: (r["task"], -r["accuracy"]))


def markdown(rows: list[dict]) -> str:
    head = "| method | config | task | trainable | % | accuracy | macro-F1 | zero-shot | fixed / broken | train s | peak MB | adapter KB |"
    lines = [head, "|" + "|".join(["---"] * 12) + "|"]
    for r in rows:
        adapter = f"{r['adapter_kb']:.1f}" if r["adapter_kb"] is not None else "-"
        lines.append(
            f"| {r['method']} | {r['config'] or '-'} | {r['task']} | {r['trainable_params']:,} | {r['trainable_percent']:.3f} "
            f"| {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | {r['macro_f1']:.3f} ± {r['macro_f1_std']:.3f} "
            f"| {r['zero_shot_accuracy']:.3f} | {r['corrections']:.0f} / {r['regressions']:.0f} | {r['train_seconds']:.1f} "
            f"| {r['peak_memory_mb']:.0f} | {adapter} |"
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def plot(rows: list[dict], path: Path, metric: str = "accuracy") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.errorbar(r["trainable_params"], r[metric], yerr=r[f"{metric}_std"], fmt="o", capsize=3)
        label = r["method"] + (f" {r['config']}" if r["config"] else "")
        ax.annotate(label, (r["trainable_params"], r[metric]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against trainable parameters")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def report(folder: Path) -> str:
    runs = load_runs(folder)
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {str(folder)!r}; point zoo-report at a run or multirun folder")
    rows = summarise(runs)
    table = markdown(rows)
    write_text(folder / "report.md", table)
    write_text(folder / "report.csv", to_csv(rows))
    plot(rows, folder / "report.png")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoo-report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run or multirun output folder")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    try:
        print(report(args.folder), end="")
    except FileNotFoundError as err:
        print(f"zoo-report: {err}", file=sys.stderr)
        return 1
    print(f"\nwrote {args.folder / 'report.csv'} and {args.folder / 'report.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
