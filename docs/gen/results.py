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


@dataclass(frozen=True)
class Table:
    """One task's table of a record: its section name, header cells and rows of cells."""

    record: Path
    task: str
    header: list[str]
    rows: list[list[str]]

    def rows_of(self, method: str) -> list[list[str]]:
        """The rows of ``method``: its default row(s) and its tuned one, as the record orders them."""
        return [row for row in self.rows if row[0] in (method, method + TUNED)]

    def cell(self, method: str, column: str) -> str | None:
        """``column`` of ``method``'s row (a name ending in `` (tuned)`` for the tuned row); None where it has none."""
        rows = [row for row in self.rows if row[0] == method]
        return rows[0][self.header.index(column)] if rows else None


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(record: Path) -> list[Table]:
    """The method tables of ``record`` (a RESULTS.md), in order: each ``## <task>`` section's ``| method | ...`` table,
    up to the copies of other records under ``## Other benchmarks``.

    Raises:
        ValueError: the record holds no such table (not a RESULTS.md benchmarks/results_md.py wrote).
    """
    found: list[Table] = []
    task, header, rows = None, None, []
    text = record.read_text().split("\n" + OTHER + "\n", 1)[0]
    for line in [*text.splitlines(), ""]:
        if line.startswith("## "):
            task = line[3:].strip()
        elif line.startswith("| method |"):
            header, rows = _cells(line), []
        elif header and line.startswith("|"):
            if not line.startswith("|---"):
                rows.append(_cells(line))
        elif header:
            found.append(Table(record, task or "", header, rows))
            header = None
    if not found:
        raise ValueError(f"{record} holds no '| method | ...' table under a '## <task>' heading; is it a benchmark RESULTS.md?")
    return found


def table(record: Path, task: str) -> Table:
    """The table of ``task`` in ``record``.

    Raises:
        KeyError: the record has no such task, naming the ones it has.
    """
    by_task = {t.task: t for t in tables(record)}
    if task not in by_task:
        raise KeyError(f"{record.relative_to(ROOT)} has no table for task {task!r}; it has {sorted(by_task)}")
    return by_task[task]
