"""A profile's search space (``conf/search/<profile>.yaml``): per method the grid its trials try, and the halving schedule.

The file holds a ``default`` grid, for every searched method (those of ``+sweep=all_methods``,
plugins included) that ``methods`` does not name; ``methods``, a grid of a method's own (the
closed-form head's ridge: it has no learning rate); and ``halving``, the successive-halving
schedule (zoo.training.halving: ``eta`` and each rung's share of the task's training steps). A
grid maps an override key to the values tried; a method's first rung tries every combination,
and each later rung the best ``1/eta`` of the one before, so a method's budget follows from the
size of its grid. Methods compared after a search must have had the same budget: :func:`load_space`
refuses a space where any two differ, naming them. Every method that trains by gradient steps
searches ``trainer.learning_rate_scale`` (times its registered default rate), a gradient-free one
some other key of its grid (its regulariser), over at least 6 log-spaced values spanning at least
2 decades (zoo.training.halving.check_log_grid).
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
from zoo.training.halving import Halving, check_log_grid

NOT_SEARCHED = "peft_*"
"""Methods left out of a search, as ``+sweep=all_methods`` leaves them out of the suite (conf/sweep/all_methods.yaml)."""
RATE_KEY = "trainer.learning_rate_scale"
"""The key every gradient-trained method's grid searches (zoo.training.learning_rate: a multiplier on its own rate)."""
Grid = dict[str, list]


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    grids: dict[str, Grid]
    """Every searched method -> its grid, ``default`` filled in."""
    halving: Halving

    @property
    def configurations(self) -> int:
        """Configurations per method at the first rung (the same for all: :func:`load_space` checked it)."""
        return trial_count(next(iter(self.grids.values())))

    @property
    def trials(self) -> int:
        """Trials per method over every rung."""
        return self.halving.trials(self.configurations)

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


def searched_methods(bridged: bool = False) -> list[str]:
    """The methods a search covers: those of ``+sweep=all_methods``, and with ``bridged`` the peft bridge's too."""
    return [m for m in zoo.list_methods() if bridged or not fnmatch.fnmatch(m, NOT_SEARCHED)]


def space_path(profile: str) -> Path:
    return Path(str(files("zoo.conf").joinpath("search", f"{profile}.yaml")))


def _check_rate_grid(path: Path, method: str, grid: Grid) -> None:
    """A gradient-trained method's grid searches its rate, a gradient-free one's some key, over a log-spaced grid."""
    keys = [RATE_KEY] if not zoo.get_method(method).gradient_free else list(grid)
    problems = []
    for key in keys:
        try:
            check_log_grid(grid.get(key, []), f"{method}'s {key}")
            return
        except ValueError as err:
            problems.append(str(err))
    raise SystemExit(f"tune: {path}: " + "; ".join(problems))


def load_space(path: Path, methods: list[str] | None = None) -> SearchSpace:
    """The search space in ``path`` for ``methods`` (default: :func:`searched_methods`).

    Raises:
        SystemExit: a file that is not a search space, a grid naming an unknown method or holding
            no values, a rate grid that is not log-spaced over 6 values and 2 decades, a bad halving
            schedule, or methods with unequal trial budgets (naming each method's count).
    """
    searched = searched_methods(bridged=True)
    methods = searched_methods() if methods is None else methods
    if not path.is_file():
        raise SystemExit(f"tune: no search space at {path}; write one (see conf/search/smoke.yaml)")
    data = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(data, dict) or set(data) - {"default", "methods", "halving"} or not {"default", "halving"} <= set(data):
        raise SystemExit(
            f"tune: {path} must hold `default:` (a grid), `halving:` (eta, fractions) and optionally `methods:` "
            f"(method -> grid), got {data!r}"
        )
    own = data.get("methods") or {}
    unknown = sorted(set(own) - set(searched))
    if unknown:
        raise SystemExit(f"tune: {path} has grids for {unknown}, which are not searched methods; searched: {searched}")
    grids = {m: own.get(m, data["default"]) for m in methods}
    for method, grid in grids.items():
        if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
            raise SystemExit(
                f"tune: {path}: the grid of {method} must map override keys to non-empty lists of values, got {grid!r}"
            )
        _check_rate_grid(path, method, grid)
    try:
        halving = Halving(data["halving"].get("eta"), tuple(data["halving"].get("fractions") or ()))
    except (AttributeError, ValueError) as err:
        raise SystemExit(f"tune: {path}: {err}") from None
    counts = {m: halving.trials(trial_count(g)) for m, g in grids.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{m} {n}" for m, n in sorted(counts.items(), key=lambda item: (item[1], item[0])))
        raise SystemExit(
            f"tune: {path} gives the methods unequal trial budgets ({listed}); every method needs the same number "
            f"of trials (the halving rungs of its grid's combinations) for their best trials to be compared"
        )
    return SearchSpace(path, grids, halving)
