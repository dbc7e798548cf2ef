"""zoo's pytest plugin: ``pytest --zoo-contract=<method>[,<method>...]`` runs the method contract tests.

A plugin's own repository runs zoo's contract checks (:mod:`zoo.testing.contract`) on its
method with no zoo source clone: installed with zoo, this plugin is loaded by every pytest
run (entry-point group ``pytest11``). Without ``--zoo-contract`` it only adds its options: it
collects nothing and imports neither zoo nor torch (``import zoo`` takes seconds), which is
why it is a top-level package of its own (``pytest_zoo``, shipped from zoo/testing/pytest_zoo)
rather than a module of the zoo package, whose import would load zoo first.
"""

from __future__ import annotations

import pytest

SELECTION = pytest.StashKey[tuple[list[str], list[str]]]()
"""The (methods, families) ``--zoo-contract`` and ``--zoo-families`` chose, checked."""
CELLS = pytest.StashKey[dict[str, tuple[str, str, str]]]()
"""Each collected contract check's node id -> (test name, method, family), to print how to rerun a failed one."""
# the checks' own asserts show their values too (the messages name the promise: zoo.testing.promises)
pytest.register_assert_rewrite("zoo.testing.contract", "zoo.testing.promises")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zoo", "zoo method contract")
    group.addoption(
        "--zoo-contract",
        action="append",
        default=[],
        metavar="METHOD[,METHOD...]",
        help="run zoo's contract tests for these registered methods (built-in or from a plugin)",
    )
    group.addoption(
        "--zoo-families",
        action="append",
        default=[],
        metavar="FAMILY[,FAMILY...]",
        help="with --zoo-contract: only these tiny families (zoo.models.tiny.TINY_FAMILIES); default: all",
    )


def _names(values: list[str]) -> list[str]:
    return list(dict.fromkeys(name.strip() for value in values for name in value.split(",") if name.strip()))


def checked(methods: list[str], families: list[str]) -> tuple[list[str], list[str]]:
    """``(methods, families)`` to test, all families where none is given.

    Raises:
        pytest.UsageError: families without methods, an unregistered method (with the plugins that failed
            to load), an unknown family.
    """
    if not methods:
        raise pytest.UsageError("--zoo-families narrows --zoo-contract: name the methods too, --zoo-contract=<method>")
    import zoo
    from zoo.models.tiny import TINY_FAMILIES
    from zoo.registry import load_plugins

    registered = zoo.list_methods()
    unknown = [m for m in methods if m not in registered]
    if unknown:
        errors = load_plugins()
        failed = "; plugins that failed to load: " + "; ".join(f"{d}: {e}" for d, e in errors.items()) if errors else ""
        raise pytest.UsageError(
            f"--zoo-contract: unknown methods {unknown}; registered: {registered}{failed}. "
            "A plugin's method is registered once its package is installed (entry-point group zoo.methods)"
        )
    bad = [f for f in families if f not in TINY_FAMILIES]
    if bad:
        raise pytest.UsageError(f"--zoo-families: unknown tiny families {bad}; choose from {list(TINY_FAMILIES)}")
    return methods, families or list(TINY_FAMILIES)


def pytest_configure(config: pytest.Config) -> None:
    methods, families = _names(config.getoption("zoo_contract")), _names(config.getoption("zoo_families"))
    if not methods and not families:
        return
    config.stash[SELECTION] = checked(methods, families)
    import torch

    import zoo.testing.contract

    # Tiny models gain nothing from intra-op threads; on busy shared cores their spin-waiting made one
    # tiny forward pass 25x slower.
    torch.set_num_threads(1)
    config.args.append(zoo.testing.contract.__file__)


def selection(config: pytest.Config) -> tuple[list[str], list[str]]:
    """What the contract module checks: the options' choice, or every registered method on every family."""
    if SELECTION in config.stash:
        return config.stash[SELECTION]
    import zoo
    from zoo.models.tiny import TINY_FAMILIES

    return zoo.list_methods(), list(TINY_FAMILIES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SELECTION not in config.stash:
        return
    params = ((item, getattr(item, "callspec", None)) for item in items)
    config.stash[CELLS] = {
        item.nodeid: (item.name, spec.params["method"], spec.params["kind"])
        for item, spec in params
        if spec is not None and spec.params.get("method") is not None and "kind" in spec.params
    }


def rerun_command(cells: list[tuple[str, str, str]]) -> str:
    """The pytest command that runs exactly these contract checks again: ``(test name, method, family)`` each."""
    methods, families = (",".join(dict.fromkeys(cell[i] for cell in cells)) for i in (1, 2))
    return f'pytest --zoo-contract={methods} --zoo-families={families} -k "{" or ".join(cell[0] for cell in cells)}"'


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """After failed contract checks, the command that reruns them: their node ids point into the installed zoo package,
    which pytest cannot take back as a path, so the command selects them with ``-k``."""
    known = config.stash.get(CELLS, {})
    failed = [known[r.nodeid] for key in ("failed", "error") for r in terminalreporter.stats.get(key, []) if r.nodeid in known]
    if failed:
        terminalreporter.section("zoo contract: rerun the failed checks")
        terminalreporter.write_line(rerun_command(list(dict.fromkeys(failed))))
