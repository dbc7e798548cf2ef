"""The benchmark suite's smoke profile end to end: every method and baseline, RESULTS.md, resume.

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

import zoo
from zoo.io.records import RunRecord
from zoo.runner.baselines import list_baselines

ROOT = Path(__file__).parents[1]
SUITE = [sys.executable, "-m", "benchmarks.suite"]
"""The suite as its docs run it: a module of the benchmarks package, from the repository root."""
BRIDGED = ["peft_dora", "peft_loha"]
"""Two of the peft bridge's methods, which the suite runs only with --peft-bridge."""
ROWS = [*(m for m in zoo.list_methods() if not m.startswith("peft_")), *BRIDGED, *list_baselines()]


def _suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
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
            f"predictions_cache={tmp_path / 'predictions'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,  # generous: the CPU cores here are shared
    )


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("suite")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "step_speed.md").write_text("# Step speed\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (tmp_path / "tables" / "structure" / "lora").mkdir(parents=True)
    (tmp_path / "tables" / "structure" / "summary.md").write_text("# Structure summary\n")
    (tmp_path / "tables" / "structure" / "lora" / "structure.md").write_text("# Per-matrix report\n")
    done = _suite(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path, done


def test_one_metrics_file_per_row_task_and_seed(suite):
    tmp_path, _ = suite
    found = sorted(p.relative_to(tmp_path / "runs").parent.as_posix() for p in (tmp_path / "runs").rglob("metrics.json"))
    assert found == sorted(f"synthetic_sentiment/{row}/seed0" for row in ROWS)
    for path in (tmp_path / "runs").rglob("metrics.json"):
        record = RunRecord.read(path)
        assert record.method == path.parent.parent.name and record.latency["ratio"] > 0


def test_results_md_has_a_row_per_method_and_baseline_and_the_other_tables(suite):
    tmp_path, _ = suite
    text = (tmp_path / "RESULTS.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert sorted(line.split(" | ")[0].removeprefix("| ") for line in table if "synthetic_sentiment" in line) == sorted(ROWS)
    assert "python -m benchmarks.suite --profile smoke" in text and "2 steps at batch size 8" in text
    assert "# Step speed\n\n| a | b |\n|---|---|\n| 1 | 2 |" in text  # appended verbatim
    assert "# Structure summary" in text and "# Per-matrix report" not in text  # a summary stands for its folder's reports
    assert "[tables/structure/lora/structure.md](tables/structure/lora/structure.md)" in text
    for plot in ("pareto_synthetic_sentiment.png", "time_synthetic_sentiment.png"):
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG" and plot in text
    suite_json = json.loads((tmp_path / "runs" / "suite.json").read_text())
    assert suite_json["profile"] == "smoke" and suite_json["sessions"][0]["wall_seconds"] > 0


def test_restart_skips_finished_runs_and_reruns_the_missing_one(suite):
    tmp_path, _ = suite
    runs = tmp_path / "runs" / "synthetic_sentiment"
    (runs / "zero_shot" / "seed0" / "metrics.json").unlink()  # as if the suite had stopped before this run ended:
    record_set = tmp_path / "runs" / "records" / "synthetic_sentiment.jsonl"  # then its record set lacks it too
    lines = record_set.read_text().splitlines()
    record_set.write_text("".join(f"{line}\n" for line in lines if '"folder":"synthetic_sentiment/zero_shot/seed0"' not in line))
    assert len(record_set.read_text().splitlines()) == len(lines) - 1
    kept = {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")}
    again = _suite(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped (done)") == len(ROWS) - 1
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in kept.items())
    assert (runs / "zero_shot" / "seed0" / "metrics.json").is_file()
    assert len(json.loads((tmp_path / "runs" / "suite.json").read_text())["sessions"]) == 2


def test_a_launch_on_a_fresh_machine_resumes_from_the_record_set(suite, tmp_path):
    """Only the record set travels (as benchmarks/records/<profile> does in the repository): every run is skipped."""
    done, fresh = suite[0], tmp_path / "fresh"
    (fresh / "runs").mkdir(parents=True)
    shutil.copytree(done / "runs" / "records", fresh / "records")
    (fresh / "tables").mkdir()
    again = _suite(fresh, "--records", str(fresh / "records"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped (done)") == len(ROWS) and f"resumed {len(ROWS)} finished runs" in again.stdout
    assert (fresh / "records" / "synthetic_sentiment.jsonl").read_text() == (
        done / "runs" / "records" / "synthetic_sentiment.jsonl"
    ).read_text()


def test_unknown_profile_lists_the_valid_ones(tmp_path):
    done = subprocess.run([*SUITE, "--profile", "huge"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "invalid choice: 'huge'" in done.stderr and "smoke" in done.stderr.split("huge")[-1]


def test_results_md_regenerates_into_a_new_folder(suite):
    tmp_path, _ = suite
    out = tmp_path / "elsewhere" / "deeper" / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.results_md",
            str(tmp_path / "runs"),
            "--out",
            str(out),
            "--tables",
            str(tmp_path / "tables"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert (
        "seeds 0 (initialisation and batch order: the training sample and evaluation set are drawn once, with data seed 0)"
        in text
    )
    assert (out.parent / "pareto_synthetic_sentiment.png").is_file()
