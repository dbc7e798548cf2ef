"""User errors (config, input, environment) end every command with one line naming the value and the fix, and exit status 2;
``HYDRA_FULL_ERROR=1`` or ``--debug`` shows the traceback; bugs keep theirs (zoo.runtime.errors)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
import torch
from app_config import app_config

import zoo
from zoo.io import export_cli
from zoo.report.table import main as report_main
from zoo.research.structure_cli import main as analyze_main
from zoo.runner.run import run
from zoo.runtime.errors import LONGEST, run_command, user_error_line

pytestmark = pytest.mark.launches

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=16", "task.n_eval=8"]


def _zoo(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [sys.executable, "-m", "zoo.runner.run", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_config_error_is_one_line_and_status_2_and_its_traceback_is_asked_for(tmp_path):
    done = _zoo(tmp_path, *CHEAP, "method.r=-1")
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr == "zoo: r must be a positive integer, got -1\n"
    shown = _zoo(tmp_path, *CHEAP, "method.r=-1", HYDRA_FULL_ERROR="1")
    assert shown.returncode == 1
    assert (
        "Traceback (most recent call last)" in shown.stderr and "ValueError: r must be a positive integer, got -1" in shown.stderr
    )


@pytest.mark.full  # the one-line path runs by default (the config error above); Hydra's own message here
def test_an_override_hydra_refuses_is_one_line(tmp_path):
    done = _zoo(tmp_path, "method.rank=3")
    assert done.returncode == 2
    assert done.stderr == "zoo: Could not override 'method.rank'. To append to your config use +method.rank=3\n"


@pytest.mark.full  # the one-line path runs by default; the refusal itself in-process (test_reliability_divergence.py)
def test_a_size_that_asks_torch_for_absurd_memory_is_one_line(tmp_path):
    done = _zoo(tmp_path, *CHEAP, "method=adapter", "method.reduction_factor=1e-9")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert (
        done.stderr.startswith("zoo: ") and "reduction_factor=1e-09" in done.stderr
    )  # refused before anything is allocated (zoo.dry_run)


def test_a_very_long_message_keeps_its_start_and_its_fix_and_counts_what_it_leaves_out(tmp_path):
    done = _zoo(tmp_path, f"task.name={'x' * 12000}")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert len(line) < LONGEST + 100
    assert line.startswith("zoo: unknown task 'xxx") and line.endswith("or load your data with task.path or task.dataset")
    message = (
        f"unknown task '{'x' * 12000}'; built-in tasks: ['bbc_topic', 'movie_sentiment', 'synthetic_sentiment', "
        "'tweet_sentiment']; or load your data with task.path or task.dataset"
    )
    shown = LONGEST * 2 // 3 + LONGEST // 3  # its start and its end
    assert f" […{len(message) - shown:,} characters left out…] " in line


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.ENOSPC, "the disk is full: free space, or write to another disk"),
        (errno.EROFS, "the file system is read-only: write to a folder on a writable one"),
        (errno.EBUSY, "a mount point cannot be replaced"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_an_environment_error_of_an_export_is_one_line_naming_the_path_and_the_fix(tmp_path, monkeypatch, capsys, code, fix):
    def fail(run_dir, out):
        raise OSError(code, os.strerror(code), str(out / "model.safetensors"))

    monkeypatch.setattr(export_cli, "export_merged", fail)
    assert export_cli.main([str(tmp_path), "--merged", str(tmp_path / "deploy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo-export: ") and fix in err and str(tmp_path / "deploy" / "model.safetensors") in err
    assert len(err.splitlines()) == 1
    with pytest.raises(OSError):
        export_cli.main([str(tmp_path), "--merged", str(tmp_path / "deploy"), "--debug"])


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(run_dir, out):
        return {}["no such key"]  # a KeyError from a mistake, not a deliberate refusal

    monkeypatch.setattr(export_cli, "export_merged", bug)
    with pytest.raises(KeyError):
        export_cli.main([str(tmp_path), "--merged", str(tmp_path / "deploy")])


def test_an_export_to_a_symlink_to_nothing_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    run(app_config(*CHEAP, "save_adapter=true"), tmp_path / "run")
    (tmp_path / "deploy").symlink_to(tmp_path / "gone")
    assert export_cli.main([str(tmp_path / "run"), "--merged", str(tmp_path / "deploy")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"cannot write a merged model to '{tmp_path / 'deploy'}'" in line


def test_every_command_exits_2_on_a_user_error(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err
        == f"zoo-report: no metrics.json under {str(tmp_path)!r}; point zoo-report at a run or multirun folder\n"
    )
    assert analyze_main(["--base", "tiny-llama", "--adapter", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"zoo-analyze: adapter folder {str(tmp_path / 'none')!r} lacks")


def test_what_counts_as_a_user_error():
    with pytest.raises(KeyError) as unknown:
        zoo.get_method("nope")
    assert user_error_line(unknown.value).startswith("unknown method 'nope'.")  # zoo's own refusal: a user error
    with pytest.raises(RuntimeError) as allocation:
        torch.empty(10**15, dtype=torch.uint8)
    assert user_error_line(allocation.value).startswith("out of memory: ")
    with pytest.raises(ValueError) as inside_a_library:
        int("twelve")
    assert user_error_line(inside_a_library.value) is None  # raised by Python, not by a refusal of zoo's: a bug
    assert run_command("prog", lambda: 0, debug=False) == 0


def _many_classes(folder, classes: int):
    folder.mkdir()
    for split, per_class in (("train", 2), ("test", 1)):
        rows = [f"text {i} {j},label{i}" for i in range(classes) for j in range(per_class)]
        (folder / f"{split}.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    return folder


def test_a_head_needs_no_label_words_and_a_prompt_is_told_the_fix_in_a_short_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = _many_classes(tmp_path / "many", 30)
    task = ["task.name=many", f"task.path={folder}", "task.n_eval=30", "latency=false", "save_adapter=false"]
    record = run(app_config(*CHEAP, *task, "task.formulation=head"), tmp_path / "head")
    assert len(record.label_names) == 30 and len(record.example_scores["accuracy"]) == 30
    assert "zero_shot" not in record.baseline_scores  # the default two label words cannot score 30 classes: no such baseline
    with pytest.raises(ValueError) as refused:
        run(app_config(*CHEAP, *task), tmp_path / "prompt")
    message = str(refused.value)
    assert (
        message.startswith("task 'many' has 30 classes ['label0', 'label1', 'label10', ")
        and "'label17', …] but 2 label words" in message
    )
    assert message.endswith(
        "give task.label_words one single-token word per class, or use task.formulation=head, which needs none"
    )
    assert len(message) < 400
