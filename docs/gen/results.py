"""Rows of the committed benchmark records (the markdown tables benchmarks/results_md.py wrote), by task and method."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TASK = ROOT / "benchmarks" / "results" / "default_task" / "RESULTS.md"
"""Every method on the built-in default task, 3 seeds: ``python -m benchmarks.suite --profile default``."""
FULL = ROOT / "benchmarks" / "RESULTS.md"
"""SmolLM2-135M-Instruct on real tasks, default and tuned rows: ``python -m benchmarks.suite --profile full --tuned``."""
TUNED = " (tuned)"
OTHER = "## Other benchmarks"
"""The heading under which a record copies other scripts' tables verbatim (benchmarks/results_md.py): not its own rows."""
SEARCH = "### The search's choices"
"""The heading of a task's table of the search's choices: rows of trials' values, not of runs."""


@dataclass(frozen=True)
class Table:
    """One table of runs in a record: its task, the ``###`` part it sits in ("" for none), header cells and rows of cells."""

    record: Path
    task: str
    part: str
    header: list[str]
    rows: list[list[str]]

    def rows_of(self, method: str) -> list[list[str]]:
        """The rows of ``method``: its default row(s) and its tuned one, as the record orders them."""
        return [row for row in self.rows if row[0] in (method, method + TUNED)]

    def cell(self, method: str, column: str) -> str | None:
        """``column`` of ``method``'s row (a name ending in `` (tuned)`` for the tuned row); None where it has none."""
        rows = [row for row in self.rows if row[0] == method]
        return rows[0][self.header.index(column)] if rows else None

    def column(self, start: str) -> str:
        """The first header cell that begins with ``start`` (``accuracy`` finds ``accuracy [95% CI]``).

        Raises:
            KeyError: no such column, naming the header.
        """
        found = [cell for cell in self.header if cell.startswith(start)]
        if not found:
            raise KeyError(f"{self.record.name}, {self.task}: no column starting {start!r} in {self.header}")
        return found[0]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(record: Path) -> list[Table]:
    """The tables of runs in ``record`` (a RESULTS.md), in order: each ``| method | ...`` table under a ``## <task>``
    heading, up to the copies of other records under ``## Other benchmarks``; the search's choices are left out.

    Raises:
        ValueError: the record holds no such table (not a RESULTS.md benchmarks/results_md.py wrote).
    """
    found: list[Table] = []
    task, part, header, rows = None, "", None, []
    text = record.read_text().split("\n" + OTHER + "\n", 1)[0]
    for line in [*text.splitlines(), ""]:
        if line.startswith("## "):
            task, part = line[3:].strip(), ""
        elif line.startswith("### "):
            part = line[4:].strip()
        elif line.startswith("| method |"):
            header, rows = _cells(line), []
        elif header and line.startswith("|"):
            if not line.startswith("|---"):
                rows.append(_cells(line))
        elif header:
            if "### " + part != SEARCH:
                found.append(Table(record, task or "", part, header, rows))
            header = None
    if not found:
        raise ValueError(f"{record} holds no '| method | ...' table under a '## <task>' heading; is it a benchmark RESULTS.md?")
    return found


def task_tables(record: Path, task: str) -> list[Table]:
    """The tables of ``task`` in ``record``: the main one (tuned rows and baselines, or the only one) first.

    Raises:
        KeyError: the record has no such task, naming the ones it has.
    """
    every = tables(record)
    mine = [t for t in every if t.task == task]
    if not mine:
        raise KeyError(f"{record.relative_to(ROOT)} has no table for task {task!r}; it has {sorted({t.task for t in every})}")
    return mine


def table(record: Path, task: str) -> Table:
    """The main table of ``task`` in ``record``: its tuned rows and baselines where it has tuned rows, else its only one.

    Raises:
        KeyError: the record has no such task, naming the ones it has.
    """
    return task_tables(record, task)[0]
