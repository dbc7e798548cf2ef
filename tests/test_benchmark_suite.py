"""The benchmark's smoke profile end to end, in one launch of each: ``benchmarks/tune.py`` (the search on validation),
then ``benchmarks/suite.py --tuned`` with zoo's methods (a sample by default, every one with ``--full``:
tests/tiers.py), two bridged tuners and every baseline; RESULTS.md; resume, after a stop and on a fresh machine.

This is the CI version of ``python -m benchmarks.tune --profile full && python -m benchmarks.suite --profile full
--tuned``: the same commands on the tiny Llama and the synthetic task, so neither can silently rot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiers import end_to_end_methods

import zoo
from benchmarks import search_space as space
from benchmarks import tune, tuned
from benchmarks.results_md import main as results_main
from benchmarks.suite import main as suite_main
from zoo.io.records import RunRecord
from zoo.runner.baselines import list_baselines

pytestmark = pytest.mark.launches

ROOT = Path(__file__).parents[1]
TASK = "synthetic_sentiment"
BRIDGED = ["peft_dora", "peft_loha"]
"""Two of the peft bridge's methods, which the suite runs only with --peft-bridge."""
SMOKE_SCALES = [0.025, 0.063, 0.16, 0.4, 1.0, 2.5]
"""The smoke profile's learning-rate scales (conf/search/smoke.yaml)."""


def _launch(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.<script> --profile smoke`` as its docs run it, from the repository root, into ``tmp_path``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            f"benchmarks.{script}",
            "--profile",
            "smoke",
            "--out",
            str(tmp_path / "runs"),
            "--tuned-dir",
            str(tmp_path / "tuned"),
            f"predictions_cache={tmp_path / 'predictions'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=2400,  # generous: the CPU cores may be shared
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _suite(tmp_path: Path, methods: list[str], *args: str) -> subprocess.CompletedProcess:
    """The suite's launch: zoo's ``methods``, the two bridged tuners and the baselines, RESULTS.md and the tables."""
    return _launch(
        "suite",
        tmp_path,
        "--peft-bridge",
        ",".join(BRIDGED),
        "--methods",
        ",".join(methods),
        "--results",
        str(tmp_path / "RESULTS.md"),
        "--tables",
        str(tmp_path / "tables"),
        *args,
    )


@pytest.fixture(scope="module")
def methods(request) -> list[str]:
    return end_to_end_methods(request.config)


@pytest.fixture(scope="module")
def rows(methods) -> list[str]:
    """Every row of the suite's own launch: zoo's methods it was asked for, the two bridged tuners and every baseline."""
    return [*methods, *BRIDGED, *list_baselines()]


@pytest.fixture(scope="module")
def suite(tmp_path_factory, methods):
    """The search, then the suite with its tuned rows, into one sweep folder; the other benchmarks' tables to append."""
    tmp_path = tmp_path_factory.mktemp("suite")
    (tmp_path / "tables" / "structure" / "lora").mkdir(parents=True)
    (tmp_path / "tables" / "step_speed.md").write_text("# Step speed\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (tmp_path / "tables" / "structure" / "summary.md").write_text("# Structure summary\n")
    (tmp_path / "tables" / "structure" / "lora" / "structure.md").write_text("# Per-matrix report\n")
    _launch("tune", tmp_path, "--methods", ",".join(methods))
    done = _suite(tmp_path, methods, "--tuned")
    return tmp_path, done


def _trials(tmp_path: Path) -> dict[str, list[RunRecord]]:
    search = tmp_path / "runs" / "search" / TASK
    return {m.name: [RunRecord.read(p) for p in sorted(m.glob("rung*/*/metrics.json"))] for m in search.iterdir()}


def test_one_metrics_file_per_row_task_and_seed(suite, rows):
    tmp_path, _ = suite
    runs = tmp_path / "runs" / TASK
    found = sorted(p.relative_to(runs).parent.as_posix() for p in runs.rglob("metrics.json"))
    assert found == sorted(f"{row}/seed0" for row in rows)
    for path in runs.rglob("metrics.json"):
        record = RunRecord.read(path)
        assert record.method == path.parent.parent.name and record.latency["ratio"] > 0


def test_the_search_ran_every_method_the_same_trials_on_validation_and_never_read_test(suite, methods):
    tmp_path, _ = suite
    trials = _trials(tmp_path)
    assert set(trials) == set(methods) and {len(records) for records in trials.values()} == {8}
    for records in trials.values():
        for record in records:
            assert record.splits_read == ["train", "validation"]  # what the run read, recorded in its own process
            assert record.task_config["eval_split"] == "validation"
        assert sorted(r.train_steps for r in records) == [1] * 6 + [2] * 2 or records[0].train_steps == 0  # rung 0 at 1 step
    default_rate = zoo.get_method("ia3").learning_rate
    rates = sorted({r.learning_rate for r in trials["ia3"]})
    assert rates == pytest.approx([s * default_rate for s in SMOKE_SCALES])
    assert sorted({r.method_config["ridge"] for r in trials["closed_form_head"]}) == pytest.approx(
        [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    )


def test_the_chosen_values_are_written_and_read_back(suite, methods):
    tmp_path, _ = suite
    path = tmp_path / "tuned" / f"{TASK}.yaml"
    chosen = tuned.read_tuned(path)
    loaded = space.load_space(space.space_path("smoke"), methods)
    out = tmp_path / "runs"
    assert chosen == {m: tune.choose(tune.rung_trials(out, TASK, m, grid, 1, loaded)).values for m, grid in loaded.grids.items()}
    for method, records in _trials(tmp_path).items():
        last = [r for r in records if r.train_steps == max(x.train_steps for x in records)]
        assert tune.choose(tune.rung_trials(out, TASK, method, loaded.grids[method], 1, loaded)).score == max(
            r.objective for r in last
        )
    assert set(chosen["closed_form_head"]) == {"method.ridge"} and set(chosen["ia3"]) == {"trainer.learning_rate_scale"}
    assert path.read_text().startswith("# Chosen by `python -m benchmarks.tune --profile smoke`")
    table = (tmp_path / "tuned" / f"{TASK}.trials.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + 8 * len(chosen)  # the header, then every trial
    assert table.count("**") == 4 * len(chosen)  # one chosen trial per method, its name and score in bold
    summary = json.loads((tmp_path / "tuned" / f"{TASK}.search.json").read_text())
    assert {m: e["chosen"] for m, e in summary["methods"].items()} == chosen
    assert all(e["runner_up"]["p"] is not None for e in summary["methods"].values())


def test_results_md_has_a_row_per_method_tuned_row_and_baseline_and_the_other_tables(suite, rows):
    tmp_path, _ = suite
    text = (tmp_path / "RESULTS.md").read_text()
    table = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and TASK in line]
    chosen = tuned.read_tuned(tmp_path / "tuned" / f"{TASK}.yaml")
    assert sorted(cells[0].removeprefix("| ") for cells in table) == sorted([*rows, *(f"{m} (tuned)" for m in chosen)])
    assert "python -m benchmarks.suite --profile smoke" in text and "2 steps at batch size 8" in text
    assert "# Step speed\n\n| a | b |\n|---|---|\n| 1 | 2 |" in text  # appended verbatim
    assert "# Structure summary" in text and "# Per-matrix report" not in text  # a summary stands for its folder's reports
    assert "[tables/structure/lora/structure.md](tables/structure/lora/structure.md)" in text
    for plot in (f"pareto_{TASK}.png", f"time_{TASK}.png"):
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG" and plot in text


def test_a_tuned_row_is_scored_on_test_at_the_chosen_values(suite):
    tmp_path, _ = suite
    chosen = tuned.read_tuned(tmp_path / "tuned" / f"{TASK}.yaml")
    text = (tmp_path / "RESULTS.md").read_text()
    rows = {ln.split(" | ")[0].removeprefix("| "): ln.split(" | ") for ln in text.splitlines() if ln.startswith("| ")}
    for method, values in chosen.items():
        record = RunRecord.read(tmp_path / "runs" / "tuned" / TASK / method / "seed0" / "metrics.json")
        assert record.task_config["eval_split"] == "test" and record.splits_read == ["train", "test"]
        assert rows[f"{method} (tuned)"][1] == " ".join(tuned.overrides(values))
        assert rows[f"{method} (tuned)"][5].startswith(f"{record.scores['accuracy']:.3f}")  # the test score, no trial's
    assert "Rows marked *(tuned)*" in text


def test_the_wall_time_in_results_md_counts_the_search_and_the_suite(suite):
    tmp_path, _ = suite
    summary = json.loads((tmp_path / "runs" / "suite.json").read_text())
    sessions = summary["sessions"]
    assert [s["command"].split()[2] for s in sessions[:2]] == ["benchmarks.tune", "benchmarks.suite"]
    assert summary["sessions"][0]["wall_seconds"] > 0 and all(s["wall_seconds"] > 0 for s in sessions)
    assert summary["profile"] == "smoke" and summary["command"] == sessions[1]["command"]
    minutes = sum(s["wall_seconds"] for s in sessions[:2]) / 60
    text = (tmp_path / "RESULTS.md").read_text()
    assert f"- Suite wall time: {minutes:.1f} min over 2 launches" in text
    assert f"of which the search (`python -m benchmarks.tune`) {sessions[0]['wall_seconds'] / 60:.1f} min" in text


def test_results_md_regenerates_into_a_new_folder(suite):
    tmp_path, _ = suite
    out = tmp_path / "elsewhere" / "deeper" / "RESULTS.md"
    assert results_main([str(tmp_path / "runs"), "--out", str(out), "--tables", str(tmp_path / "tables")]) == 0
    text = out.read_text()
    assert (
        "seeds 0 (initialisation and batch order: the training sample and evaluation set are drawn once, with data seed 0)"
        in text
    )
    assert (out.parent / f"pareto_{TASK}.png").is_file()


def _without_zero_shot(record_set: Path) -> int:
    """Drop the zero-shot run from ``record_set``, as if the launch that wrote it had stopped before that run ended;
    returns how many records were there."""
    lines = record_set.read_text().splitlines()
    record_set.write_text("".join(f"{line}\n" for line in lines if f'"folder":"{TASK}/zero_shot/seed0"' not in line))
    assert len(record_set.read_text().splitlines()) == len(lines) - 1
    return len(lines)


@pytest.mark.full  # by default, the fresh-machine launch below skips what its record set holds and runs what it lacks
def test_restart_skips_finished_runs_and_reruns_the_missing_one(suite, methods, rows):
    tmp_path, _ = suite
    runs = tmp_path / "runs" / TASK
    (runs / "zero_shot" / "seed0" / "metrics.json").unlink()  # as if the suite had stopped before this run ended
    _without_zero_shot(tmp_path / "runs" / "records" / f"{TASK}.jsonl")
    kept = {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")}
    launches = len(json.loads((tmp_path / "runs" / "suite.json").read_text())["sessions"])
    again = _suite(tmp_path, methods)
    assert again.stdout.count("skipped (done)") == len(rows) - 1
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in kept.items())
    assert (runs / "zero_shot" / "seed0" / "metrics.json").is_file()
    assert len(json.loads((tmp_path / "runs" / "suite.json").read_text())["sessions"]) == launches + 1


def test_a_launch_on_a_fresh_machine_resumes_from_the_record_set(suite, methods, rows, tmp_path):
    """Only the record set travels (as benchmarks/records/<profile> does in the repository), the search's trials and the
    tuned rows among it, one run short: every other run is skipped, that one runs."""
    done, fresh = suite[0], tmp_path / "fresh"
    (fresh / "runs").mkdir(parents=True)
    shutil.copytree(done / "runs" / "records", fresh / "records")
    held = _without_zero_shot(fresh / "records" / f"{TASK}.jsonl")
    (fresh / "tables").mkdir()
    again = _suite(fresh, methods, "--records", str(fresh / "records"))
    assert again.stdout.count("skipped (done)") == len(rows) - 1 and f"resumed {held - 1} finished runs" in again.stdout
    assert (fresh / "runs" / TASK / "zero_shot" / "seed0" / "metrics.json").is_file()
    assert len((fresh / "records" / f"{TASK}.jsonl").read_text().splitlines()) == held  # the run it made is in it again


@pytest.mark.full  # resume runs by default (the suite's fresh-machine launch); here the search's, of one method
def test_a_second_search_of_one_method_skips_its_trials_and_keeps_the_others_choices(suite, methods):
    tmp_path, _ = suite
    trials = tmp_path / "runs" / "search" / TASK
    kept = {p: p.stat().st_mtime_ns for p in trials.rglob("metrics.json")}
    before = {name: (tmp_path / "tuned" / f"{TASK}.{name}").read_text() for name in ("yaml", "search.json", "trials.md")}
    again = _launch("tune", tmp_path, "--methods", "ia3")
    assert again.stdout.count("skipped (done)") == len(list((trials / "ia3").rglob("metrics.json"))) == 8
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in kept.items())
    # every method's choice, trials and runner-up are still there, as the search of all of them wrote them
    assert {name: (tmp_path / "tuned" / f"{TASK}.{name}").read_text() for name in before} == before
    assert set(tuned.read_tuned(tmp_path / "tuned" / f"{TASK}.yaml")) == set(methods)


def test_unknown_profile_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit:
        suite_main(["--profile", "huge"])
    stderr = capsys.readouterr().err
    assert exit.value.code == 2 and "invalid choice: 'huge'" in stderr and "smoke" in stderr.split("huge")[-1]
