"""The documentation's family × method tables, generated from the contract tests (tests/test_contract.py).

    python -m benchmarks.family_table            # run the contract tests, write the tables into docs/
    python -m benchmarks.family_table --check    # exit 1 when a page's table is not the one the tests plan

A cell is what the contract suite checks for that (method, family) pair: ✓ every contract check
passes (identity at init where claimed, only the method's parameters change, save/load round
trip, another base model refused, merge = unmerged where mergeable, leaving exactly the base model's
tensors or refused as the method declares, generate for decoders, one step of the method's own
optimiser where it declares one: LoRA+, GaLore);
— the method's capability flags exclude the pair and the suite checks it is refused; ✗ the
pair fails (a known gap: the test is an expected failure). Running writes what happened;
``--check`` (and tests/test_family_table.py) compares the pages with the tables the tests
plan, which is what running them gives when they pass. The table of zoo's own methods (and
other plugins') sits in docs/models.md between the markers ``<!-- family-table -->`` and ``<!-- /family-table -->``;
the peft bridge's methods (:mod:`zoo.peft_bridge`, 34 more columns) have their own table in docs/peft-bridge.md, between
``<!-- peft-bridge-table -->`` and ``<!-- /peft-bridge-table -->``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import peft
import pytest

import zoo
from zoo.models.arch import model_kind, refusal, roles_of
from zoo.models.tiny import TINY_FAMILIES
from zoo.peft_bridge import bridged_methods
from zoo.runtime.atomic import write_text
from zoo.testing.cells import KNOWN_GAPS, cells
from zoo.testing.models import built

ROOT = Path(__file__).resolve().parents[1]

MODELS_PAGE = ROOT / "docs" / "models.md"
BRIDGE_PAGE = ROOT / "docs" / "peft-bridge.md"
BEGIN, END = "<!-- family-table -->", "<!-- /family-table -->"
BRIDGE_BEGIN, BRIDGE_END = "<!-- peft-bridge-table -->", "<!-- /peft-bridge-table -->"
PEFT_NOTE = "Generated with peft {}: another peft release bridges other tuners (those it has), so its table differs."
PASS, REFUSED, FAILED = "✓", "—", "✗"
SUPPORTED_PAIRS, REFUSED_PAIRS = cells(zoo.list_methods(), TINY_FAMILIES)  # as tests/test_contract.py plans them


def planned() -> dict[tuple[str, str], str]:
    """Each pair's cell when the contract tests pass, from their parametrisation."""
    cells = {pair: REFUSED for pair in REFUSED_PAIRS}
    cells.update({pair: FAILED if pair in KNOWN_GAPS else PASS for pair in SUPPORTED_PAIRS})
    return cells


class _Outcomes:
    """A pytest plugin recording each contract test's outcome under its (method, family) pair."""

    def __init__(self):
        self.outcomes: dict[tuple[str, str], set[str]] = defaultdict(set)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            pair = tuple(report.nodeid.split("[", 1)[1].rstrip("]").split("-", 1))
            self.outcomes[pair].add("xfailed" if hasattr(report, "wasxfail") else report.outcome)


def measured() -> dict[tuple[str, str], str]:
    """Each pair's cell from running the contract tests now."""
    plugin = _Outcomes()
    pytest.main(
        [str(ROOT / "tests" / "test_contract.py"), "--full", "-q", "-p", "no:cacheprovider"], plugins=[plugin]
    )  # every pair
    refused = set(REFUSED_PAIRS)
    return {
        pair: FAILED if found != {"passed"} else REFUSED if pair in refused else PASS for pair, found in plugin.outcomes.items()
    }


def _bridge_footnotes(methods: list[str]) -> list[str]:
    """The bridge's refusals, one line per reason with the methods and families it covers (34 methods share a few)."""
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    for method, kind in (pair for pair in REFUSED_PAIRS if pair[0] in methods):
        spec, model = zoo.get_method(method), built(kind)
        if model_kind(model) not in spec.model_kinds:
            why = f"declare `model_kinds={spec.model_kinds}`"
        else:
            why = "declare `refuses`: they support " + spec.refuses(model).split(" supports ", 1)[1]
        reasons[why, kind].append(method)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (why, kind), names in reasons.items():
        grouped[why, tuple(sorted(names))].append(kind)
    return [
        f"- {REFUSED} {', '.join(f'`{m}`' for m in names)} {why}: refused with a ValueError (checked) ({', '.join(sorted(kinds))})"
        for (why, names), kinds in grouped.items()
    ]


def _footnotes(methods: list[str]) -> list[str]:
    """Why pairs of ``methods`` are refused or fail: one line per distinct reason, with the pairs it covers."""
    reasons: dict[str, list[str]] = defaultdict(list)
    for method, kind in (pair for pair in REFUSED_PAIRS if pair[0] in methods):
        spec, model = zoo.get_method(method), built(kind)
        if model_kind(model) not in spec.model_kinds:
            why = f"`{method}` declares `model_kinds={spec.model_kinds}`"
        elif spec.uses_cache and refusal(spec, model) and "key/value cache" in refusal(spec, model):
            why = (
                f"`{method}` declares `uses_cache` (it enters through the key/value cache), and these models' forward takes none"
            )
        else:
            why = f"`{method}` declares `positional_schemes={spec.positional_schemes}`; {kind} has {roles_of(model).positional} positions"
        reasons[f"{REFUSED} {why}: refused with a ValueError (checked)"].append(kind)
    for (method, kind), why in KNOWN_GAPS.items():
        if method in methods:
            reasons[f"{FAILED} `{method}`: {why}"].append(kind)
    return [f"- {reason} ({', '.join(sorted(set(kinds)))})" for reason, kinds in reasons.items()]


def own_methods() -> list[str]:
    """The methods of the main table: every registered one but the peft bridge's."""
    return [m for m in zoo.list_methods() if m not in bridged_methods()]


def table(cells: dict[tuple[str, str], str], bridge: bool = False) -> str:
    """The markdown table (families as rows, methods as columns) and its footnotes, between the markers.

    ``bridge``: the peft bridge's methods' table instead of the main one.
    """
    methods = bridged_methods() if bridge else own_methods()
    begin, end = (BRIDGE_BEGIN, BRIDGE_END) if bridge else (BEGIN, END)
    lines = [
        begin,
        "",
        "| family | model class | " + " | ".join(f"`{m}`" for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for kind in TINY_FAMILIES:
        model = built(kind)
        row = [cells.get((m, kind), "?") for m in methods]
        lines.append(f"| {kind} (`{model.config.model_type}`) | {type(model).__name__} | " + " | ".join(row) + " |")
    legend = (
        f"{PASS}: every contract check passes (identity at init where claimed, only the method's parameters "
        "change, under its own optimiser too where it declares one, save/load round trip, another base model refused, "
        "merge = unmerged where mergeable, generate for decoders)."
    )
    notes = [*_bridge_footnotes(methods), "", PEFT_NOTE.format(peft.__version__)] if bridge else _footnotes(methods)
    return "\n".join([*lines, "", legend, "", *notes, "", end])  # a blank line before the notes: markdown's list needs one


def _markers(block: str) -> tuple[str, str]:
    return (BRIDGE_BEGIN, BRIDGE_END) if block.startswith(BRIDGE_BEGIN) else (BEGIN, END)


def page(bridge: bool = False) -> Path:
    """The documentation page that holds a table: docs/models.md, or docs/peft-bridge.md for the bridge's."""
    return BRIDGE_PAGE if bridge else MODELS_PAGE


def write_into(path: Path, block: str) -> None:
    begin, end = _markers(block)
    text = path.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{path} has no {begin} ... {end} markers; add them where the table belongs")
    head, rest = text.split(begin, 1)
    write_text(path, head + block + rest.split(end, 1)[1])


def page_block(bridge: bool = False) -> str:
    """A table block of its page, markers included: the main one, or the peft bridge's."""
    begin, end = (BRIDGE_BEGIN, BRIDGE_END) if bridge else (BEGIN, END)
    text = page(bridge).read_text()
    return begin + text.split(begin, 1)[1].split(end, 1)[0] + end


def bridge_comparable() -> bool:
    """Whether the bridge's table was generated with the installed peft (another one bridges other tuners).

    A block naming no peft version is not one this script wrote: it is compared, and so reported stale.
    """
    found = re.search(r"Generated with peft (\S+):", page_block(bridge=True))
    return found is None or found.group(1) == peft.__version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare the pages with the planned tables; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            page(b).name for b in (False, *([True] * bridge_comparable())) if page_block(bridge=b) != table(planned(), bridge=b)
        ]
        print(
            "the family tables are up to date"
            if not stale
            else f"family table differs in {', '.join(stale)}: run python -m benchmarks.family_table"
        )
        return 1 if stale else 0
    cells = measured()
    for bridge in (False, True):
        write_into(page(bridge), table(cells, bridge=bridge))
    unexpected = sorted(pair for pair, cell in cells.items() if cell != planned().get(pair))
    print(
        f"wrote the family tables into {MODELS_PAGE.name} and {BRIDGE_PAGE.name}"
        + (f"; unexpected cells: {unexpected}" if unexpected else "")
    )
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
