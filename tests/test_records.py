"""The committed record sets (benchmarks/records.py): a sweep folder in compact form, read back as the report reads run folders,
restored for a launch on a fresh machine, and RESULTS.md regenerated from a committed set byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from records_helpers import record_dict

from benchmarks import plans, records
from zoo.io.records import RunRecord
from zoo.report.table import load_runs, summarise
from zoo.runtime.atomic import write_json

ROOT = Path(__file__).parents[1]
SMOKE = ROOT / "benchmarks" / "records" / "smoke"
"""A record set of the smoke profile (tiny Llama, synthetic task; search, default and tuned rows), its RESULTS.md and plots."""


def _run(sweep: Path, folder: str, overrides: list[str], **fields) -> None:
    (sweep / folder / ".hydra").mkdir(parents=True)
    (sweep / folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    write_json(sweep / folder / "metrics.json", record_dict(**fields))


@pytest.fixture
def sweep(tmp_path):
    out = tmp_path / "runs"
    _run(
        out,
        "synthetic_sentiment/lora/seed0",
        ["method=lora", "seed=0", "trainer.max_steps=3"],
        example_scores={"accuracy": [1, 0, 1, 1]},
        history=[{"step": 1, "loss": 0.5}],
    )
    _run(
        out,
        "bbc_headlines/lora/seed0",
        ["method=lora", "seed=0"],
        task="bbc_headlines",
        task_kind="generation",
        objective_metric="rouge_l",
        scores={"rouge_l": 0.25, "exact_match": 0.0},
        example_scores={"rouge_l": [0.1234567891, 0.5, 0.0], "exact_match": [0, 0, 0]},
    )
    return out


def test_a_record_set_reads_back_as_the_run_folders_do_with_answers_compact(sweep, tmp_path):
    written = records.export(sweep, tmp_path / "set")
    assert [p.name for p in written] == ["bbc_headlines.jsonl", "synthetic_sentiment.jsonl"]
    line = json.loads((tmp_path / "set" / "synthetic_sentiment.jsonl").read_text())
    assert line["record"]["example_scores"] == {"accuracy": "1011"} and line["overrides"] == "trainer.max_steps=3"
    generation = json.loads((tmp_path / "set" / "bbc_headlines.jsonl").read_text())["record"]["example_scores"]
    assert generation == {"rouge_l": [0.123457, 0.5, 0.0], "exact_match": "000"}
    loaded = sorted(records.load_records(tmp_path / "set"), key=lambda r: r["task"])
    from_folders = sorted(load_runs(sweep), key=lambda r: r["task"])
    assert [r["_folder"] for r in loaded] == ["bbc_headlines/lora/seed0", "synthetic_sentiment/lora/seed0"]
    assert [{k: v for k, v in r.items() if k != "_folder"} for r in loaded][1] == {
        k: v for k, v in from_folders[1].items() if k != "_folder"
    }
    assert loaded[0]["example_scores"]["rouge_l"] == [0.123457, 0.5, 0.0]
    assert (
        records.export(sweep, tmp_path / "set") == written
        and (tmp_path / "set" / "synthetic_sentiment.jsonl").read_text()
        == json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n"
    )  # the same bytes again


def test_a_launch_elsewhere_adds_to_the_set_and_a_fresh_sweep_is_restored_from_it(sweep, tmp_path):
    records.export(sweep, tmp_path / "set")
    other = tmp_path / "other"
    _run(
        other, "synthetic_sentiment/ia3/seed0", ["method=ia3", "seed=0"], method="ia3", example_scores={"accuracy": [0, 0, 1, 1]}
    )
    records.export(other, tmp_path / "set")
    folders = [r["_folder"] for r in records.load_records(tmp_path / "set")]
    assert sorted(folders) == ["bbc_headlines/lora/seed0", "synthetic_sentiment/ia3/seed0", "synthetic_sentiment/lora/seed0"]

    fresh = tmp_path / "fresh"
    (fresh / "synthetic_sentiment" / "ia3" / "seed0").mkdir(parents=True)
    (fresh / "synthetic_sentiment" / "ia3" / "seed0" / "metrics.json").write_text("{}")  # not zoo's to overwrite
    assert records.restore(tmp_path / "set", fresh) == 2
    assert (fresh / "synthetic_sentiment" / "ia3" / "seed0" / "metrics.json").read_text() == "{}"
    restored = RunRecord.read(fresh / "synthetic_sentiment" / "lora" / "seed0" / "metrics.json")
    assert restored == RunRecord.read(sweep / "synthetic_sentiment" / "lora" / "seed0" / "metrics.json")
    records.export(fresh, tmp_path / "set", skip=("synthetic_sentiment",))  # restored, never launched again: its line is kept
    assert (
        json.loads((tmp_path / "set" / "synthetic_sentiment.jsonl").read_text().splitlines()[1])["overrides"]
        == "trainer.max_steps=3"
    )


def test_a_shared_set_restores_its_runs_but_neither_its_launches_nor_its_lines_into_the_sharing_set(sweep, tmp_path):
    """The extended profile restores the full profile's set first (its rows of zoo's own methods): those runs are skipped
    by resume, but the extended set keeps only what its own launches ran, and its wall time only their sessions."""
    shared, own, out = tmp_path / "full", tmp_path / "extended", tmp_path / "out"
    write_json(sweep / records.SUITE, {"profile": "full", "sessions": [{"command": "full", "wall_seconds": 60.0}]})
    records.export(sweep, shared)
    planned = tmp_path / "planned"  # a profile whose plan has one of the shared set's two tasks: that task's run alone
    assert records.restore(shared, planned, launches=False, keep=lambda task, folder: task == "bbc_headlines") == 1
    assert [p.parent.relative_to(planned).as_posix() for p in planned.rglob("metrics.json")] == ["bbc_headlines/lora/seed0"]
    assert records.restore(shared, out, launches=False) == 2 and not (out / records.SUITE).exists()
    _run(out, "synthetic_sentiment/peft_dora/seed0", ["method=peft_dora", "seed=0"], method="peft_dora")
    skipped = out / "synthetic_sentiment" / "lora" / "seed0" / ".hydra"  # a launch that resume skipped: Hydra wrote this
    skipped.mkdir(parents=True)
    (skipped / "overrides.yaml").write_text("- method=lora\n- seed=0\n- trainer.max_steps=3\n")
    records.export(out, own, shared=shared)
    assert [r["_folder"] for r in records.load_records(own)] == ["synthetic_sentiment/peft_dora/seed0"]
    records.export(out, tmp_path / "unshared")  # without ``shared``: the restored runs would be copied, overrides lost
    assert len(records.load_records(tmp_path / "unshared")) == 3


def test_a_run_the_plan_no_longer_has_leaves_the_set_and_search_trials_stay(sweep, tmp_path, capsys):
    """The full profile's tweets went from 4 paired runs to 3: the fourth run's lines, committed or in the sweep folder,
    must not reach the report (their evaluation set is another's)."""
    for folder in ("tweet_sentiment/lora/seed2-sample2", "tweet_sentiment/lora/seed3-sample3", "search/tweet_sentiment/x"):
        _run(sweep, folder, ["method=lora"], task="tweet_sentiment")
    records.export(sweep, tmp_path / "set")  # the set as an earlier plan wrote it
    assert len(records.load_records(tmp_path / "set")) == 5
    records.export(sweep, tmp_path / "set", keep=lambda task, folder: plans.in_plan("full", task, folder))
    kept = sorted(r["_folder"] for r in records.load_records(tmp_path / "set"))
    assert kept == ["bbc_headlines/lora/seed0", "search/tweet_sentiment/x", "tweet_sentiment/lora/seed2-sample2"]
    assert "tweet_sentiment/lora/seed3-sample3 left out" in capsys.readouterr().out  # synthetic_sentiment: not in the plan
    assert plans.in_plan("full", "movie_sentiment", "latency/movie_sentiment/lora/seed0")
    assert plans.in_plan("full", "tweet_sentiment", "tuned/tweet_sentiment/gift/seed1-sample1")
    assert not plans.in_plan("full", "tweet_sentiment", "tuned/tweet_sentiment/gift/seed1")  # seed 1 on sample 0: not run
    assert not plans.in_plan("extended", "tweet_sentiment", "search/tweet_sentiment/x")  # not one of the profile's tasks


def test_runs_whose_overrides_differ_only_in_order_are_one_row(tmp_path):
    """A tuned row's first run copied from the default row's (its overrides written in another order) and the row's other
    runs are one row, with one config, tested as one against the reference."""
    out = tmp_path / "runs"
    for seed, given in enumerate(
        ["task.n_eval=4 trainer.learning_rate_scale=1.0", "trainer.learning_rate_scale=1.0 task.n_eval=4"]
    ):
        _run(
            out,
            f"lora/seed{seed}",
            ["method=lora", f"seed={seed}", *given.split()],
            seed=seed,
            example_scores={"accuracy": [1, 0, 1, 1]},
        )
    rows = summarise(load_runs(out))
    assert [(r["method"], r["config"], r["seeds"]) for r in rows] == [
        ("lora", "task.n_eval=4 trainer.learning_rate_scale=1.0", 2)
    ]


def test_the_committed_smoke_set_regenerates_its_results_md_and_plots_byte_for_byte(tmp_path):
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.results_md", str(SMOKE), "--out", str(out), "--tables", str(tmp_path / "no-tables")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_bytes() == (SMOKE / "RESULTS.md").read_bytes()
    plots = sorted(p.name for p in SMOKE.glob("*.png"))
    assert plots == ["pareto_synthetic_sentiment.png", "time_synthetic_sentiment.png"]
    for name in plots:
        assert (tmp_path / name).read_bytes() == (SMOKE / name).read_bytes(), name


@pytest.mark.full  # about 20 s of bootstrap and plotting; the smoke set's regeneration above runs the same code by default
def test_the_committed_full_set_regenerates_the_published_page_its_plots_and_html_byte_for_byte(tmp_path):
    """``python -m benchmarks.results_md`` with no argument: benchmarks/RESULTS.md, its plots and RESULTS.html, from the
    committed records of the full profile, its search's choices and the other scripts' tables, all in the repository."""
    published = ROOT / "benchmarks"
    out = tmp_path / "RESULTS.md"
    (tmp_path / "results").symlink_to(published / "results")  # the copied tables where the page's links expect them
    command = [sys.executable, "-m", "benchmarks.results_md", "--out", str(out), "--tables", str(tmp_path / "results")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_text() == (published / "RESULTS.md").read_text(), "run python -m benchmarks.results_md"
    assert (tmp_path / "RESULTS.html").read_bytes() == (published / "RESULTS.html").read_bytes()
    plots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert plots == sorted(p.name for p in published.glob("*.png")) and len(plots) == 6
    for name in plots:
        assert (tmp_path / name).read_bytes() == (published / name).read_bytes(), name


@pytest.mark.full  # about 20 s of bootstrap and plotting, as the full page's
def test_the_committed_extended_set_regenerates_its_page_and_plots_byte_for_byte(tmp_path):
    """``python -m benchmarks.results_md benchmarks/records/extended``: the extended profile's page, from its record set
    and the full profile's movie-review runs it shares, its search's choices, and no other tables."""
    published = ROOT / "benchmarks" / "results" / "extended"
    out = tmp_path / "RESULTS.md"
    command = [
        sys.executable,
        "-m",
        "benchmarks.results_md",
        str(ROOT / "benchmarks" / "records" / "extended"),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_text() == (published / "RESULTS.md").read_text(), (
        "run python -m benchmarks.results_md benchmarks/records/extended"
    )
    assert (tmp_path / "RESULTS.html").read_bytes() == (published / "RESULTS.html").read_bytes()
    plots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert plots == sorted(p.name for p in published.glob("*.png")) == ["pareto_movie_sentiment.png", "time_movie_sentiment.png"]
    for name in plots:
        assert (tmp_path / name).read_bytes() == (published / name).read_bytes(), name


def test_the_committed_sets_are_small():
    sizes = {
        folder.name: sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        for folder in (ROOT / "benchmarks" / "records").iterdir()
        if folder.is_dir()
    }
    assert sizes and all(size < 20 * 2**20 for size in sizes.values()), sizes


def test_every_row_of_a_method_shows_the_latency_its_serial_pass_measured(tmp_path):
    from benchmarks import results_md

    sweep = tmp_path / "runs"
    _run(sweep, "synthetic_sentiment/lora/seed0", ["method=lora"], latency={"ratio": 1.5, "merged_ratio": 1.3, "flag": True})
    _run(sweep, "tuned/synthetic_sentiment/lora/seed0", ["method=lora", "trainer.learning_rate_scale=0.4"], seed=0)
    _run(
        sweep,
        "latency/synthetic_sentiment/lora/seed0",
        ["method=lora", "latency=true"],
        latency={"ratio": 1.02, "merged_ratio": 1.0, "flag": False},
    )
    _run(
        sweep,
        "synthetic_sentiment/ia3/seed0",
        ["method=ia3"],
        method="ia3",
        latency={"ratio": 1.1, "merged_ratio": 1.01, "flag": False},
    )
    records.export(sweep, tmp_path / "set")
    for source in (sweep, tmp_path / "set"):  # from the run folders and from the record set alike
        runs = {r["method"]: r["latency"] for r in results_md._load(source)}
        assert runs == {
            "lora": {"ratio": 1.02, "merged_ratio": 1.0, "flag": False},  # the pass's, not the run's own
            "lora (tuned)": {"ratio": 1.02, "merged_ratio": 1.0, "flag": False},
            "ia3": {"ratio": 1.1, "merged_ratio": 1.01, "flag": False},
        }  # no pass: its own run's


def test_the_extended_set_reads_the_full_sets_movie_review_runs_it_shares_and_nothing_else():
    """The extended profile's set holds its bridged tuners' runs; its report's rows of zoo's own methods and baselines are
    the full profile's movie-review runs (restored, never run again), read from that set: no tweets, no headlines."""
    own = {r["_folder"] for r in records._read(records.RECORDS / "extended", ())}
    runs = records.load_records(records.RECORDS / "extended", skip=("search",))
    folders = [r["_folder"] for r in runs]
    assert len(folders) == len(set(folders)) and {r["task"] for r in runs} == {"movie_sentiment"}
    shared = {r["_folder"]: r for r in runs if r["_folder"] not in own}
    assert {"movie_sentiment/lora/seed0", "tuned/movie_sentiment/lora/seed2-sample2", "movie_sentiment/zero_shot/seed0"} <= set(
        shared
    )
    assert all(not r["method"].startswith("peft_") for r in shared.values())
    assert records.shared_set("full") is None and records.shared_set("extended") == records.RECORDS / "full"
    from benchmarks import results_md

    said = [line for line in results_md._provenance(runs, records.load_suite(records.RECORDS / "extended")) if "Shared" in line]
    assert len(said) == 1 and "`benchmarks/records/full` (*config* `+benchmark=full`)" in said[0]


def test_another_profiles_page_is_linked_not_copied(tmp_path):
    """A RESULTS.md under the tables' folder names its plots by relative links, which a copy would point at the wrong
    page's plots: it is linked; a plain table is copied verbatim."""
    from benchmarks import results_md

    tables = tmp_path / "results"
    (tables / "extended").mkdir(parents=True)
    (tables / "extended" / "RESULTS.md").write_text("# Benchmark results\n\n![plot](pareto_movie_sentiment.png)\n")
    (tables / "speed.md").write_text("# Speed\n\n| a |\n|---|\n| 1 |\n")
    text = "\n".join(results_md._other_tables(tables, tmp_path))
    assert "[results/extended/RESULTS.md](results/extended/RESULTS.md)" in text and "![plot]" not in text
    assert "### `results/speed.md`\n\n# Speed\n\n| a |\n|---|\n| 1 |" in text
