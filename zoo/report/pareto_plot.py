"""The report's plot: a score against trainable parameters or training time, every label readable, the Pareto front marked.

Each row with something on the x axis is a numbered marker with its 95% interval as an error bar
(± std over runs where no interval was recorded); the number beside it keys into a legend outside
the axes, which names the row in full, so no name is drawn over another. Numbers of markers that
fall close together are moved apart (:func:`label_offsets`: to the other side of the marker, then up
or down, in display space, once the layout is final), joined to their marker by a thin line where moved far.
The figure grows taller with the rows, so that the legend holds every one. The Pareto front, the rows no other row beats on both axes (a higher score at no more
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
ROUNDS = 5
"""How many times the score axis may grow to hold a crowd's numbers."""
LEGEND_LINE = 0.17
"""Inches of figure height a legend line takes (7-point type): a figure of many rows grows to hold its legend."""


def pareto_front(rows: list[dict], x: str, metric: str) -> list[dict]:
    """The rows no other row beats: none scores better (by the metric's direction) at no more ``x``; by ``x``, then score."""
    sign = 1 if get_metric(metric).higher_is_better else -1
    front, best = [], None
    for r in sorted(rows, key=lambda r: (r[x], -sign * r[metric])):
        if best is None or sign * r[metric] > best:
            front.append(r)
            best = sign * r[metric]
    return front


def label_offsets(points: list[tuple[float, float]], box: tuple[float, float] = LABEL_BOX) -> list[tuple[float, float]]:
    """Offsets ``(dx, dy)`` (display points) for labels at ``points`` (display coordinates) such that no two label boxes
    overlap: each label, in order of height, takes the first free place of: right of its marker, left of it, then the
    same one and two boxes up, down, and so on (a crowd spreads both ways, half as far as up alone)."""
    left = -(box[0] + 10.0)  # clear of the marker: a label is drawn 5 points right of its offset
    placed: list[tuple[float, float]] = []
    offsets = [(0.0, 0.0)] * len(points)
    for i in sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0])):
        x, y = points[i]
        for step in range(len(points) + 1):
            heights = (0.0,) if step == 0 else (step * box[1], -step * box[1])
            free = [
                (dx, dy)
                for dy in heights
                for dx in (0.0, left)
                if not any(abs(x + dx - px) < box[0] and abs(y + dy - py) < box[1] for px, py in placed)
            ]
            if free:
                offsets[i] = free[0]
                break
        placed.append((x + offsets[i][0], y + offsets[i][1]))
    return offsets


def _name(r: dict) -> str:
    return r["method"] + (f" {r['config']}" if r["config"] else "")


def _error_bar(row: dict, metric: str) -> list[list[float]] | float:
    """The interval around ``row[metric]`` as matplotlib's (below, above) distances, else its std (None, no bar: one run)."""
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None:
        return row[f"{metric}_std"]
    return [[max(row[metric] - low, 0.0)], [max(high - row[metric], 0.0)]]  # a mean at an end of its interval: no negative bar


def _on_axis(rows: list[dict], x: str, metric: str) -> list[dict]:
    """The rows that have a place on the log x axis, in the order their numbers go."""
    return [r for r in rows if metric in r and r[x]]


def _draw(ax, rows: list[dict], x: str, metric: str) -> None:
    points = _on_axis(rows, x, metric)
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
    if points:
        ax.set_xlim(min(r[x] for r in points) / 2, max(r[x] for r in points) * 2)


def _display(ax, points: list[dict], x: str, metric: str) -> list[tuple[float, float]]:
    """The markers' places in display points."""
    return [tuple(p) for p in ax.transData.transform([(r[x], r[metric]) for r in points]) * 72 / ax.figure.dpi]


def _number(ax, rows: list[dict], x: str, metric: str) -> None:
    """Each marker's number beside it, after the layout (the labels' places need the final scales and axes); a number
    moved more than a box away from its marker is joined to it by a thin line. Where a crowd's numbers would leave the
    axes, the score axis grows to hold them (a few rounds: growing it draws the crowd closer together)."""
    points = _on_axis(rows, x, metric)
    if not points:
        return
    for _ in range(ROUNDS):
        xy = _display(ax, points, x, metric)
        offsets = label_offsets(xy)
        heights = [y + 3 + dy for (_, y), (_, dy) in zip(xy, offsets)]  # each number's bottom (drawn 3 points up)
        bottom, top = ax.bbox.y0 * 72 / ax.figure.dpi, ax.bbox.y1 * 72 / ax.figure.dpi
        below, above = max(bottom - min(heights), 0.0), max(max(heights) + LABEL_BOX[1] - top, 0.0)
        if not below and not above:
            break
        low, high = ax.get_ylim()
        per_point = (high - low) / (top - bottom)
        ax.set_ylim(low - 1.2 * below * per_point, high + 1.2 * above * per_point)
    else:  # the last round grew the axis: the numbers' places at its final scale
        offsets = label_offsets(_display(ax, points, x, metric))
    for i, (r, (dx, dy)) in enumerate(zip(points, offsets), 1):
        far = abs(dy) > LABEL_BOX[1]
        ax.annotate(
            str(i),
            (r[x], r[metric]),
            textcoords="offset points",
            xytext=(5 + dx, 3 + dy),
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "gray", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 3} if far else None,
        )


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
    lines = sum(metric in r for r in rows) + 1  # a legend line a row, and the front's
    fig, ax = plt.subplots(figsize=(12, max(5.0, LEGEND_LINE * lines + 0.8)))  # tall enough for every legend line
    ax.set_ylabel(label)
    ax.set_xlabel(AXES[x])
    ax.set_title(title or f"{label} against {AXES[x].removesuffix(' (log scale)')}")
    ax.grid(True, which="both", alpha=0.3)
    _draw(ax, rows, x, metric)
    entries = sorted(zip(*ax.get_legend_handles_labels()), key=lambda e: not e[1][0].isdigit())  # the numbered rows first
    ax.legend(*zip(*entries), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    _number(ax, rows, x, metric)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, metadata={"Software": None})  # no version stamp: the same rows give the same bytes
    plt.close(fig)
    tmp.replace(path)
