"""The benchmark figures a method's docstring quotes are the published comparison's (benchmarks/RESULTS.md), so that a
rerun of the suite cannot leave a docstring behind: each quoted cell is read back from the record's main table."""

from __future__ import annotations

import re

import pytest

import zoo
from docs.gen.methods import docstring
from docs.gen.results import FULL, TUNED, table

QUOTED = re.compile(r"``benchmarks/RESULTS\.md``, tuned rows: (.+?)\.\n\n", re.DOTALL)
CELL = re.compile(r"(\w+) (\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\])")
QUOTING = ["galore", "lora_plus", "loreft"]
"""The methods whose docstrings quote their tuned rows."""


def quoted(method: str) -> list[tuple[str, str]]:
    """The (task, score cell) pairs ``method``'s module docstring quotes from the published comparison."""
    found = QUOTED.search(docstring(zoo.get_method(method)) + "\n\n")
    return CELL.findall(" ".join(found.group(1).split())) if found else []


@pytest.mark.parametrize("method", QUOTING)
def test_a_docstring_quotes_its_tuned_rows_as_the_record_prints_them(method):
    cells = quoted(method)
    assert cells, f"{method}'s docstring quotes no tuned row after '``benchmarks/RESULTS.md``, tuned rows:'"
    for task, cell in cells:
        main = table(FULL, task)
        score = next(c for c in main.header if c.endswith("[95% CI]") and not c.startswith("vs "))
        assert main.cell(method + TUNED, score) == cell, (method, task, score)
