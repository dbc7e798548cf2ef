"""How a task's detectable difference splits between runs and examples, from a record set (conf/benchmark/full.yaml).

    python -m benchmarks.power_split          # the committed full profile's classification tasks

Per task: the variance of the per-example differences of every tuned and baseline row against the tuned LoRA row,
averaged over their first 1 to R paired runs, fitted as var = a + b / R (a: what the examples hold, b: what more runs
average away), and the minimum detectable difference (zoo.report.power, paired t) that fit gives at other sizes.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from benchmarks.records import RECORDS
from benchmarks.results_md import LATENCY, _load
from zoo.report.power import minimum_detectable_difference

REFERENCE = "lora (tuned)"
SIZES = ((150, 8), (300, 3), (400, 3))
"""(test examples, runs) at which the fit's detectable difference is printed."""


def split(runs: list[dict], task: str) -> tuple[float, float, int]:
    """``(a, b, R)`` of ``task``'s main table: the fit of var = a + b / R over 1 to R runs."""
    rows: dict[str, dict] = {}
    for r in runs:
        if (
            r["task"] == task
            and not r["_folder"].startswith(f"{LATENCY}/")
            and (r["method"].endswith(" (tuned)") or r["baseline"])
        ):
            key = (r["seed"], r["task_config"].get("sample_seed"))
            rows.setdefault(r["method"], {})[key] = np.array(r["example_scores"][r["objective_metric"]], dtype=float)
    reference = rows.pop(REFERENCE)
    keys = sorted(reference, key=lambda k: k[0])
    variances = {}
    for count in range(1, len(keys) + 1):
        variances[count] = statistics.fmean(
            np.mean([row[k] - reference[k] for k in [k for k in keys if k in row][:count]], axis=0).var(ddof=1)
            for row in rows.values()
        )
    a, b = np.linalg.lstsq(np.array([[1, 1 / k] for k in variances]), np.array(list(variances.values())), rcond=None)[0]
    return float(a), float(b), len(keys)


def main(records: Path = RECORDS / "full") -> int:
    runs = _load(records)
    for task in ("movie_sentiment", "tweet_sentiment"):
        a, b, count = split(runs, task)
        sizes = ", ".join(f"{n} x {r}: {minimum_detectable_difference(n, sd=float(np.sqrt(a + b / r))):.3f}" for n, r in SIZES)
        print(f"{task}: a = {a:.3f}, b = {b:.3f} over 1 to {count} runs; detectable at examples x runs {sizes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
