"""A profile's search space (``conf/search/<profile>.yaml``): per method the grid of Hydra overrides its trials try.

The file holds a ``default`` grid, for every searched method (those of ``+sweep=all_methods``,
plugins included) that ``methods`` does not name, and ``methods``, a grid of a method's own
(its rank, its virtual tokens). A grid maps an override key to the values tried; a method's
trials are every combination of them, so its budget is the product of the values' counts.
Methods compared after a search must have had the same budget: :func:`load_space` refuses a
space where any two differ, naming them.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from importlib.resources import files
from itertools import product
from pathlib import Path

from omegaconf import OmegaConf

import zoo

NOT_SEARCHED = "peft_*"
"""Methods left out of a search, as ``+sweep=all_methods`` leaves them out of the suite (conf/sweep/all_methods.yaml)."""
Grid = dict[str, list]


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    grids: dict[str, Grid]
    """Every searched method -> its grid, ``default`` filled in."""

    @property
    def trials(self) -> int:
        """Trials per method (the same for all: :func:`load_space` checked it)."""
        return trial_count(next(iter(self.grids.values())))

    def groups(self) -> list[tuple[list[str], Grid]]:
        """Methods that share a grid, together: each group is one Hydra multirun (``method=a,b`` times the grid)."""
        out: dict[str, tuple[list[str], Grid]] = {}
        for method, grid in self.grids.items():
            out.setdefault(repr(sorted(grid.items())), ([], grid))[0].append(method)
        return list(out.values())


def trial_count(grid: Grid) -> int:
    return math.prod(len(values) for values in grid.values())


def trials(grid: Grid) -> list[dict]:
    """Every combination of the grid's values, as ``{key: value}``."""
    return [dict(zip(grid, values)) for values in product(*grid.values())]


def searched_methods() -> list[str]:
    return [m for m in zoo.list_methods() if not fnmatch.fnmatch(m, NOT_SEARCHED)]


def space_path(profile: str) -> Path:
    return Path(str(files("zoo.conf").joinpath("search", f"{profile}.yaml")))


def load_space(path: Path, methods: list[str] | None = None) -> SearchSpace:
    """The search space in ``path`` for ``methods`` (default: :func:`searched_methods`).

    Raises:
        SystemExit: a file that is not a search space, a grid naming an unknown method or holding
            no values, or methods with unequal trial budgets (naming each method's count).
    """
    methods = searched_methods() if methods is None else methods
    if not path.is_file():
        raise SystemExit(f"tune: no search space at {path}; write one (see conf/search/smoke.yaml)")
    data = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(data, dict) or set(data) - {"default", "methods"} or "default" not in data:
        raise SystemExit(f"tune: {path} must hold `default:` (a grid) and optionally `methods:` (method -> grid), got {data!r}")
    own = data.get("methods") or {}
    unknown = sorted(set(own) - set(methods))
    if unknown:
        raise SystemExit(f"tune: {path} has grids for {unknown}, which are not searched methods; searched: {methods}")
    grids = {m: own.get(m, data["default"]) for m in methods}
    for method, grid in grids.items():
        if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
            raise SystemExit(f"tune: {path}: the grid of {method} must map override keys to non-empty lists of values, "
                             f"got {grid!r}")
    counts = {m: trial_count(g) for m, g in grids.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{m} {n}" for m, n in sorted(counts.items(), key=lambda item: (item[1], item[0])))
        raise SystemExit(f"tune: {path} gives the methods unequal trial budgets ({listed}); every method needs the same number "
                         f"of trials (the product of its grid's value counts) for their best trials to be compared")
    return SearchSpace(path, grids)
