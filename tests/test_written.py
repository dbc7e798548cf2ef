"""Every writer of an output replaces only what zoo wrote (zoo.runtime.written): an export keeps the files a user added to it,
a run never overwrites a user's file in its folder, and a refusal names what is in the way."""

from __future__ import annotations

import json

import pytest
from app_config import app_config

from zoo.io.export_cli import main as export_main
from zoo.runner.run import run
from zoo.runtime.written import MANIFEST, claim, write_text

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=16", "task.n_eval=8"]


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))  # the run's prediction cache, never ~/.cache


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        out = tmp_path_factory.mktemp("run")
        run(app_config(*CHEAP), out)
        return out


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["--merged", "--peft"])
def test_exporting_again_keeps_what_the_user_added_to_the_export(lora_run, tmp_path, kind, capsys):
    deploy = tmp_path / "deploy"
    assert export_main([str(lora_run), kind, str(deploy)]) == 0
    (deploy / "README.md").write_text("# our deployment\n")
    (deploy / "extra").mkdir()
    (deploy / "extra" / "keep.txt").write_text("keep me\n")
    before = _tree(deploy)
    capsys.readouterr()
    assert export_main([str(lora_run), kind, str(deploy)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write a {'merged model' if kind == '--merged' else 'peft adapter'} to '{deploy}'" in err
    assert "['README.md', 'extra/keep.txt']" in err and "move them away, or choose a new or empty folder" in err
    assert _tree(deploy) == before
    (deploy / "README.md").unlink()
    (deploy / "extra" / "keep.txt").unlink()
    (deploy / "extra").rmdir()
    assert export_main([str(lora_run), kind, str(deploy)]) == 0  # only zoo's own files there again: replaced


def test_an_edited_file_of_an_export_is_not_replaced(lora_run, tmp_path, capsys):
    deploy = tmp_path / "deploy"
    assert export_main([str(lora_run), "--peft", str(deploy)]) == 0
    config = json.loads((deploy / "adapter_config.json").read_text())
    (deploy / "adapter_config.json").write_text(json.dumps({**config, "r": 64}))  # the user's edit
    assert export_main([str(lora_run), "--peft", str(deploy)]) == 2
    assert "['adapter_config.json']" in capsys.readouterr().err
    assert json.loads((deploy / "adapter_config.json").read_text())["r"] == 64


def test_a_run_refuses_a_users_answers_file_in_its_folder_before_it_starts(tmp_path):
    """``hydra.run.dir=.`` in a folder that holds a flips.jsonl of the user's: refused before any work, the file untouched."""
    (tmp_path / "flips.jsonl").write_text('{"mine": true}\n')
    with pytest.raises(
        FileExistsError,
        match=rf"cannot write the run's answers to '{tmp_path / 'flips.jsonl'}': a file zoo did "
        "not write is there",
    ):
        run(app_config(*CHEAP), tmp_path)
    assert (tmp_path / "flips.jsonl").read_text() == '{"mine": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flips.jsonl"]  # no record, adapter or log: nothing ran


def test_a_run_replaces_its_own_outputs_but_not_an_edited_one(tmp_path):
    cfg = app_config(*CHEAP, "save_adapter=false")
    run(cfg, tmp_path)
    listed = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert sorted(listed) == ["flips.jsonl", "metrics.json"]
    run(cfg, tmp_path)  # the same config again: its own files are replaced
    (tmp_path / "flips.jsonl").write_text("my notes on the flips\n")
    with pytest.raises(FileExistsError, match="flips.jsonl"):
        run(cfg, tmp_path)
    assert (tmp_path / "flips.jsonl").read_text() == "my notes on the flips\n"


def test_a_refusal_names_what_is_in_the_way_and_counts_the_rest(tmp_path):
    folder = tmp_path / "out"
    for i in range(12):
        (folder / "sub").mkdir(parents=True, exist_ok=True)
        (folder / "sub" / f"{i:02d}.txt").write_text("mine")
    (folder / "empty").mkdir()
    (folder / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError, match=r"\['empty', 'link', 'sub/00.txt', .*'sub/05.txt'\] and 6 more\."):
        claim(folder, "a folder of results")
    write_text(tmp_path / "mine.txt", "zoo's\n", "a note")
    claim(tmp_path / "mine.txt", "a note")  # zoo's own, unchanged: free to replace
    (tmp_path / "mine.txt").write_text("the user's now\n")
    with pytest.raises(FileExistsError, match="a file zoo did not write is there"):
        write_text(tmp_path / "mine.txt", "zoo's again\n", "a note")
    assert (tmp_path / "mine.txt").read_text() == "the user's now\n"
