"""The declared version ranges, the pins of the published figures and the lowest pins cannot drift apart.

pyproject.toml declares what zoo supports; constraints.txt pins what benchmarks/RESULTS.md was
measured with; constraints-lowest.txt pins the lower bounds, the environment of the low test pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
PROJECT = tomllib.loads(PYPROJECT)["project"]
CORE = {canonicalize_name(Requirement(line).name): Requirement(line) for line in PROJECT["dependencies"]}
DECLARED = CORE | {
    canonicalize_name(Requirement(line).name): Requirement(line)
    for extra in PROJECT["optional-dependencies"].values()
    for line in extra
}


def pins(name: str) -> dict[str, Version]:
    """The ``package==version`` lines of a constraints file, by canonical name."""
    found = {}
    for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            package, sep, version = line.partition("==")
            assert sep and package.strip() and version.strip(), f"{name}:{number}: expected package==version, got {line!r}"
            found[canonicalize_name(package.strip())] = Version(version.strip())
    return found


def lower_bound(requirement: Requirement) -> Version | None:
    bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return max(bounds) if bounds else None


def marked_untested(name: str) -> bool:
    """Whether pyproject.toml's dependency line of ``name`` says its lower bound is not tested."""
    for line in PYPROJECT.splitlines():
        if (match := re.match(r'\s*"([A-Za-z0-9_.-]+)[^"]*",\s*#(.*)', line)) and canonicalize_name(match[1]) == name:
            return "lower bound not tested" in match[2]
    return False


def test_figures_pins_lie_in_the_declared_ranges():
    pinned = pins("constraints.txt")
    outside = {name: str(v) for name, v in pinned.items() if name in DECLARED and not DECLARED[name].specifier.contains(v)}
    assert not outside, f"constraints.txt pins versions outside pyproject.toml's ranges: {outside}"
    assert CORE.keys() <= pinned.keys(), f"constraints.txt lacks {sorted(CORE.keys() - pinned.keys())}"


def test_lowest_pins_are_the_declared_lower_bounds():
    pinned = pins("constraints-lowest.txt")
    assert pinned.keys() <= DECLARED.keys(), f"constraints-lowest.txt pins undeclared {sorted(pinned.keys() - DECLARED.keys())}"
    differ = {name: (str(v), str(lower_bound(DECLARED[name]))) for name, v in pinned.items() if v != lower_bound(DECLARED[name])}
    assert not differ, f"constraints-lowest.txt pin vs pyproject.toml lower bound: {differ}"
    unaccounted = sorted(name for name in CORE if name not in pinned and not marked_untested(name))
    assert not unaccounted, (
        f"dependencies neither pinned in constraints-lowest.txt nor marked 'lower bound not tested': {unaccounted}"
    )


def test_results_md_names_the_pinned_versions():
    """The versions benchmarks/RESULTS.md records are constraints.txt's, and it points readers there."""
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    machine = re.search(r"^- Machine: .*?; (.*)\.$", text, re.MULTILINE)
    assert machine, "benchmarks/RESULTS.md has no '- Machine: ...; name version, ...' line"
    recorded = {
        canonicalize_name(name): Version(v).public for name, v in (item.rsplit(" ", 1) for item in machine[1].split(", "))
    }
    recorded.pop("zoo-peft")
    pinned = pins("constraints.txt")
    differ = {name: (v, str(pinned.get(name))) for name, v in recorded.items() if pinned.get(name) != Version(v)}
    assert not differ, f"RESULTS.md records vs constraints.txt pins: {differ}"
    assert "constraints.txt" in text
