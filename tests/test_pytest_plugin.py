"""zoo's pytest plugin (pytest_zoo): ``--zoo-contract`` collects the contract checks; without it, nothing and no zoo import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import pytest_zoo

import zoo
from zoo import registry
from zoo.models.tiny import TINY_FAMILIES


def _pytest(folder, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_without_the_option_it_collects_nothing_and_imports_neither_zoo_nor_torch(tmp_path):
    (tmp_path / "test_probe.py").write_text(
        textwrap.dedent("""
        import sys

        def test_probe(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("zoo")
            assert [m for m in ("zoo", "torch", "transformers") if m in sys.modules] == []
    """)
    )
    run = _pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("1 passed in ")


def test_the_option_runs_the_selected_cells_and_checks_declared_refusals(tmp_path):
    run = _pytest(tmp_path, "--zoo-contract=lora,prefix_tuning", "--zoo-families=tiny-deberta-v2", "-rsx")
    assert run.returncode == 0, run.stdout + run.stderr
    # lora: 7 checks on an encoder (the merged model's tensors too: it is mergeable); prefix_tuning declares it needs a
    # key/value cache, which DeBERTa-v2 takes none of: only the refusal check runs for it; no decoder: the generate check
    # skips, saying why, and so do the own-optimiser and positions checks (no selected method declares either)
    assert run.stdout.strip().splitlines()[-1].startswith("8 passed, 3 skipped")
    assert "no selected family is a decoder that a selected method supports" in run.stdout


def test_without_options_the_contract_module_checks_every_method_on_every_family(pytestconfig):
    assert pytest_zoo.selection(pytestconfig) == (zoo.list_methods(), list(TINY_FAMILIES))


def test_bad_selections_are_usage_errors_that_say_what_is_valid(monkeypatch):
    assert pytest_zoo.checked(["lora"], []) == (["lora"], list(TINY_FAMILIES))
    assert pytest_zoo.checked(["lora"], ["tiny-bert"]) == (["lora"], ["tiny-bert"])
    with pytest.raises(pytest.UsageError, match="--zoo-families narrows --zoo-contract: name the methods too"):
        pytest_zoo.checked([], ["tiny-bert"])
    with pytest.raises(pytest.UsageError, match=r"unknown tiny families \['tiny-t5'\]; choose from \['tiny-llama', "):
        pytest_zoo.checked(["lora"], ["tiny-t5"])
    with pytest.raises(
        pytest.UsageError, match=r"unknown methods \['lroa'\]; registered: \['adapter', .*'lora'.*\]\. A plugin's"
    ):
        pytest_zoo.checked(["lroa"], [])
    monkeypatch.setattr(registry, "_plugin_errors", {"zoo-broken": "ImportError: needs libfoo"})
    with pytest.raises(pytest.UsageError, match="plugins that failed to load: zoo-broken: ImportError: needs libfoo"):
        pytest_zoo.checked(["broken_method"], [])


def test_names_split_on_commas_across_repeated_options():
    assert pytest_zoo._names(["lora, ia3", "gift", "lora", ""]) == ["lora", "ia3", "gift"]
