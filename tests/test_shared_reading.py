"""A teammate reads a sweep: every file zoo writes follows the umask (safetensors' 0600 included), and the read-only
consumers, ``zoo-report`` and ``load_adapter``, work on a folder the reader cannot write to."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from app_config import app_config

from zoo.io.export_cli import main as export_main
from zoo.runner.run import run

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=16", "task.n_eval=8", "trainer.checkpoint_every=2"]
READ = """
import ctypes, pathlib, sys, torch
import zoo
from zoo.io.merged_export import read_run
from zoo.models.load import ModelConfig, load_model
from zoo.report.table import main
run = sys.argv[1] + "/method=lora"


class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class Sets(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_write_override():
    # root writes to read-only files through CAP_DAC_OVERRIDE (bit 1): give it up, reading stays as it was
    libc = ctypes.CDLL(None, use_errno=True)
    header, sets = Header(0x20080522, 0), (Sets * 2)()
    assert libc.capget(ctypes.byref(header), sets) == 0, ctypes.get_errno()
    for name in ("effective", "permitted", "inheritable"):
        setattr(sets[0], name, getattr(sets[0], name) & ~(1 << 1))
    assert libc.capset(ctypes.byref(header), sets) == 0, ctypes.get_errno()


if sys.argv[2] == "root":
    drop_write_override()
assert main([sys.argv[1]]) == 0
base, tokenizer = load_model(ModelConfig(**read_run(pathlib.Path(run)).model_config))
model = zoo.load_adapter(base, run + "/adapter")
ids = tokenizer(["the movie was good ."], return_tensors="pt").input_ids
with torch.no_grad():
    print("logit", float(model(input_ids=ids).logits[0, -1].sum()))
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


def _unable_to_write(folder: Path, home: Path) -> subprocess.CompletedProcess:
    """``READ`` on ``folder`` made read-only, by a process that cannot write it: this user, or root without its
    override of file permissions."""
    for path in (folder, *folder.rglob("*")):
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    user = "root" if os.geteuid() == 0 else "self"
    return subprocess.run(
        [sys.executable, "-c", READ, str(folder), user],
        env={**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl")},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home,
    )


def test_report_and_load_adapter_work_on_a_teammates_sweep_they_cannot_write(sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep / "method=lora", copy / "method=lora")  # the files' modes as zoo wrote them
    home = tmp_path / "home"
    home.mkdir()
    try:
        done = _unable_to_write(copy, home)
    finally:
        for path in (copy, *copy.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| lora" in done.stdout  # the table, printed though it could not be written beside the runs
    assert f"wrote no report files into {copy}" in done.stderr and "give --out a folder" in done.stderr
    assert not (copy / "report.md").exists()
    logit = float(done.stdout.split("logit ")[1])
    assert logit == pytest.approx(_logit(sweep / "method=lora"), abs=1e-5)


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
