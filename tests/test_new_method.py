"""``zoo new-method NAME``: the plugin repository it writes, its refusals, and the method in it checked by zoo's contract.

The default tier imports the written method in this process and runs its formula tests and the
contract checks on two families (one whose layers have biases, one whose layers have none); the
``full`` tier installs the repository with pip and runs ``pytest --zoo-contract=NAME`` in it as its
README says, and a broken copy whose merge gives bias-free layers a bias, which must fail naming
that tensor and print a command that reruns exactly the failed check.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from plugin_install import install_offline
from scaffold_helpers import broken_copy

import zoo
from zoo import registry
from zoo.runner import new_method
from zoo.runner.run import main as zoo_main
from zoo.testing import contract, tiny_batch
from zoo.testing.promises import BrokenPromise

BIAS_FREE, WITH_BIAS = "tiny-llama", "tiny-gpt2"


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))


def _import(folder: Path, module: str, monkeypatch):
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module(module)


def test_the_repository_has_the_entry_point_the_method_its_tests_a_readme_and_a_ci_that_runs_the_contract():
    files = new_method.plugin_files("scale_shift")
    assert set(files) == {
        "pyproject.toml",
        "README.md",
        "zoo_scale_shift.py",
        "tests/test_formula.py",
        ".github/workflows/ci.yml",
        ".gitignore",
    }
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "zoo-scale-shift"
    assert project["project"]["entry-points"]["zoo.methods"] == {"scale_shift": "zoo_scale_shift"}
    major, minor = zoo.__version__.split(".")[:2]
    assert project["project"]["dependencies"] == [f"zoo-peft>={major}.{minor},<{major}.{int(minor) + 1}"]
    assert '@register("scale_shift", config=ScaleShiftConfig,' in files["zoo_scale_shift.py"]
    assert re.search(r"^\s+run: pytest --zoo-contract=scale_shift$", files[".github/workflows/ci.yml"], re.MULTILINE)
    assert "pytest --zoo-contract=scale_shift" in files["README.md"]


@pytest.mark.parametrize("name", ["SSF", "1scale", "my-scale", "_scale", "scale shift", "café", ""])
def test_an_invalid_name_is_refused_naming_the_valid_forms(name, tmp_path):
    with pytest.raises(
        ValueError,
        match=rf"method name {re.escape(repr(name))} is invalid: use lower-case letters, digits and "
        r"'_', starting with a letter \(e.g. 'ssf', 'scale_shift', 'lora2'\)",
    ):
        new_method.write_plugin(name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_registered_name_is_refused_naming_who_registered_it(tmp_path):
    with pytest.raises(ValueError, match=r"method name 'lora' is already registered \(by zoo\); choose another name"):
        new_method.write_plugin("lora", tmp_path / "out")


def test_a_folder_that_holds_anything_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    with pytest.raises(
        FileExistsError,
        match="'.*mine' is a folder that is not empty; zoo new-method writes a new plugin "
        r"repository only into a new or empty folder \(choose another with --dir\)",
    ):
        new_method.write_plugin("ssf", tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"] and (
        tmp_path / "mine" / "notes.txt"
    ).read_text() == "my notes"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        new_method.write_plugin("ssf", tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]  # no staging folder left behind


def test_zoo_new_method_writes_into_an_empty_folder_or_zoo_name_and_refuses_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["zoo", "new-method", "ssf"])
    with pytest.raises(SystemExit) as done:
        zoo_main()
    assert (
        done.value.code == 0
        and "next: cd zoo-ssf && pip install -e '.[test]' && pytest --zoo-contract=ssf" in capsys.readouterr().out
    )
    assert {p.relative_to(tmp_path / "zoo-ssf").as_posix() for p in (tmp_path / "zoo-ssf").rglob("*") if p.is_file()} == set(
        new_method.plugin_files("ssf")
    )
    (tmp_path / "empty").mkdir()
    assert new_method.main(["other_scale", "--dir", "empty"]) == 0 and (tmp_path / "empty" / "zoo_other_scale.py").is_file()
    assert new_method.main(["ssf"]) == 2
    assert "zoo new-method: 'zoo-ssf' is a folder that is not empty" in capsys.readouterr().err


def test_the_written_method_passes_its_formula_tests_and_the_contract_in_process(tmp_path, monkeypatch, clean_registry):
    folder = new_method.write_plugin("scaffold_ok", tmp_path / "plugin")
    _import(folder, "zoo_scaffold_ok", monkeypatch)
    formula = _import(folder / "tests", "test_formula", monkeypatch)
    for name in dir(formula):
        if name.startswith("test_"):
            getattr(formula, name)()
    for kind in (BIAS_FREE, WITH_BIAS):
        contract.test_exactly_the_method_parameters_require_grad("scaffold_ok", kind)
        contract.test_identity_at_init("scaffold_ok", kind, tiny_batch())
        contract.test_one_step_changes_only_the_method_parameters("scaffold_ok", kind, tiny_batch())
        contract.test_save_load_round_trip("scaffold_ok", kind, tiny_batch(), tmp_path / kind)
        contract.test_merge_equals_unmerged("scaffold_ok", kind, tiny_batch())  # bias-free: the declared refusal is checked
        contract.test_generate_keeps_the_base_contract("scaffold_ok", kind, tiny_batch())
    contract.test_merged_model_has_exactly_the_base_tensors("scaffold_ok", WITH_BIAS)
    with pytest.raises(pytest.skip.Exception, match="refuses_merge declares this adapter cannot merge: shift=True on 4 layers"):
        contract.test_merged_model_has_exactly_the_base_tensors("scaffold_ok", BIAS_FREE)


def test_a_broken_copy_whose_merge_adds_a_bias_fails_the_contract_naming_the_tensor(tmp_path, monkeypatch, clean_registry):
    folder = new_method.write_plugin("scaffold_broken", tmp_path / "plugin")
    module = folder / "zoo_scaffold_broken.py"
    module.write_text(broken_copy(module.read_text()))
    _import(folder, "zoo_scaffold_broken", monkeypatch)
    contract.test_merge_equals_unmerged("scaffold_broken", BIAS_FREE, tiny_batch())  # the outputs alone do not show it
    with pytest.raises(BrokenPromise) as failure:
        contract.test_merged_model_has_exactly_the_base_tensors("scaffold_broken", BIAS_FREE)
    message = str(failure.value)
    assert message.startswith(
        "method 'scaffold_broken' on tiny-llama breaks the promise mergeable=True (the merged model runs the "
        "base model's own modules, with exactly its tensors"
    )
    assert (
        "tensors the base model lacks: ['model.layers.0.self_attn.q_proj.bias', 'model.layers.0.self_attn.v_proj.bias',"
        in message
    )
    contract.test_merged_model_has_exactly_the_base_tensors("scaffold_broken", WITH_BIAS)  # layers with a bias merge as before


def _pytest(folder: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.full
def test_the_installed_repository_passes_its_contract_as_written_and_a_broken_copy_fails_naming_the_bias(tmp_path):
    project = new_method.write_plugin("ssf", tmp_path / "zoo-ssf")
    install_offline(project, tmp_path / "site")
    run = _pytest(project, tmp_path / "site", "--zoo-contract=ssf")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert re.fullmatch(r"\d{3} passed, \d+ skipped in .*", run.stdout.strip().splitlines()[-1]), run.stdout[-2000:]

    broken = new_method.write_plugin("ssf", tmp_path / "broken")
    (broken / "zoo_ssf.py").write_text(broken_copy((broken / "zoo_ssf.py").read_text()))
    install_offline(broken, tmp_path / "broken-site")
    run = _pytest(broken, tmp_path / "broken-site", "--zoo-contract=ssf", f"--zoo-families={BIAS_FREE}")
    assert run.returncode == 1
    assert "tensors the base model lacks: ['model.layers.0.self_attn.q_proj.bias'" in run.stdout
    rerun = run.stdout.split("zoo contract: rerun the failed checks =")[1].splitlines()[1]
    assert (
        rerun
        == f'pytest --zoo-contract=ssf --zoo-families={BIAS_FREE} -k "test_merged_model_has_exactly_the_base_tensors[ssf-{BIAS_FREE}]"'
    )
    again = _pytest(broken, tmp_path / "broken-site", *shlex.split(rerun)[1:])
    assert again.stdout.strip().splitlines()[-1].startswith("1 failed, "), again.stdout[-2000:]


def test_the_written_code_passes_ruff_s_checks_and_format(tmp_path):
    folder = new_method.write_plugin("ssf", tmp_path / "plugin")
    for command in (["check", "--select", "E4,E7,E9,F,I,B,UP"], ["format", "--check"]):
        run = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "."], cwd=folder, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stdout + run.stderr
