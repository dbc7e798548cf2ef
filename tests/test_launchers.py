"""Sweeps through Hydra's launcher plugins: joblib runs a sweep's jobs at once, with the serial sweep's records.

``zoo -m ... hydra/launcher=joblib hydra.launcher.n_jobs=2`` runs two jobs at a time in worker
processes; every run still writes its record into its own folder of the one launch folder, and
``resume=true`` skips them on the next launch. The benchmark suite passes the same overrides to
its sweeps, and its records equal the serial suite's but for what measures time and memory.
zoo's own launcher configs (conf/hydra/launcher/) compose onto the plugins' where those are installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from tiers import end_to_end_methods

from zoo.io.records import RunRecord
from zoo.runner.baselines import list_baselines
from zoo.runner.config import store_configs

pytestmark = pytest.mark.launches

pytest.importorskip(
    "hydra_plugins.hydra_joblib_launcher", reason="hydra-joblib-launcher is not installed (pip install -e '.[test]')"
)

ZOO = Path(sys.executable).with_name("zoo")
ROOT = Path(__file__).parents[1]
SUITE = [sys.executable, "-m", "benchmarks.suite"]
PARALLEL = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
SWEEP = [
    "method=lora,ia3",
    "seed=0,1",
    "latency_batches=1",
    "model.pretrain_steps=0",
    "trainer.max_steps=2",
    "task.n_train=16",
    "task.n_eval=16",
    "trainer.progress=false",
]
"""Four runs of the untrained tiny Llama, two steps each."""
MEASURED = {"train_seconds", "peak_memory_bytes"}
"""Record fields that measure the run's time and memory: they differ between any two runs."""
MEASURED_LATENCY = {"seconds_per_batch", "base_seconds_per_batch", "ratio", "merged_seconds_per_batch", "merged_ratio", "flag"}
"""The timings in a record's ``latency``, and the flag they raise (its ``batches`` counts are compared)."""


def _environment(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home)}


def _zoo(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ZOO), "-m", *SWEEP, *PARALLEL, f"predictions_cache={tmp_path / 'predictions'}", *overrides],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _parallel_launch(tmp_path: Path) -> Path:
    """A sweep of four runs two at a time, checked; its launch folder."""
    first = _zoo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    launches = list((tmp_path / "multirun").glob("*/*"))
    assert len(launches) == 1, launches  # the workers resolved the launch's one folder name (zoo.unique), not one each
    records = {path.parent.name: RunRecord.read(path) for path in launches[0].glob("*/metrics.json")}
    assert {(r.method, r.seed) for r in records.values()} == EXPECTED
    for folder, record in records.items():
        assert f"method={record.method}," in folder and f"seed={record.seed}," in folder
        assert record.train_steps == 2 and record.n_eval == 16 and 0 <= record.scores["accuracy"] <= 1
    assert first.stdout.count(" -> ") == 4  # each worker's result line reaches the launch's output
    return launches[0]


EXPECTED = {(method, seed) for method in ("lora", "ia3") for seed in (0, 1)}


def test_a_parallel_sweep_writes_every_record_into_one_launch_folder(tmp_path):
    _parallel_launch(tmp_path)


@pytest.mark.full  # resume itself runs by default (test_reliability_runs.py, the suite's tests); here through the workers
def test_a_parallel_sweep_resumes_skipping_every_finished_run(tmp_path):
    launch = _parallel_launch(tmp_path)
    written = {path: path.read_bytes() for path in launch.glob("*/metrics.json")}
    again = _zoo(tmp_path, f"hydra.sweep.dir={launch}", "resume=true")
    assert again.returncode == 0, again.stderr[-3000:]
    skipped = [
        re.match(r"skipped \(done\): (\w+) on synthetic_sentiment, seed (\d+): ", line) for line in again.stdout.splitlines()
    ]
    assert sorted((m[1], int(m[2])) for m in skipped if m) == sorted(EXPECTED)
    assert {path: path.read_bytes() for path in launch.glob("*/metrics.json")} == written


def _suite(tmp_path: Path, name: str, methods: list[str], *overrides: str) -> Path:
    """The smoke benchmark suite of ``methods`` into ``tmp_path/name``, with its own prediction cache (a shared one would
    hide a difference)."""
    out = tmp_path / name
    done = subprocess.run(
        [
            *SUITE,
            "--profile",
            "smoke",
            "--out",
            str(out),
            "--results",
            str(out / "RESULTS.md"),
            "--tables",
            str(tmp_path / "no-tables"),
            "--methods",
            ",".join(methods),
            f"predictions_cache={tmp_path / name}-predictions",
            *overrides,
        ],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _without_measurements(record: dict) -> dict:
    kept = {key: value for key, value in record.items() if key not in MEASURED}
    kept["latency"] = {key: value for key, value in record["latency"].items() if key not in MEASURED_LATENCY}
    return kept


def _table(results_md: Path) -> list[list[str]]:
    """RESULTS.md's table rows without the columns of times and memory."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in results_md.read_text().splitlines()
        if line.startswith("| ")
    ]
    measured = {rows[0].index(name) for name in ("train s", "peak MB", "latency x base (merged)")}
    return sorted([cell for i, cell in enumerate(row) if i not in measured] for row in rows[1:])


@pytest.mark.full  # the joblib path itself runs by default (the parallel sweep above); the whole suite twice, in the full tier
def test_b_the_smoke_suite_under_joblib_writes_the_serial_suites_records(tmp_path, request):
    methods = end_to_end_methods(request.config)
    serial = _suite(tmp_path, "serial", methods)
    parallel = _suite(tmp_path, "parallel", methods, *PARALLEL)
    paths = sorted(p.relative_to(serial) for p in serial.rglob("metrics.json"))
    assert paths == sorted(p.relative_to(parallel) for p in parallel.rglob("metrics.json"))
    assert len(paths) == len(methods) + len(list_baselines())
    for path in paths:
        a, b = (json.loads((root / path).read_text()) for root in (serial, parallel))
        assert _without_measurements(a) == _without_measurements(b), path
    assert _table(serial / "RESULTS.md") == _table(parallel / "RESULTS.md")
    assert "hydra/launcher=joblib hydra.launcher.n_jobs=2" in (parallel / "RESULTS.md").read_text()
    assert len(json.loads((parallel / "suite.json").read_text())["sessions"]) == 1


LAUNCHERS = {
    "zoo_slurm": (
        "hydra_plugins.hydra_submitit_launcher",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "partition=gpu",
        {"gpus_per_node": 1, "cpus_per_task": 4, "timeout_min": 120, "partition": "gpu"},
    ),
    "zoo_ray": (
        "hydra_plugins.hydra_ray_launcher",
        "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
        "ray.init.address=auto",
        {"ray.remote.num_gpus": 1, "ray.remote.num_cpus": 4, "ray.init.address": "auto"},
    ),
}
"""zoo's launcher config -> the plugin its base comes from, the launcher class it makes, an override a user gives
(``hydra.launcher.<override>``) and the settings it then has."""


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_zoos_launcher_configs_compose_onto_the_plugins(name):
    plugin, target, override, settings = LAUNCHERS[name]
    pytest.importorskip(
        plugin, reason=f"{plugin.split('.')[1].replace('_', '-')} is not installed; hydra/launcher={name} needs it"
    )
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose("config", overrides=[f"hydra/launcher={name}", f"hydra.launcher.{override}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    assert {key: OmegaConf.select(cfg.hydra.launcher, key) for key in settings} == settings
