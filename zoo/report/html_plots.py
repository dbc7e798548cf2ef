"""The HTML report's plotly figures: a task's objective against a cost (Pareto plots) and a run's learning curve.

A Pareto plot puts every row's objective (mean, with its 95% interval as the error bar where the row has one, else ± std
over the runs, as zoo.report.table.plot) against trainable parameters, training time or forgetting (the change in
next-token loss on held-out text). A row is on the Pareto front when no other row costs less and scores better; the front
is drawn as a step line. The x axis is logarithmic where the row's positive values span two decades or more. Rows with no
place on the axis (nothing trained: no parameters, no time, no forgetting measured) are dashed horizontal lines, a level to
beat. Hovering a point shows the row's whole config (zoo.report.html_runs.whole_config).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from zoo.report.html_runs import whole_config
from zoo.task_kinds import get_metric

AXES = {
    "trainable_params": "trainable parameters",
    "train_seconds": "training wall time, s",
    "forgetting": "forgetting: change in held-out next-token loss, nats/token",
}
"""The costs a Pareto plot puts on its x axis (lower is better), and their labels."""
LABELLED = 25
"""Up to this many points a plot names each beside it; beyond, hovering names them (labels would cover one another)."""
HEIGHT, WIDTH = 420, 470
"""A Pareto plot's size in pixels (fixed: three side by side on a wide screen, wrapping on a narrow one)."""


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points (cost, score) no other point beats on both (lower cost, higher score), by increasing cost."""
    front, best = [], float("-inf")
    for cost, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            front.append((cost, score))
            best = score
    return front


def log_axis(values: list[float]) -> bool:
    """Whether ``values`` (the x of the points drawn) ask for a logarithmic axis: all positive, spanning two decades or more."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 100


def _error(row: dict, metric: str) -> tuple[float, float]:
    """The distances below and above ``row[metric]`` of its interval, else its std both ways."""
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None:
        return (row.get(f"{metric}_std") or 0.0,) * 2
    return max(row[metric] - low, 0.0), max(high - row[metric], 0.0)


def _hover(row: dict, members: list[dict]) -> str:
    return "<br>".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in whole_config(row, members))


def pareto_figure(rows: list[dict], members: list[list[dict]], x: str, title: str) -> go.Figure:
    """The rows' objective against cost ``x`` (a key of :data:`AXES`), one point per row that has a place on the axis."""
    metric = rows[0]["objective_metric"]
    sign = 1 if get_metric(metric).higher_is_better else -1
    placed = [(r, m) for r, m in zip(rows, members) if r.get(x) is not None and r.get(metric) is not None]
    log = all(r[x] >= 0 for r, _ in placed) and log_axis([r[x] for r, _ in placed if r[x] > 0])  # zeros: nothing trained
    drawn = [(r, m) for r, m in placed if r[x] > 0 or not log]
    errors = [_error(r, metric) for r, _ in drawn]
    fig = go.Figure(
        go.Scatter(
            x=[r[x] for r, _ in drawn],
            y=[r[metric] for r, _ in drawn],
            mode="markers+text" if len(drawn) <= LABELLED else "markers",
            name="rows",
            text=[r["method"] for r, _ in drawn],
            textposition="top right",
            textfont={"size": 10},
            hovertext=[_hover(r, m) for r, m in drawn],
            hoverinfo="text",
            cliponaxis=False,
            error_y={"type": "data", "symmetric": False, "array": [e[1] for e in errors], "arrayminus": [e[0] for e in errors]},
        )
    )
    front = pareto_front([(r[x], sign * r[metric]) for r, _ in drawn])
    fig.add_trace(
        go.Scatter(
            x=[c for c, _ in front],
            y=[sign * s for _, s in front],
            mode="lines",
            line_shape="hv",
            name="Pareto front",
            hoverinfo="skip",
            line={"dash": "dot"},
        )
    )
    for r in (r for r in rows if r.get(metric) is not None and not any(r is d for d, _ in drawn)):
        fig.add_hline(
            y=r[metric],
            line_dash="dash",
            line_color="gray",
            line_width=1,
            annotation_text=r["method"],
            annotation_position="top left",
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=HEIGHT,
        width=WIDTH,
        autosize=False,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        xaxis={"title": {"text": AXES[x] + (" (log scale)" if log else "")}, "type": "log" if log else "linear"},
        yaxis={"title": {"text": get_metric(metric).label}},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def curve_traces(curve: dict) -> list[dict]:
    """A run's learning curve as plotly traces: the training loss on the left axis, each score on the right."""
    traces = [go.Scatter(x=curve["step"], y=curve["loss"], mode="lines+markers", name="training loss")]
    traces += [
        go.Scatter(x=curve["step"], y=values, mode="lines+markers", name=get_metric(m).label, yaxis="y2")
        for m, values in curve["scores"].items()
    ]
    return [t.to_plotly_json() for t in traces]


def curve_layout() -> dict:
    """The learning-curve plot's layout, shared by every run's traces."""
    fig = go.Figure(
        layout={
            "height": HEIGHT,
            "width": 2 * WIDTH,
            "margin": {"l": 60, "r": 60, "t": 30, "b": 50},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": "training loss"}},
            "yaxis2": {"title": {"text": "score"}, "overlaying": "y", "side": "right"},
            "legend": {"orientation": "h", "y": -0.2},
        }
    )
    return fig.layout.to_plotly_json()
