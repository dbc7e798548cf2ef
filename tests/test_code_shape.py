"""The code's shape, checked on the source: small functions, no branching on a method's, baseline's or task kind's name,
a small top level."""

from __future__ import annotations

import ast
import glob
from pathlib import Path

import zoo
from zoo.runner.baselines import list_baselines
from zoo.task_kinds import list_task_kinds

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
MAX_TOP_LEVEL_MODULES = 12


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _own_file(path: Path) -> set[str]:
    """The name a method's or baseline's own file may compare against: its own."""
    return {path.stem} if path.parent.name in ("methods", "baselines") else set()


def test_no_function_in_zoo_is_longer_than_sixty_lines():
    long = [
        f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for p in _sources("zoo")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long


def _name_comparisons(source: str, names: set[str], own: set[str]) -> list[tuple[int, list[str]]]:
    """``(line, names)`` of every comparison in ``source`` with one of ``names`` (other than ``own``), in any operand."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            named = {
                sub.value
                for side in (node.left, *node.comparators)
                for sub in ast.walk(side)
                if isinstance(sub, ast.Constant) and sub.value in names
            }
            if named - own:
                found.append((node.lineno, sorted(named)))
    return found


def test_nothing_compares_against_a_method_or_baseline_name_outside_its_own_file():
    names = set(zoo.list_methods()) | set(list_baselines())
    found = [
        f"{p.relative_to(ROOT)}:{line} compares with {named}"
        for p in _sources("zoo", "benchmarks")
        for line, named in _name_comparisons(p.read_text(), names, _own_file(p))
    ]
    assert not found


_LOOKUPS = ("get", "pop", "setdefault", "startswith", "endswith")


def _name_uses(source: str, names: set[str], own: set[str]) -> list[tuple[int, list[str]]]:
    """``(line, names)`` of every use of one of ``names`` (other than ``own``) as a branch or a key: a comparison in any
    operand (``==``, ``!=``, ``in``, ``is``), a dict's key, a subscript (``x["name"]``), a lookup call (``.get("name")``),
    a ``match`` case."""
    found = [(line, named) for line, named in _name_comparisons(source, names, own)]
    for node in ast.walk(ast.parse(source)):
        keys = []
        if isinstance(node, ast.Dict):
            keys = node.keys
        elif isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _LOOKUPS:
            keys = node.args[:1]
        elif isinstance(node, ast.MatchValue):
            keys = [node.value]
        named = {k.value for k in keys if isinstance(k, ast.Constant) and k.value in names} - own
        if named:
            found.append((node.lineno, sorted(named)))
    return sorted(found)


def _kind_file(path: Path) -> set[str]:
    """The names a task kind's own file may use: its own."""
    return {path.stem} if path.parent.name == "task_kinds" else set()


def test_nothing_in_zoo_uses_a_task_kinds_name_outside_its_own_file():
    names = set(list_task_kinds())
    found = [
        f"{p.relative_to(ROOT)}:{line} uses {named}"
        for p in _sources("zoo", "benchmarks")
        for line, named in _name_uses(p.read_text(), names, _kind_file(p))
    ]
    assert not found


def test_no_per_kind_flag_or_field_list_is_left_in_zoo():
    leftovers = [
        f"{p.relative_to(ROOT)}: {word}"
        for p in _sources("zoo", "benchmarks")
        for word in ("is_generation", "GENERATION_FIELDS")
        if word in p.read_text()
    ]
    assert not leftovers


def test_the_kind_check_finds_every_form_of_use():
    source = (
        'if k == "generation":\n    pass\nx = {"generation": 1}\ny = scores["generation"]\nz = d.get("generation")\n'
        'w = "generation" in kinds\nmatch k:\n    case "generation":\n        pass\nv = "generations.jsonl"\n'
    )
    assert [line for line, _ in _name_uses(source, {"generation"}, set())] == [1, 3, 4, 5, 6, 8]
    assert _name_uses(source, {"generation"}, {"generation"}) == []


def test_the_name_check_finds_each_form_of_branch():
    source = 'if m == "lora":\n    pass\nx = kind in ("ia3", "other")\ny = "zero_shot" != b\nz = m == "lorax"\n'
    assert _name_comparisons(source, {"lora", "ia3", "zero_shot"}, set()) == [(1, ["lora"]), (3, ["ia3"]), (4, ["zero_shot"])]
    assert _name_comparisons(source, {"lora"}, {"lora"}) == []


def test_every_package_under_zoo_is_listed_for_setuptools():
    """pyproject lists packages by hand: one left out installs without it (an editable install hides that)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "zoo").rglob("__init__.py")}
    found = {"pytest_zoo" if name == "zoo.testing.pytest_zoo" else name for name in found}  # shipped top level (package-dir)
    assert found - listed == set()


def test_every_config_under_conf_is_shipped():
    """package-data lists conf/'s YAML by glob, one per folder depth: a deeper folder (hydra/launcher/) needs its own."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["zoo.conf"]
    shipped = {name for pattern in patterns for name in glob.glob(pattern, root_dir=ROOT / "conf")}
    configs = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert "hydra/launcher/zoo_slurm.yaml" in configs and configs - shipped == set()


def test_zoo_top_level_holds_only_the_library_face():
    """zoo/'s own modules are the face (contract, registry, wrap, inject); the rest lives in its layer's package."""
    top = sorted(p.name for p in (ROOT / "zoo").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
