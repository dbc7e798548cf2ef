"""Run folders: no two runs share one, a widened sweep keeps its runs' folders, nothing overwrites another run's output;
one malformed metrics.json stops neither zoo-report nor resume."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from records_helpers import record_dict

from zoo.io.records import SCHEMA_VERSION, RunRecord
from zoo.report.table import main as report_main
from zoo.runner.config import MAX_NAME_BYTES, launch_token, store_configs, sweep_subdir
from zoo.runner.resume import NOT_RESULTS, finished_run, refuse_another_run, run_identity
from zoo.runtime.atomic import write_json

pytestmark = pytest.mark.launches

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=32", "task.n_eval=16", "save_adapter=false"]
FROZEN_CLOCK = """
import datetime, sys
import hydra.core.utils

class Frozen(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 1, 2, 3, 4, 5)

hydra.core.utils.datetime = Frozen  # what ${now:...} reads: every launch starts "in the same second"
sys.argv[0] = "zoo"
from zoo.runner.run import main

main()
"""


def _compose(*overrides: str, hydra_config: bool = False):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra_config)


def _zoo(tmp_path: Path, *args: str, frozen: bool = False) -> subprocess.CompletedProcess:
    """``zoo <args>`` in ``tmp_path`` with its own HOME (no shared caches); ``frozen``: with the clock stopped."""
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    head = ["-c", FROZEN_CLOCK] if frozen else ["-m", "zoo.runner.run"]
    return subprocess.run([sys.executable, *head, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _freeze_now(monkeypatch):
    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr("hydra.core.utils.datetime", Frozen)


def test_default_run_folders_of_launches_in_the_same_second_differ(monkeypatch):
    _freeze_now(monkeypatch)
    a, b = (_compose(hydra_config=True) for _ in range(2))
    HydraConfig.instance().set_config(a)
    first = a.hydra.run.dir
    assert first.startswith("outputs/2026-01-02/03-04-05-") and len(first) > len("outputs/2026-01-02/03-04-05-")
    assert a.hydra.run.dir == first  # resolved once: every later read of the config gives the same folder
    assert b.hydra.run.dir != first and b.hydra.run.dir.startswith("outputs/2026-01-02/03-04-05-")
    assert a.hydra.sweep.dir == "multirun/2026-01-02/03-04-05-" + first.rsplit("-", 1)[1] != b.hydra.sweep.dir
    job = _compose("seed=1", hydra_config=True)
    OmegaConf.copy_cache(from_config=a, to_config=job)  # what Hydra does for each job of a sweep (load_sweep_config)
    assert job.hydra.sweep.dir == a.hydra.sweep.dir  # so every job of one launch lands in one sweep folder


def test_two_runs_in_the_same_second_write_their_own_folders(tmp_path):
    """Two launches with the clock stopped: each metrics.json is in the folder Hydra made for that run (runtime.output_dir)."""
    for seed in (0, 1):
        done = _zoo(tmp_path, *CHEAP, f"seed={seed}", frozen=True)
        assert done.returncode == 0, done.stderr[-3000:]
    folders = sorted((tmp_path / "outputs" / "2026-01-02").iterdir())
    assert len(folders) == 2
    seeds = set()
    for folder in folders:
        assert folder.name.startswith("03-04-05-")
        hydra_cfg = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_cfg["runtime"]["output_dir"] == str(folder)
        record = RunRecord.read(folder / "metrics.json")
        assert f"seed={record.seed}" in hydra_cfg["overrides"]["task"]
        seeds.add(record.seed)
    assert seeds == {0, 1}


@pytest.mark.full  # resume runs by default (the suite's fresh-machine launch); here a sweep widened between launches
def test_a_widened_resumed_sweep_skips_its_finished_runs_and_keeps_their_folders(tmp_path):
    """seed=0,2 then seed=0,1,2: with folders numbered by position, seed 1 took seed 2's folder (job #1) and seed 2 ran again."""
    sweep = tmp_path / "sweep"
    args = ["-m", *CHEAP, "resume=true", f"hydra.sweep.dir={sweep}"]
    first = _zoo(tmp_path, *args, "seed=0,2")
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p.parent.name: p.read_text() for p in sweep.glob("*/metrics.json")}
    second = _zoo(tmp_path, *args, "seed=0,1,2")
    assert second.returncode == 0, second.stderr[-3000:]
    skipped = [line for line in second.stdout.splitlines() if line.startswith("skipped (done)")]
    assert [line.split(", seed ")[1][0] for line in skipped] == ["0", "2"]
    assert second.stdout.count("lora (prompt): accuracy") == 1  # only seed 1 ran
    names = {
        p.parent.name: json.loads(p.read_text())["seed"] for p in sweep.glob("*/metrics.json")
    }  # overrides as Hydra renders them
    assert names == {
        f"model.pretrain_steps=0,save_adapter=False,seed={s},task.n_eval=16,task.n_train=32,trainer=smoke": s for s in (0, 1, 2)
    }
    assert all((sweep / name / "metrics.json").read_text() == text for name, text in before.items())  # untouched


def test_a_run_refuses_to_overwrite_another_configs_metrics(tmp_path):
    out = tmp_path / "taken"
    other = record_dict(
        scores={"accuracy": 0.9, "macro_f1": 0.5}, run_config=run_identity(_compose(*CHEAP, "trainer.max_steps=7"))
    )
    write_json(out / "metrics.json", other)
    done = _zoo(tmp_path, *CHEAP, f"hydra.run.dir={out}")
    assert done.returncode != 0
    assert (
        f"{out / 'metrics.json'} holds a run of another config (differs in trainer.max_steps); zoo does not overwrite it"
        in done.stderr
    )
    assert "pass resume=true" in done.stderr
    assert json.loads((out / "metrics.json").read_text()) == other
    assert not (out / "flips.jsonl").exists()


def test_the_same_config_may_run_again_in_its_folder(tmp_path, caplog):
    cfg = _compose(*CHEAP)
    write_json(tmp_path / "metrics.json", record_dict(run_config=run_identity(cfg)))
    refuse_another_run(tmp_path, cfg)
    refuse_another_run(tmp_path / "empty", cfg)
    (tmp_path / "metrics.json").write_text("[1, 2]")
    with pytest.raises(
        FileExistsError, match=r"metrics.json holds a JSON list, not a run's record \(an object\); zoo does not overwrite"
    ):
        refuse_another_run(tmp_path, cfg)


def test_sweep_folders_are_named_by_the_runs_overrides():
    cfg = _compose(
        "seed=1",
        "method=ia3",
        "resume=true",
        "trainer.progress=false",
        "predictions_cache=null",
        "+method_learning_rates={ia3:0.1}",
        hydra_config=True,
    )
    HydraConfig.instance().set_config(cfg)
    assert cfg.hydra.sweep.subdir == "method=ia3,seed=1"  # what changes no result, or only its own entry, is not in it
    assert set(NOT_RESULTS) <= set(cfg.hydra.job.config.override_dirname.exclude_keys)
    bench = _compose("+benchmark=smoke", "seed=1", hydra_config=True)
    HydraConfig.instance().set_config(bench)
    assert bench.hydra.sweep.subdir == "synthetic_sentiment/lora/seed1"  # a profile's own layout stays


def test_sweep_subdir_names():
    assert sweep_subdir("") == "defaults"
    assert sweep_subdir("task.path=/data/a_b.csv") == "task.path=%2Fdata%2Fa_b.csv" != sweep_subdir("task.path=_data_a_b.csv")
    assert sweep_subdir("x=50%/2") == "x=50%25%2F2"
    long_a, long_b = "a=" + "x" * 300, "a=" + "x" * 299 + "y"
    assert len(sweep_subdir(long_a).encode()) <= MAX_NAME_BYTES and sweep_subdir(long_a) != sweep_subdir(long_b)
    assert sweep_subdir(long_a).startswith("a=xxx")


def test_processes_of_one_distributed_launch_share_a_token(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert len({launch_token() for _ in range(5)}) == 5
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_token() == launch_token() == f"p{os.getppid()}"


def _record(seed: int, accuracy: float) -> dict:
    return record_dict(seed=seed, scores={"accuracy": accuracy, "macro_f1": accuracy}, trainable_percent=1.0)


def test_report_skips_malformed_metrics_naming_each(tmp_path, capsys):
    write_json(tmp_path / "good" / "metrics.json", _record(0, 0.75))
    missing = {
        k: v for k, v in _record(1, 0.5).items() if k not in ("scores", "objective_metric", "flips")
    }  # flips has a default
    bad = {
        "missing": missing,
        "old": {"method": "lora", "seed": 0},
        "list": [1, 2],
        "truncated": '{"method": "lo',
        "wrong": {**_record(1, 0.5), "scores": None},
    }
    for name, content in bad.items():
        path = tmp_path / name / "metrics.json"
        path.parent.mkdir()
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert report_main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    rows = [line for line in out.splitlines() if line.startswith("| lora")]
    assert len(rows) == 1 and "| 1.000 | 0.750 | - | - | 0.750 |" in rows[0]  # the one good run: its score, no spread, no test
    assert "| lora | - | synthetic_sentiment | 10 |" in rows[0]
    assert f"{tmp_path / 'missing' / 'metrics.json'} lacks objective_metric, scores: not a finished run's record" in err
    assert f"{tmp_path / 'old' / 'metrics.json'} is a record of schema version 1" in err
    assert f"{tmp_path / 'list' / 'metrics.json'} holds a JSON list" in err
    assert f"{tmp_path / 'truncated' / 'metrics.json'} is unreadable" in err
    assert f"{tmp_path / 'wrong' / 'metrics.json'} has values of the wrong type for scores (None)" in err
    assert err.count("; skipped") == 5


@pytest.mark.parametrize(
    "content,problem",
    [
        ("[1, 2]", "holds a JSON list"),
        ("null", "holds a JSON NoneType"),
        ('"text"', "holds a JSON str"),
        ("RUN_CONFIG_ONLY", "lacks method, method_config, baseline"),
        ('{"run_config": {"a"', "is unreadable"),
    ],
)
def test_resume_runs_over_a_malformed_metrics_naming_it(tmp_path, caplog, content, problem):
    cfg = _compose(*CHEAP, "resume=true")
    if content == "RUN_CONFIG_ONLY":  # the right config, but not what a finished run records
        content = json.dumps({"run_config": run_identity(cfg), "schema_version": SCHEMA_VERSION})
    (tmp_path / "metrics.json").write_text(content)
    assert finished_run(tmp_path, cfg) is None
    assert f"{tmp_path / 'metrics.json'} {problem}" in caplog.text and "running again" in caplog.text
