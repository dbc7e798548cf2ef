"""``zoo-report --html FILE``: one self-contained HTML page of a sweep, opened from the file, offline.

Per task: the main table (zoo.report.html_table), sorted by a click on a column, filtered by method, family, tuned or default
and source; the Pareto plots (zoo.report.html_plots: the objective against trainable parameters, training time and forgetting);
each run's learning curve; for a chosen run, the evaluation examples it fixed and broke against zero-shot, with their text
(zoo.report.html_runs). Then the provenance block (zoo.report.html_provenance). plotly's JavaScript bundle is inlined
(``plotly.offline.get_plotlyjs``), as are the page's small script and style (``report.js``, ``report.css`` beside this
module): the page asks no server and no network for anything. The same rows and runs give the same bytes.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path

import plotly.io
import plotly.offline

from zoo.report.html_plots import AXES, curve_layout, curve_traces, pareto_figure
from zoo.report.html_runs import FAMILIES, family, flipped_examples, learning_curve, row_runs, run_label, setting
from zoo.report.html_table import table_html
from zoo.runtime.atomic import write_text
from zoo.task_kinds import get_metric

PLOT_CONFIG = {"displaylogo": False}
LEGEND = (
    "Click a column's header to sort by it (again: the other way). Scores: the mean over a row's runs and its 95% "
    "bootstrap interval in brackets (± std where the runs recorded no per-example scores); <i>vs</i>: the row's "
    "objective minus the reference row's on the same examples, its paired 95% interval, and ≠ where a paired exact test "
    "(Holm-corrected over the task's rows) finds them different at the 5% level; ? where the rows could not be paired. "
    "Families, from each method's capability flags: "
)


def _select(attribute: str, values: list[str]) -> str:
    options = "".join(f'<option value="{html.escape(v, quote=True)}">{html.escape(v)}</option>' for v in values)
    return f'<label>{attribute} <select data-attribute="{attribute}"><option value="">all</option>{options}</select></label>'


def _filters(rows: list[dict], task_id: str) -> str:
    families = sorted({family(r["method"], r.get("source", "zoo")) for r in rows})
    sources = sorted({r.get("source", "zoo") for r in rows})
    return (
        f'<div class="filters" data-table="{task_id}-table"><label>method <input type="search" class="filter-method" '
        f'placeholder="part of a name"></label>{_select("family", families)}'
        f"{_select('setting', sorted({setting(r['method']) for r in rows}))}{_select('source', sources)}"
        f'<span class="shown"></span></div>'
    )


def _plots(rows: list[dict], members: list[list[dict]], task_id: str, task: str) -> str:
    label = get_metric(rows[0]["objective_metric"]).label
    divs = [
        plotly.io.to_html(
            pareto_figure(rows, members, x, f"{task}: {label} against {AXES[x].split(':')[0].split(',')[0]}"),
            include_plotlyjs=False,
            full_html=False,
            div_id=f"{task_id}-pareto-{x}",
            config=PLOT_CONFIG,
        )
        for x in AXES
    ]
    return f'<div class="plots">{"".join(divs)}</div>'


def _run_picker(task_id: str, view: str, labels: dict[str, str], what: str) -> str:
    if not labels:
        return f"<p>No run of this task has {what}.</p>"
    options = "".join(f'<option value="{key}">{html.escape(label)}</option>' for key, label in labels.items())
    return (
        f'<label>run <select class="run" data-task="{task_id}" data-view="{view}" data-target="{task_id}-{view}">'
        f'{options}</select></label><div id="{task_id}-{view}"></div>'
    )


def _distinct_configs(rows: list[dict]) -> list[dict]:
    """The rows with each ``config`` cut to the overrides that are not every row's (a sweep's shared ones say nothing)."""
    shared = set.intersection(*(set(r["config"].split()) for r in rows))
    return [{**r, "config": " ".join(o for o in r["config"].split() if o not in shared)} for r in rows]


def task_section(rows: list[dict], members: list[list[dict]], task_id: str) -> tuple[str, dict]:
    """A task's section of the page and the data its script reads (each run's curve traces and flipped examples)."""
    task = rows[0]["task"]
    runs = {f"{task_id}-run{i}": run for i, run in enumerate(r for group in members for r in group)}
    curves = {key: curve_traces(c) for key, run in runs.items() if (c := learning_curve(run)) is not None}
    flips = {key: f for key, run in runs.items() if (f := flipped_examples(run)) is not None}
    section = (
        f'<section class="task" id="{task_id}"><h2>{html.escape(task)}</h2>{_filters(rows, task_id)}'
        f'<div class="scroll">{table_html(_distinct_configs(rows), task_id)}</div>{_plots(rows, members, task_id, task)}'
        f"<h3>Learning curve</h3>{_run_picker(task_id, 'curve', {k: run_label(runs[k]) for k in curves}, 'a learning curve')}"
        f"<h3>Examples fixed and broken against zero-shot</h3>"
        f"{_run_picker(task_id, 'flips', {k: run_label(runs[k]) for k in flips}, 'flipped examples recorded')}</section>"
    )
    return section, {"curves": curves, "flips": flips, "curve_layout": curve_layout()}


def _provenance(block: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in block["items"])
    text = block.get("constraints")
    pins = f"<details><summary>constraints file</summary><pre>{html.escape(text)}</pre></details>" if text else ""
    return f'<section id="provenance"><h2>Provenance</h2><table class="provenance">{cells}</table>{pins}</section>'


def page(rows: list[dict], runs: list[dict], provenance: dict, title: str = "zoo report") -> str:
    """The whole page: ``rows`` as zoo.report.table.summarise returns them, ``runs`` the records they were summarised from
    (untrained baselines added where the rows have them), ``provenance`` as zoo.report.html_provenance.provenance gives it."""
    sections, data = [], {}
    for i, task in enumerate(dict.fromkeys(r["task"] for r in rows)):
        task_rows = [r for r in rows if r["task"] == task]
        members = row_runs(task_rows, runs)
        task_rows = [{**r, "source": m[0].get("source", "zoo") if m else "zoo"} for r, m in zip(task_rows, members)]  # zoo, peft
        section, data[f"task-{i}"] = task_section(task_rows, members, f"task-{i}")
        sections.append(section)
    families = "; ".join(f"<i>{html.escape(k)}</i>: {html.escape(v)}" for k, v in FAMILIES.items())
    payload = json.dumps({"tasks": data}, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    style, script = (files("zoo.report").joinpath(name).read_text() for name in ("report.css", "report.js"))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style><script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="legend">{LEGEND}{families}.</p>{"".join(sections)}{_provenance(provenance)}'
        f'<script type="application/json" id="zoo-data">{payload}</script><script>{script}</script></body></html>\n'
    )


def write_html(path: Path, rows: list[dict], runs: list[dict], provenance: dict, title: str = "zoo report") -> None:
    """Write :func:`page` at ``path`` (atomically)."""
    write_text(Path(path), page(rows, runs, provenance, title))
