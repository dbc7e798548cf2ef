"""The guide's plugin (docs/plugins/writing-a-plugin.md), written from its code blocks alone, installs and passes zoo's contract
tests in its own folder.

The blocks whose first line is ``# file: <path>`` are the plugin's files: the test writes them
out as they are, so the document is what is tested. The package is installed with pip into a
folder of tmp_path put on the child's PYTHONPATH (no index, no build isolation: no network),
so the running environment is never changed and there is nothing to undo after a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_install import install_offline

GUIDE = Path(__file__).parents[1] / "docs" / "plugins" / "writing-a-plugin.md"
FILE_BLOCK = re.compile(r"^```\w*\n# file: (\S+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
FAMILIES = "tiny-llama,tiny-gpt2,tiny-bert"
EXPECTED = 23
"""The example's cells on these families: it supports all three, so six checks each (trainable, one step,
save/load, another base refused, merge, the merged model's tensors), identity at init on the three, generate
on the two decoders; the refusal check has no pair and is the one skip."""


def plugin_files(text: str) -> dict[str, str]:
    """``{path: content}`` of the document's ``# file:`` code blocks."""
    files = {path: body for path, body in ((m[1], f"# file: {m[1]}\n{m[2]}") for m in FILE_BLOCK.finditer(text))}
    if not files:
        raise ValueError(f"{GUIDE} has no code block starting '# file: <path>'")
    return files


def contract_command(text: str) -> str:
    """The method name of the document's ``pytest --zoo-contract=<name>`` command for the method its ``# file:`` blocks register."""
    registered = set(re.findall(r'^@register\("([a-z][a-z0-9_]*)"', "".join(plugin_files(text).values()), re.MULTILINE))
    found = [name for name in re.findall(r"^pytest --zoo-contract=([a-z][a-z0-9_]*)\s", text, re.MULTILINE) if name in registered]
    if not found:
        raise ValueError(
            f"{GUIDE} shows no 'pytest --zoo-contract=<name>' command for the method its plugin registers {registered}"
        )
    return found[0]


def test_the_documented_plugin_passes_the_contract_tests_from_its_own_folder(tmp_path):
    text = GUIDE.read_text()
    project, site = tmp_path / "plugin", tmp_path / "site"
    for path, content in plugin_files(text).items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(content)
    assert {"pyproject.toml", "zoo_scale.py"} <= set(plugin_files(text))
    install_offline(project, site)
    assert list(site.glob("zoo_scale-*.dist-info/entry_points.txt")), "pip installed no zoo_scale distribution"

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTEST_ADDOPTS", None)
    name = contract_command(text)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", f"--zoo-contract={name}", f"--zoo-families={FAMILIES}", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    # 3 skipped: checks of capabilities the example does not declare (its own optimiser, positions), each saying why
    assert re.fullmatch(rf"{EXPECTED} passed, 3 skipped in [\d.]+s( \(.*\))?", summary), run.stdout[-4000:]


def test_the_document_parsers_find_nothing_in_a_document_without_blocks():
    with pytest.raises(ValueError, match="has no code block starting '# file: <path>'"):
        plugin_files("# Contributing\n```python\nprint(1)\n```\n")
    plugin = '```python\n# file: m.py\n@register("scale", config=C)\n```\n'
    with pytest.raises(
        ValueError, match=r"shows no 'pytest --zoo-contract=<name>' command for the method its plugin registers \{'scale'\}"
    ):
        contract_command(plugin + "pytest --zoo-contract=ssf  # another method\n")
    assert contract_command(plugin + "pytest --zoo-contract=ssf\npytest --zoo-contract=scale\n") == "scale"
