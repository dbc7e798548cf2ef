"""A task's table in the HTML report: zoo-report's columns (zoo.report.table), each cell with the value it sorts by.

Every number is the row's, as zoo.report.table.summarise computed it: the objective's mean and 95% interval, its difference
from the reference row with the paired interval and the mark of the Holm-corrected paired test (``≠``; ``?`` unpaired), the
spreads over runs (and over one seed alone where a row has one: zoo.report.uncertainty.seed_spreads), every other metric,
the zero-shot score, the answers fixed and broken, forgetting and the costs. Three columns are the page's own, for
filtering: the row's family (zoo.report.html_runs.FAMILIES), whether it is a tuned or a default row, and its source (zoo,
or another tool's results). A cell's ``data-value`` is what a click on its column sorts by.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from zoo.report.html_runs import family, setting
from zoo.report.uncertainty import score_cell, seed_spreads
from zoo.task_kinds import get_metric

Column = tuple[str, Callable[[dict], str], Callable[[dict], float | str | None]]
"""A column: its header, its cell's text, the value it sorts by (None sorts last)."""


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _score(metric: str) -> Callable[[dict], str]:
    return lambda r: score_cell(r, metric)


def _reference(r: dict) -> str:
    if r.get("reference_test") == "unpaired":
        return "?"
    if r.get("vs_reference") is None:
        return "-"
    signed = "+" + get_metric(r["objective_metric"]).format
    mark = " ≠" if r.get("reference_test") == "differs" else ""
    return f"{format(r['vs_reference'], signed)} [{format(r['vs_reference_low'], signed)}, {format(r['vs_reference_high'], signed)}]{mark}"


def columns(rows: list[dict]) -> list[Column]:
    """The columns of a task's rows (rows of one task kind): the objective first, then every other metric they score."""
    objective = rows[0]["objective_metric"]
    others = [m for m in dict.fromkeys(m for r in rows for m in r.get("metrics", [])) if m != objective]
    label = get_metric(objective).label
    return [
        ("method", lambda r: r["method"], lambda r: r["method"]),
        ("family", lambda r: family(r["method"], r.get("source", "zoo")), lambda r: family(r["method"], r.get("source", "zoo"))),
        ("setting", lambda r: setting(r["method"]), lambda r: setting(r["method"])),
        ("source", lambda r: r.get("source", "zoo"), lambda r: r.get("source", "zoo")),
        ("config", lambda r: r["config"] or "-", lambda r: r["config"]),
        ("trainable", lambda r: f"{r['trainable_params']:,}", lambda r: r["trainable_params"]),
        ("%", lambda r: _number(r.get("trainable_percent"), ".3f"), lambda r: r.get("trainable_percent")),
        (f"{label} [95% CI]", _score(objective), lambda r: r.get(objective)),
        (f"vs {rows[0].get('reference', '-')} [95% CI]", _reference, lambda r: r.get("vs_reference")),
        ("sd runs", lambda r: _number(r.get("run_std"), ".3f"), lambda r: r.get("run_std")),
        *(
            [
                (
                    "sd seed / sample",
                    lambda r: f"{_number(r.get('seed_std'), '.3f')} / {_number(r.get('sample_std'), '.3f')}",
                    lambda r: r.get("seed_std"),
                )
            ]
            if seed_spreads(rows)
            else []
        ),
        *((get_metric(m).label, _score(m), lambda r, m=m: r.get(m)) for m in others),
        ("zero-shot", lambda r: get_metric(objective).cell(r.get("base_score")), lambda r: r.get("base_score")),
        (
            "fixed / broken",
            lambda r: f"{_number(r.get('corrections'), '.0f')} / {_number(r.get('regressions'), '.0f')}",
            lambda r: r.get("corrections"),
        ),
        ("forgetting", lambda r: _number(r.get("forgetting"), "+.3f"), lambda r: r.get("forgetting")),
        ("train s", lambda r: _number(r.get("train_seconds"), ".1f"), lambda r: r.get("train_seconds")),
        ("peak MB", lambda r: _number(r.get("peak_memory_mb"), ".0f"), lambda r: r.get("peak_memory_mb")),
        ("adapter KB", lambda r: _number(r.get("adapter_kb"), ".1f"), lambda r: r.get("adapter_kb")),
        (
            "latency x base (merged)",
            lambda r: f"{_number(r.get('latency_ratio'), '.2f')} ({_number(r.get('merged_latency_ratio'), '.2f')})",
            lambda r: r.get("latency_ratio"),
        ),
    ]


def _attribute(value) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def table_html(rows: list[dict], task_id: str) -> str:
    """The rows' ``<table>``: a header cell per column (``data-kind``: number or text, how it sorts), a ``<tr>`` per row
    carrying what the filters read (``data-method``, ``data-family``, ``data-setting``, ``data-source``)."""
    cols = columns(rows)
    kinds = ["number" if any(isinstance(value(r), (int, float)) for r in rows) else "text" for _, _, value in cols]
    head = "".join(
        f'<th data-kind="{k}" title="sort by {html.escape(h)}">{html.escape(h)}</th>' for (h, _, _), k in zip(cols, kinds)
    )
    body = []
    for r in rows:
        source = r.get("source", "zoo")
        cells = "".join(f'<td data-value="{_attribute(value(r))}">{html.escape(text(r))}</td>' for _, text, value in cols)
        body.append(
            f'<tr data-method="{_attribute(r["method"])}" data-family="{_attribute(family(r["method"], source))}" '
            f'data-setting="{setting(r["method"])}" data-source="{_attribute(source)}">{cells}</tr>'
        )
    return f'<table class="rows" id="{task_id}-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
