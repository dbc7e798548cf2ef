"""A teammate reads a sweep: every file zoo writes follows the umask (safetensors' 0600 included), and the read-only
consumers, ``zoo-report`` and ``load_adapter``, work on a folder they cannot write to, as another user."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from app_config import app_config

from zoo.io.export_cli import main as export_main
from zoo.runner.run import run

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=16", "task.n_eval=8", "trainer.checkpoint_every=2"]
NOBODY = 65534
READ = """
import contextlib, io, logging, os, pathlib, sys, tempfile, torch
import zoo
from zoo.io.merged_export import read_run
from zoo.models.load import ModelConfig, load_model
from zoo.report.table import main
run = sys.argv[1] + "/method=lora"


def read(report_args):
    assert main(report_args) == 0
    base, tokenizer = load_model(ModelConfig(**read_run(pathlib.Path(run)).model_config))
    model = zoo.load_adapter(base, run + "/adapter")
    ids = tokenizer(["the movie was good ."], return_tensors="pt").input_ids
    with torch.no_grad():
        return float(model(input_ids=ids).logits[0, -1].sum())


if sys.argv[2] != "self":
    # the interpreter may sit in a folder only root reaches, and numpy and transformers import some modules on first
    # use: read once as root, its report written elsewhere, so that every module is loaded; then become the other user
    with tempfile.TemporaryDirectory() as elsewhere, contextlib.redirect_stdout(io.StringIO()):
        read([sys.argv[1], "--out", elsewhere])
    os.setgid(int(sys.argv[2]))
    os.setuid(int(sys.argv[2]))
print("logit", read([sys.argv[1]]))
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two runs (the prompt and the head formulation) and the exports of the first, written under umask 022."""
    folder = tmp_path_factory.mktemp("sweep")
    old = os.umask(0o022)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
            run(app_config(*CHEAP), folder / "method=lora")
            run(app_config(*CHEAP, "task.formulation=head"), folder / "head")
            assert export_main([str(folder / "method=lora"), "--merged", str(folder / "merged")]) == 0
            assert export_main([str(folder / "method=lora"), "--peft", str(folder / "peft")]) == 0
    finally:
        os.umask(old)
    return folder


def test_every_file_zoo_writes_follows_the_umask(sweep):
    modes = {p.relative_to(sweep).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in sweep.rglob("*") if p.is_file()}
    for name in (
        "method=lora/adapter/adapter_model.safetensors",
        "method=lora/checkpoint/adapter_model.safetensors",
        "head/head.safetensors",
        "merged/model.safetensors",
        "peft/adapter_model.safetensors",
        "method=lora/metrics.json",
    ):
        assert name in modes
    assert {name: oct(mode) for name, mode in modes.items() if mode != 0o644} == {}
    folders = {p.relative_to(sweep).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in sweep.rglob("*") if p.is_dir()}
    assert {name: oct(mode) for name, mode in folders.items() if mode != 0o755} == {}


def _as_another_user(folder: Path, home: Path) -> subprocess.CompletedProcess:
    """``READ`` on ``folder`` as user nobody where this process may switch users (root), else as this user on a copy it has
    made read-only: either way nothing in it can be written."""
    env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl")}
    user = str(NOBODY) if os.geteuid() == 0 else "self"
    if user == "self":
        for path in (folder, *folder.rglob("*")):
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    return subprocess.run(
        [sys.executable, "-c", READ, str(folder), user], env=env, capture_output=True, text=True, timeout=300, cwd=home
    )


def test_report_and_load_adapter_work_on_a_teammates_sweep_they_cannot_write(sweep, tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="zoo-shared-"))  # outside the tests' private (0700) folder, so another user reaches it
    try:
        shared.chmod(0o755)
        copy = shared / "sweep"
        shutil.copytree(sweep / "method=lora", copy / "method=lora")  # the files' modes as zoo wrote them
        home = shared / "home"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        done = _as_another_user(copy, home)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "| lora" in done.stdout  # the table, printed though it could not be written beside the runs
        assert f"wrote no report files into {copy}" in done.stderr and "give --out a folder" in done.stderr
        assert not (copy / "report.md").exists()
        logit = float(done.stdout.split("logit ")[1])
        assert logit == pytest.approx(_logit(sweep / "method=lora"), abs=1e-5)
    finally:
        for path in (shared, *shared.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(shared)


def _logit(run_dir: Path) -> float:
    import torch

    import zoo
    from zoo.io.merged_export import read_run
    from zoo.models.load import ModelConfig, load_model

    base, tokenizer = load_model(ModelConfig(**read_run(run_dir).model_config))
    model = zoo.load_adapter(base, run_dir / "adapter")
    ids = tokenizer(["the movie was good ."], return_tensors="pt").input_ids
    with torch.no_grad():
        return float(model(input_ids=ids).logits[0, -1].sum())
