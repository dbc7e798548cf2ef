"""The benchmark suite's smoke profile end to end: zoo's methods (a sample by default, every one with ``--full``:
tests/tiers.py), two bridged tuners and every baseline, RESULTS.md, resume.

This is the CI version of ``python -m benchmarks.suite --profile full``: the same command on
the tiny Llama and the synthetic task, so the suite cannot silently rot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiers import end_to_end_methods

from benchmarks.results_md import main as results_main
from benchmarks.suite import main as suite_main
from zoo.io.records import RunRecord
from zoo.runner.baselines import list_baselines

pytestmark = pytest.mark.launches

ROOT = Path(__file__).parents[1]
SUITE = [sys.executable, "-m", "benchmarks.suite"]
"""The suite as its docs run it: a module of the benchmarks package, from the repository root."""
BRIDGED = ["peft_dora", "peft_loha"]
"""Two of the peft bridge's methods, which the suite runs only with --peft-bridge."""


def _suite(tmp_path: Path, methods: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *SUITE,
            "--profile",
            "smoke",
            "--out",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "RESULTS.md"),
            "--tables",
            str(tmp_path / "tables"),
            "--peft-bridge",
            ",".join(BRIDGED),
            "--methods",
            ",".join(methods),
            f"predictions_cache={tmp_path / 'predictions'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,  # generous: the CPU cores here are shared
    )


@pytest.fixture(scope="module")
def methods(request) -> list[str]:
    return end_to_end_methods(request.config)


@pytest.fixture(scope="module")
def rows(methods) -> list[str]:
    """Every row the suite writes: zoo's methods it was asked for, the two bridged tuners and every baseline."""
    return [*methods, *BRIDGED, *list_baselines()]


@pytest.fixture(scope="module")
def suite(tmp_path_factory, methods):
    tmp_path = tmp_path_factory.mktemp("suite")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "step_speed.md").write_text("# Step speed\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (tmp_path / "tables" / "structure" / "lora").mkdir(parents=True)
    (tmp_path / "tables" / "structure" / "summary.md").write_text("# Structure summary\n")
    (tmp_path / "tables" / "structure" / "lora" / "structure.md").write_text("# Per-matrix report\n")
    done = _suite(tmp_path, methods)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path, done


def test_one_metrics_file_per_row_task_and_seed(suite, rows):
    tmp_path, _ = suite
    found = sorted(p.relative_to(tmp_path / "runs").parent.as_posix() for p in (tmp_path / "runs").rglob("metrics.json"))
    assert found == sorted(f"synthetic_sentiment/{row}/seed0" for row in rows)
    for path in (tmp_path / "runs").rglob("metrics.json"):
        record = RunRecord.read(path)
        assert record.method == path.parent.parent.name and record.latency["ratio"] > 0


def test_results_md_has_a_row_per_method_and_baseline_and_the_other_tables(suite, rows):
    tmp_path, _ = suite
    text = (tmp_path / "RESULTS.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert sorted(line.split(" | ")[0].removeprefix("| ") for line in table if "synthetic_sentiment" in line) == sorted(rows)
    assert "python -m benchmarks.suite --profile smoke" in text and "2 steps at batch size 8" in text
    assert "# Step speed\n\n| a | b |\n|---|---|\n| 1 | 2 |" in text  # appended verbatim
    assert "# Structure summary" in text and "# Per-matrix report" not in text  # a summary stands for its folder's reports
    assert "[tables/structure/lora/structure.md](tables/structure/lora/structure.md)" in text
    for plot in ("pareto_synthetic_sentiment.png", "time_synthetic_sentiment.png"):
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG" and plot in text
    suite_json = json.loads((tmp_path / "runs" / "suite.json").read_text())
    assert suite_json["profile"] == "smoke" and suite_json["sessions"][0]["wall_seconds"] > 0


@pytest.mark.full  # by default, the fresh-machine launch below skips what its record set holds and runs what it lacks
def test_restart_skips_finished_runs_and_reruns_the_missing_one(suite, methods, rows):
    tmp_path, _ = suite
    runs = tmp_path / "runs" / "synthetic_sentiment"
    (runs / "zero_shot" / "seed0" / "metrics.json").unlink()  # as if the suite had stopped before this run ended:
    record_set = tmp_path / "runs" / "records" / "synthetic_sentiment.jsonl"  # then its record set lacks it too
    lines = record_set.read_text().splitlines()
    record_set.write_text("".join(f"{line}\n" for line in lines if '"folder":"synthetic_sentiment/zero_shot/seed0"' not in line))
    assert len(record_set.read_text().splitlines()) == len(lines) - 1
    kept = {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")}
    again = _suite(tmp_path, methods)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped (done)") == len(rows) - 1
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in kept.items())
    assert (runs / "zero_shot" / "seed0" / "metrics.json").is_file()
    assert len(json.loads((tmp_path / "runs" / "suite.json").read_text())["sessions"]) == 2


def test_a_launch_on_a_fresh_machine_resumes_from_the_record_set(suite, methods, rows, tmp_path):
    """Only the record set travels (as benchmarks/records/<profile> does in the repository), one run short of the suite, as
    if the launch that wrote it had stopped before that run ended: every other run is skipped, that one runs."""
    done, fresh = suite[0], tmp_path / "fresh"
    (fresh / "runs").mkdir(parents=True)
    shutil.copytree(done / "runs" / "records", fresh / "records")
    record_set = fresh / "records" / "synthetic_sentiment.jsonl"
    lines = record_set.read_text().splitlines()
    record_set.write_text("".join(f"{line}\n" for line in lines if '"folder":"synthetic_sentiment/zero_shot/seed0"' not in line))
    (fresh / "tables").mkdir()
    again = _suite(fresh, methods, "--records", str(fresh / "records"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped (done)") == len(rows) - 1 and f"resumed {len(rows) - 1} finished runs" in again.stdout
    assert (fresh / "runs" / "synthetic_sentiment" / "zero_shot" / "seed0" / "metrics.json").is_file()
    assert len(record_set.read_text().splitlines()) == len(lines)  # the run it made is in the record set again


def test_unknown_profile_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit:
        suite_main(["--profile", "huge"])
    stderr = capsys.readouterr().err
    assert exit.value.code == 2 and "invalid choice: 'huge'" in stderr and "smoke" in stderr.split("huge")[-1]


def test_results_md_regenerates_into_a_new_folder(suite):
    tmp_path, _ = suite
    out = tmp_path / "elsewhere" / "deeper" / "RESULTS.md"
    assert results_main([str(tmp_path / "runs"), "--out", str(out), "--tables", str(tmp_path / "tables")]) == 0
    text = out.read_text()
    assert (
        "seeds 0 (initialisation and batch order: the training sample and evaluation set are drawn once, with data seed 0)"
        in text
    )
    assert (out.parent / "pareto_synthetic_sentiment.png").is_file()
