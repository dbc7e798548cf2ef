"""The report's plot: a score against trainable parameters or training time, every label readable, the Pareto front marked.

Each row with something on the x axis is a numbered marker with its 95% interval as an error bar
(± std over runs where no interval was recorded); the number beside it keys into a legend outside
the axes, which names the row in full, so no name is drawn over another. Numbers of markers that
fall close together are moved apart (:func:`label_offsets`: a small vertical repel in display
space). The Pareto front, the rows no other row beats on both axes (a higher score at no more
parameters or seconds), is joined by a step line. Rows with nothing on the x axis (an untrained
baseline) have no place on a log axis: they are dashed horizontal lines, in the legend too.
Saved without a version stamp, so the same rows give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from zoo.task_kinds import get_metric

AXES = {"trainable_params": "trainable parameters (log scale)", "train_seconds": "training wall time, s (log scale)"}
"""What :func:`plot` can put on its x axis, and the axis label."""
LABEL_BOX = (14.0, 10.0)
"""The width and height, in display points, a marker's number is given: closer numbers are moved apart."""


def pareto_front(rows: list[dict], x: str, metric: str) -> list[dict]:
    """The rows no other row beats: none scores better (by the metric's direction) at no more ``x``; by ``x``, then score."""
    sign = 1 if get_metric(metric).higher_is_better else -1
    front, best = [], None
    for r in sorted(rows, key=lambda r: (r[x], -sign * r[metric])):
        if best is None or sign * r[metric] > best:
            front.append(r)
            best = sign * r[metric]
    return front


def label_offsets(points: list[tuple[float, float]], box: tuple[float, float] = LABEL_BOX) -> list[float]:
    """Vertical offsets (display points) for labels at ``points`` (display coordinates) such that no two label boxes
    overlap: each label, in order of height, goes up until it clears the ones already placed."""
    placed: list[tuple[float, float]] = []
    offsets = [0.0] * len(points)
    for i in sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0])):
        x, y = points[i]
        while any(abs(x - px) < box[0] and abs(y + offsets[i] - py) < box[1] for px, py in placed):
            offsets[i] += box[1]
        placed.append((x, y + offsets[i]))
    return offsets


def _name(r: dict) -> str:
    return r["method"] + (f" {r['config']}" if r["config"] else "")


def _error_bar(row: dict, metric: str) -> list[list[float]] | float:
    """The interval around ``row[metric]`` as matplotlib's (below, above) distances, else its std (None, no bar: one run)."""
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None:
        return row[f"{metric}_std"]
    return [[max(row[metric] - low, 0.0)], [max(high - row[metric], 0.0)]]  # a mean at an end of its interval: no negative bar


def _draw(ax, rows: list[dict], x: str, metric: str) -> None:
    points = [r for r in rows if metric in r and r[x]]
    for i, r in enumerate(points, 1):
        ax.errorbar(
            r[x], r[metric], yerr=_error_bar(r, metric), fmt="o", capsize=3, color=f"C{(i - 1) % 10}", label=f"{i}  {_name(r)}"
        )
    for j, r in enumerate(r for r in rows if metric in r and not r[x]):
        ax.axhline(
            r[metric], linestyle=("--", ":", "-.")[j % 3], linewidth=1, color="gray", label=f"{_name(r)} (nothing trained)"
        )
    front = pareto_front(points, x, metric)
    if front:
        ax.step(
            [r[x] for r in front],
            [r[metric] for r in front],
            where="post",
            color="black",
            linewidth=1,
            alpha=0.5,
            label="Pareto front",
        )
    ax.set_xscale("log")
    if points:  # the labels' places need the final scales
        ax.set_xlim(min(r[x] for r in points) / 2, max(r[x] for r in points) * 2)
    xy = ax.transData.transform([(r[x], r[metric]) for r in points]) * 72 / ax.figure.dpi if points else []
    for i, (r, up) in enumerate(zip(points, label_offsets([tuple(p) for p in xy])), 1):
        ax.annotate(str(i), (r[x], r[metric]), textcoords="offset points", xytext=(5, 3 + up), fontsize=8)


def plot(rows: list[dict], path: Path, x: str = "trainable_params", title: str | None = None) -> None:
    """The first row's objective against ``x`` (a key of :data:`AXES`, log scale) as a PNG at ``path``: the rows that score it.

    Raises:
        ValueError: an ``x`` that is not one of :data:`AXES`.
    """
    if x not in AXES:
        raise ValueError(f"x {x!r} is not one of {sorted(AXES)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = rows[0]["objective_metric"]
    label = get_metric(metric).label
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.set_ylabel(label)
    ax.set_xlabel(AXES[x])
    ax.set_title(title or f"{label} against {AXES[x].removesuffix(' (log scale)')}")
    ax.grid(True, which="both", alpha=0.3)
    _draw(ax, rows, x, metric)
    entries = sorted(zip(*ax.get_legend_handles_labels()), key=lambda e: not e[1][0].isdigit())  # the numbered rows first
    ax.legend(*zip(*entries), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, metadata={"Software": None})  # no version stamp: the same rows give the same bytes
    plt.close(fig)
    tmp.replace(path)
