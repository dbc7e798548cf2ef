"""docs/plugins/stable-api.md: every name it lists exists where it says, and the plugins zoo writes or shows import only those."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from zoo.runner.new_method import plugin_files

PAGE = Path(__file__).parents[1] / "docs" / "plugins" / "stable-api.md"
GUIDE = Path(__file__).parents[1] / "docs" / "plugins" / "writing-a-plugin.md"


def listed(text: str) -> dict[str, set[str]]:
    """``{module: names}`` of the page's "Importable names": a ``### `module``` heading, then ``- `name`, `name`: what`` lines."""
    if "\n## Importable names\n" not in text:
        raise ValueError("the page has no '## Importable names' section")
    section = text.split("\n## Importable names\n", 1)[1].split("\n## ", 1)[0]
    names: dict[str, set[str]] = {}
    for block in section.split("\n### ")[1:]:
        heading, *lines = block.splitlines()
        module = re.fullmatch(r"`([\w.]+)`", heading.strip())[1]
        names[module] = {n for line in lines if line.startswith("- ") for n in re.findall(r"`(\w+)`", line.split(":", 1)[0])}
    return names


def imported(source: str) -> set[tuple[str, str]]:
    """``(module, name)`` of every ``from zoo... import name`` in ``source``."""
    return {
        (node.module, alias.name)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "zoo"
        for alias in node.names
    }


def test_every_listed_name_exists_and_imports():
    names = listed(PAGE.read_text())
    assert {"zoo", "zoo.inject", "zoo.models.arch", "zoo.testing"} <= set(names) and all(names.values())
    missing = [
        f"{module}.{name}"
        for module, found in names.items()
        for name in sorted(found)
        if not hasattr(importlib.import_module(module), name)
    ]
    assert missing == [], f"docs/plugins/stable-api.md lists names that do not exist: {missing}"


def test_the_scaffold_and_the_guide_s_example_import_only_listed_names():
    names = listed(PAGE.read_text())
    guide = [m[1] for m in re.finditer(r"^```python\n(# file: \S+\n.*?)^```$", GUIDE.read_text(), re.DOTALL | re.MULTILINE)]
    sources = [*guide, *(text for path, text in plugin_files("ssf").items() if path.endswith(".py"))]
    assert len(sources) == 3
    unlisted = sorted(pair for source in sources for pair in imported(source) if pair[1] not in names.get(pair[0], set()))
    assert unlisted == []


def test_the_parser_reads_names_under_module_headings_only():
    text = "# API\n\n## Importable names\n\n### `zoo.x`\n\n- `a`, `b`: the `c` of it.\n\n## Beside\n\n- `d`: no.\n"
    assert listed(text) == {"zoo.x": {"a", "b"}}
    with pytest.raises(ValueError, match="no '## Importable names' section"):
        listed("# nothing listed\n")
