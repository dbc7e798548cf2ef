"""The tuned protocol: trainer.learning_rate_scale, the synthetic task's validation split, the splits a run read,
the search space's equal budgets and the tie rule (benchmarks/tune.py then suite.py --tuned end to end:
tests/test_benchmark_suite.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from records_helpers import record_dict

import zoo
from benchmarks import plans, records, results_md, search_trials, suite, task_section, tune, tuned
from benchmarks import search_space as space
from zoo.io.records import RunRecord
from zoo.runner.config import store_configs
from zoo.runner.resume import finished_run, run_identity
from zoo.runtime.atomic import write_json
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.data import Splits
from zoo.tasks.synthetic import synthetic_sentiment, synthetic_validation
from zoo.training.learning_rate import HEAD_LEARNING_RATE, resolve
from zoo.training.loop import TrainerConfig

TASK = "synthetic_sentiment"


def _cfg(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer=smoke", "latency_batches=1", *overrides])


def test_the_scale_multiplies_the_method_rate_wherever_it_came_from():
    lora = zoo.get_method("lora")
    assert resolve(None, {}, lora, False, None, 3.0).method == pytest.approx(3 * lora.learning_rate)
    assert resolve(None, {"lora": 1e-4}, lora, False, None, 0.5).method == pytest.approx(5e-5)
    assert resolve(2e-2, {"lora": 1e-4}, lora, False, None, 0.5).method == pytest.approx(1e-2)
    assert resolve(None, {}, lora, True, None, 2.0).head == pytest.approx(2 * lora.learning_rate)  # the head follows the method
    assert resolve(None, {}, lora, True, 1e-1, 2.0).head == 1e-1  # a head rate of its own is not scaled
    assert resolve(None, {}, None, True, None, 2.0).head == HEAD_LEARNING_RATE  # a baseline has no method rate to scale
    assert resolve(None, {}, lora, False, None).method == lora.learning_rate


@pytest.mark.parametrize("scale", [0, -1.0, math.inf, math.nan, True])
def test_a_scale_that_is_not_a_positive_number_is_refused(scale):
    # a value of the wrong kind (inf, nan, a bool) meets the type check every field has first (zoo.runtime.typed_fields)
    with pytest.raises(ValueError, match=r"learning_rate_scale must be a finite (number above 0 .*|float, )got"):
        TrainerConfig(learning_rate_scale=scale)
    with pytest.raises(ValueError, match=r"learning_rate_scale must be a finite number above 0"):
        resolve(None, {}, zoo.get_method("lora"), False, None, scale)


def test_resume_compares_the_scaled_rate_and_records_from_before_the_scale_still_resume(tmp_path, caplog):
    identity = run_identity(_cfg("method=lora", "trainer.learning_rate_scale=3"))
    assert "learning_rate_scale" not in identity["trainer"] and identity["learning_rates"]["method"] == pytest.approx(1.5e-2)
    before = run_identity(_cfg("method=lora"))
    before["trainer"].pop("learning_rate_scale", None)  # as a zoo without the scale recorded it
    write_json(tmp_path / "metrics.json", record_dict(scores={"accuracy": 0.75, "macro_f1": 0.7}, run_config=before))
    assert finished_run(tmp_path, _cfg("method=lora", "trainer.learning_rate_scale=1")).objective == 0.75
    assert finished_run(tmp_path, _cfg("method=lora", "trainer.learning_rate_scale=3")) is None
    assert "differs in learning_rates.method" in caplog.text


def _digest(examples) -> str:
    return hashlib.sha256("\n".join(f"{e.label}\t{e.text}" for e in examples).encode()).hexdigest()[:16]


def test_the_synthetic_train_and_test_splits_are_what_they_were_before_the_validation_split():
    # digests of the examples zoo generated before it had a validation split
    default, small = synthetic_sentiment(512, 256, 0), synthetic_sentiment(32, 16, 3)
    assert (_digest(default.train), _digest(default.eval)) == ("2b4caf267dd5143f", "2263e54f4c46f33f")
    assert (_digest(small.train), _digest(small.eval)) == ("304363f875e76f65", "fbcc6ee6288b8d97")


def test_the_synthetic_validation_split_is_seeded_balanced_and_apart_from_test():
    validation = synthetic_validation(16, 3)
    assert len(validation) == 16 and sum(e.label for e in validation) == 8
    assert _digest(validation) == _digest(synthetic_validation(16, 3)) != _digest(synthetic_validation(16, 4))
    assert _digest(validation) != _digest(synthetic_sentiment(32, 16, 3).eval)
    data = build_task(TaskConfig(n_train=32, n_eval=16, seed=3, eval_split="validation"))
    assert [e.text for e in data.eval] == [e.text for e in validation]  # n_eval of 16: the whole split, in its order


@pytest.mark.parametrize("split", ["validation", "test"])
def test_splits_read_are_the_splits_build_task_asked_for(monkeypatch, split):
    calls = []
    real = Splits.split

    def spy(self, name):
        calls.append(name)
        return real(self, name)

    monkeypatch.setattr(Splits, "split", spy)
    data = build_task(TaskConfig(n_train=16, n_eval=8, eval_split=split))
    assert data.splits_read == tuple(dict.fromkeys(calls)) == ("train", split)


def test_a_record_written_before_splits_read_reads_as_none_read(tmp_path):
    old = record_dict()
    del old["splits_read"]
    write_json(tmp_path / "metrics.json", old)
    assert RunRecord.read(tmp_path / "metrics.json").splits_read == []


HALVING = "halving: {eta: 3, fractions: [0.34, 1.0]}\n"
RATES = "[0.025, 0.063, 0.16, 0.4, 1.0, 2.5]"


def _space(tmp_path: Path, text: str, methods=("lora", "ia3", "gift")):
    (tmp_path / "space.yaml").write_text(text)
    return space.load_space(tmp_path / "space.yaml", list(methods))


def test_unequal_trial_budgets_are_refused_naming_the_methods(tmp_path):
    with pytest.raises(SystemExit, match=r"unequal trial budgets \(gift 8, ia3 8, lora 16\); every method needs the same number"):
        _space(
            tmp_path,
            f"default: {{trainer.learning_rate_scale: {RATES}}}\n{HALVING}"
            f"methods: {{lora: {{trainer.learning_rate_scale: {RATES}, method.r: [4, 16]}}}}\n",
        )
    with pytest.raises(SystemExit, match=r"grids for \['llama'\], which are not searched methods; searched: \['adapter'"):
        _space(
            tmp_path, f"default: {{trainer.learning_rate_scale: {RATES}}}\n{HALVING}methods: {{llama: {{method.r: [4, 8]}}}}\n"
        )
    with pytest.raises(SystemExit, match=r"the grid of lora must map override keys to non-empty lists"):
        _space(tmp_path, f"default: {{trainer.learning_rate_scale: {RATES}}}\n{HALVING}methods: {{lora: {{method.r: []}}}}\n")
    equal = _space(tmp_path, f"default: {{trainer.learning_rate_scale: {RATES}}}\n{HALVING}")
    assert (equal.configurations, equal.trials) == (6, 8)
    assert equal.groups() == [(["lora", "ia3", "gift"], {"trainer.learning_rate_scale": [0.025, 0.063, 0.16, 0.4, 1.0, 2.5]})]


@pytest.mark.parametrize(
    ("grid", "problem"),
    [
        ("[0.1, 0.3, 1, 3]", "must hold at least 6 numbers above 0"),
        ("[0.1, 0.2, 0.4, 0.8, 1.6, 3.2]", "must span at least 2 decades"),
        ("[0.01, 0.02, 0.1, 0.3, 0.5, 1.0]", "must be log-spaced"),
        ("[0.01, 0.03, 0.1, 0.3, 1.0, -3.0]", "must hold at least 6 numbers above 0"),
    ],
)
def test_a_rate_grid_short_of_6_log_spaced_values_over_2_decades_is_refused(tmp_path, grid, problem):
    with pytest.raises(SystemExit, match=rf"lora's trainer.learning_rate_scale {problem}"):
        _space(tmp_path, f"default: {{trainer.learning_rate_scale: {grid}}}\n{HALVING}")
    with pytest.raises(SystemExit, match=r"lora's trainer.learning_rate_scale"):  # a size knob alone searches no rate
        _space(
            tmp_path,
            f"default: {{trainer.learning_rate_scale: {RATES}}}\n{HALVING}"
            "methods: {lora: {method.r: [1, 2, 4, 8, 16, 32]}}\n",
        )


@pytest.mark.parametrize("profile", ["smoke", "quick", "full", "default"])
def test_every_profile_searches_each_rate_over_6_log_spaced_values_and_2_decades_with_equal_budgets(profile):
    loaded = space.load_space(space.space_path(profile))
    assert set(loaded.grids) == {m for m in zoo.list_methods() if not m.startswith("peft_")}
    assert loaded.trials == 8 and loaded.halving.sizes(loaded.configurations) == [6, 2]
    for method, grid in loaded.grids.items():
        (key,) = grid
        values = sorted(grid[key])
        assert key == ("method.ridge" if zoo.get_method(method).gradient_free else "trainer.learning_rate_scale")
        ratios = [b / a for a, b in zip(values, values[1:])]
        assert len(values) >= 6 and values[-1] / values[0] >= 100 - 1e-9 and max(ratios) / min(ratios) < 1.05
        assert tuned.default_value(method, key) in values  # the registered default is one of the trials


def test_the_extended_profile_searches_every_bridged_tuner_with_the_same_budget():
    loaded = space.load_space(space.space_path("extended"), space.searched_methods(bridged=True))
    bridged = {m for m in zoo.list_methods() if m.startswith("peft_")}
    assert bridged and bridged | set(space.searched_methods()) == set(loaded.grids) and loaded.trials == 8
    assert {m: g for m, g in loaded.grids.items() if not m.startswith("peft_")} == space.load_space(
        space.space_path("full")
    ).grids
    assert suite.PLANS["extended"] == {"movie_sentiment": suite.PLANS["full"]["movie_sentiment"]}


def test_the_extended_profiles_runs_of_zoos_methods_are_the_full_profiles():
    """So the extended profile resumes them from the full profile's record set instead of running them again."""
    overrides = ["task=movie_sentiment", "method=lora", "seed=1", "task.sample_seed=1", "task.shots_per_class=60"]
    assert run_identity(_cfg("+benchmark=extended", *overrides)) == run_identity(_cfg("+benchmark=full", *overrides))
    assert records.shared_set("extended") == records.RECORDS / "full"


def test_no_benchmark_profile_sets_a_learning_rate_by_hand():
    for path in Path(space.space_path("full")).parents[1].joinpath("benchmark").glob("*.yaml"):
        text = path.read_text()
        assert "method_learning_rates:" not in text and "learning_rate:" not in text, path.name


def test_the_search_reads_fewer_validation_examples_than_the_comparison_reads_test_ones(tmp_path):
    """The full profile compares rows on 300 test examples (its power) while the search reads 150 validation examples (and
    48 headlines): the trials the search committed ran at those sizes, and the tuned rows at the profile's."""
    loaded = space.load_space(space.space_path("full"))
    sizes = {
        next(a for a in c if a.startswith("task=")): [a for a in c if a.startswith("task.n_eval=")]
        for c in tune.search_sweeps("full", loaded, tmp_path, [])
    }
    assert sizes == {
        "task=movie_sentiment": ["task.n_eval=150"],
        "task=tweet_sentiment": ["task.n_eval=150"],
        "task=bbc_headlines": ["task.n_eval=48"],
    }
    profile = Path(space.space_path("full")).parents[1] / "benchmark" / "full.yaml"
    assert OmegaConf.load(profile).task.n_eval == 300
    committed = records.load_records(records.RECORDS / "full")
    trials = {(r["task"], r["task_config"]["n_eval"]) for r in committed if r["_folder"].startswith("search/")}
    assert trials == {("movie_sentiment", 150), ("tweet_sentiment", 150), ("bbc_headlines", 48)}
    tested = {(r["task"], r["task_config"]["n_eval"]) for r in committed if not r["_folder"].startswith("search/")}
    assert tested == {("movie_sentiment", 300), ("tweet_sentiment", 300), ("bbc_headlines", 100), ("movie_sentiment", 16)}


def test_a_generation_task_is_searched_with_the_methods_that_declare_it(tmp_path):
    """BBC headlines (full profile): every method but those of classification only (the closed-form head, LoReFT), on validation, at seed 0,
    its first rung at a third of the task's steps."""
    loaded = space.load_space(space.space_path("full"))
    commands = [c for c in tune.search_sweeps("full", loaded, tmp_path, []) if "task=bbc_headlines" in c]
    searched = {m for c in commands for a in c if a.startswith("method=") for m in a.removeprefix("method=").split(",")}
    assert searched == set(loaded.grids) - {"closed_form_head", "loreft"}
    steps = tune.task_steps("full", "bbc_headlines")
    settings = ["seed=0", f"trainer.max_steps={round(0.34 * steps)}"]
    assert all(
        set(settings) <= set(c) and "task.eval_split=validation" in c and "forgetting.text=none" in c and "latency=false" in c
        for c in commands
    )
    assert all(
        c.index(f"trainer.max_steps={round(0.34 * steps)}")
        > max(i for i, a in enumerate(c) if a.startswith("trainer.max_steps=")) - 1
        for c in commands
    )  # the rung's steps come after the plan's


@pytest.mark.parametrize(
    ("sweeps", "expected"),
    [
        (("seed=0", "seed=1 task.sample_seed=1"), ["seed=0"]),
        (("seed=2 task.n_eval=24 trainer.batch_size=4",), ["seed=2", "task.n_eval=24", "trainer.batch_size=4"]),
        (("seed=0 latency=false task.n_eval=16",), ["seed=0", "task.n_eval=16"]),  # the search and the tuned rows set their own
    ],
)
def test_the_first_run_is_the_first_sweep_without_a_sample_seed_or_latency(sweeps, expected):
    assert suite.first_run(sweeps) == expected


def test_a_plan_whose_first_sweep_sets_no_seed_or_several_runs_is_refused():
    with pytest.raises(ValueError, match="sets no seed="):
        suite.first_run(("task.n_eval=24",))
    with pytest.raises(ValueError, match="sweeps several values; the first run must be one run"):
        suite.first_run(("seed=0,1",))


def test_run_i_of_a_plan_is_seed_i_on_training_sample_i():
    assert plans.paired_runs(3, "task.n_eval=24") == (
        "seed=0 task.n_eval=24",
        "seed=1 task.sample_seed=1 task.n_eval=24",
        "seed=2 task.sample_seed=2 task.n_eval=24",
    )
    assert {task: len(runs) for task, runs in suite.PLANS["full"].items()} == {
        "movie_sentiment": 3,
        "tweet_sentiment": 3,
        "bbc_headlines": 1,
    }
    assert "task.n_eval=100" in suite.PLANS["full"]["bbc_headlines"][0].split()


def _trial(method: str, accuracy: float, rate: float, **values) -> tune.Trial:
    values = {k.replace("__", "."): v for k, v in values.items()}
    return tune.Trial(method, values, Path(method), accuracy, rate, ["train", "validation"])


def test_the_best_validation_accuracy_wins_then_the_smaller_change_then_the_lower_rate():
    best = _trial("ia3", 0.8, 6e-2, trainer__learning_rate_scale=3.0)
    assert tune.choose([_trial("ia3", 0.7, 2e-2, trainer__learning_rate_scale=1.0), best]) is best
    near = _trial("ia3", 0.7, 6e-2, trainer__learning_rate_scale=3.0)  # |log 3| < |log 0.3|
    assert tune.choose([_trial("ia3", 0.7, 6e-3, trainer__learning_rate_scale=0.3), near]) is near
    low = _trial("ia3", 0.7, 1e-2, trainer__learning_rate_scale=0.5)  # |log 0.5| == |log 2|: the lower rate
    assert tune.choose([_trial("ia3", 0.7, 4e-2, trainer__learning_rate_scale=2.0), low]) is low
    small = _trial("lora", 0.7, 5e-3, method__r=4)  # |log 4/8| == |log 16/8|, one rate: the grid's first
    assert tune.choose([small, _trial("lora", 0.7, 5e-3, method__r=16)]) is small
    default = _trial("lora", 0.7, 5e-3, method__r=8, trainer__learning_rate_scale=1.0)
    assert (
        tuned.change("lora", default.values) == 0 and tune.choose([_trial("lora", 0.7, 5e-3, method__r=16), default]) is default
    )


def test_a_trial_that_diverged_is_chosen_last_and_marked_in_the_trials_table(tmp_path):
    """A run whose own divergence check fired scores a broken model: the best score of a diverged trial (LoReFT at the top
    of its grid on tweets, 0.400 against 0.200) loses to any trial that did not diverge, and the table says why."""
    broken = dataclasses.replace(_trial("loreft", 0.4, 7.5e-2, trainer__learning_rate_scale=2.5), diverged=True)
    kept = _trial("loreft", 0.2, 4.8e-3, trainer__learning_rate_scale=0.16)
    assert tune.choose([broken, kept]) is kept and search_trials.runner_up([broken, kept])["values"] == broken.values
    summary = {
        "task": "tweet_sentiment",
        "profile": "full",
        "objective": "accuracy",
        "halving": {"eta": 3, "fractions": [1.0]},
        "trials_per_method": 2,
        "methods": {
            "loreft": {
                "trials": [search_trials._trial_entry(t) for t in (broken, kept)],
                "chosen": kept.values,
                "runner_up": None,
            }
        },
    }
    table = search_trials.trials_table(summary)
    assert "| 0.075 | 0.400 diverged |" in table and "| **trainer.learning_rate_scale=0.16** | 0.0048 | **0.200** |" in table
    assert "diverged" not in search_trials._trial_entry(kept)


def _fake_trial(folder: Path, accuracy: float, config: dict, answers: list[int] | None = None) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    write_json(
        folder / "metrics.json",
        record_dict(
            scores={"accuracy": accuracy, "macro_f1": 0.5},
            splits_read=["train", "validation"],
            example_scores={"accuracy": answers} if answers else {},
        ),
    )


def test_collect_keeps_the_grids_trials_in_its_order_and_names_a_missing_one(tmp_path):
    for name, r, scale, accuracy in [
        ("method.r=16", 16, 1.0, 0.6),
        ("method.r=4", 4, 1.0, 0.7),
        ("method.r=2", 2, 1.0, 0.9),
        ("trainer.learning_rate_scale=1.0,method.r=4", 4, 1.0, 0.8),
    ]:
        _fake_trial(tmp_path / "lora" / "rung0" / name, accuracy, {"method": {"r": r}, "trainer": {"learning_rate_scale": scale}})
    wanted = [{"method.r": 4}, {"method.r": 16}]
    found = tune.collect(tmp_path, "lora", {"method.r": [4, 16]}, 0, wanted)  # not r=2 (unwanted), nor another grid's folder
    assert [(t.values, t.score) for t in found] == [({"method.r": 4}, 0.7), ({"method.r": 16}, 0.6)]
    with pytest.raises(SystemExit, match=r"lora on .* has no finished trial for \[\{'method.r': 8\}\] under .*rung0"):
        tune.collect(tmp_path, "lora", {"method.r": [4, 8, 16]}, 0, [{"method.r": 4}, {"method.r": 8}])


SCALES = [0.025, 0.063, 0.16, 0.4, 1.0, 2.5]


def test_halving_trains_the_best_third_of_a_rung_again_and_chooses_the_last_rungs_best(tmp_path):
    """A constructed search: rung 0's best two (0.8, and 0.7 twice broken by the smaller change from the default: 0.4 beats
    0.063) go on to rung 1; there the best is chosen, even though rung 0 had ranked the other first."""
    loaded = space.load_space(space.space_path("smoke"), ["ia3"])
    grid, out = loaded.grids["ia3"], tmp_path / "out"
    rung0 = dict(zip(SCALES, [0.5, 0.7, 0.6, 0.7, 0.8, 0.55]))
    for scale, accuracy in rung0.items():
        _fake_trial(
            out / "search" / TASK / "ia3" / "rung0" / f"trainer.learning_rate_scale={scale}",
            accuracy,
            {"trainer": {"learning_rate_scale": scale}},
        )
    assert tune.survivors(out, TASK, "ia3", grid, 1, loaded) == [
        {"trainer.learning_rate_scale": 1.0},
        {"trainer.learning_rate_scale": 0.4},
    ]
    (command,) = tune.rung_sweeps("smoke", loaded, out, [], 1)
    assert "trainer.learning_rate_scale=0.4,1.0" in command and "trainer.max_steps=2" in command and "method=ia3" in command
    for scale, accuracy, answers in ((1.0, 0.25, [1, 0, 0, 0, 1, 0, 0, 0]), (0.4, 0.75, [1, 1, 1, 1, 1, 1, 0, 0])):
        _fake_trial(
            out / "search" / TASK / "ia3" / "rung1" / f"trainer.learning_rate_scale={scale}",
            accuracy,
            {"trainer": {"learning_rate_scale": scale}},
            answers,
        )
    rungs = [tune.rung_trials(out, TASK, "ia3", grid, k, loaded) for k in (0, 1)]
    assert [len(r) for r in rungs] == [6, 2] and loaded.trials == 8
    chosen = tune.write_search(tmp_path / "tuned", "smoke", TASK, loaded, {"ia3": rungs})
    assert chosen["ia3"].values == {"trainer.learning_rate_scale": 0.4}
    summary = json.loads((tmp_path / "tuned" / f"{TASK}.search.json").read_text())["methods"]["ia3"]
    assert len(summary["trials"]) == 8 and summary["chosen"] == {"trainer.learning_rate_scale": 0.4}
    # 4 validation examples only the choice got right, none only the runner-up: McNemar's exact p = 2 * (1/2)**4
    assert summary["runner_up"]["values"] == {"trainer.learning_rate_scale": 1.0}
    assert summary["runner_up"]["p"] == pytest.approx(0.125) and summary["runner_up"]["differs"] is False
    assert tuned.read_tuned(tmp_path / "tuned" / f"{TASK}.yaml") == {"ia3": {"trainer.learning_rate_scale": 0.4}}


def test_the_choices_table_marks_a_choice_at_either_end_of_its_grid():
    """The best value may lie beyond a grid whose end was chosen: the table says which axis and which end."""
    trials = [{"values": {"trainer.learning_rate_scale": s, "method.r": r}} for s in SCALES for r in (4, 8)]
    entries = {
        "lowest": {"trainer.learning_rate_scale": 0.025, "method.r": 8},
        "inside": {"trainer.learning_rate_scale": 0.4, "method.r": 8},
        "both": {"trainer.learning_rate_scale": 2.5, "method.r": 4},
    }
    search = {
        "trials_per_method": 12,
        "halving": {"eta": 3},
        "methods": {m: {"chosen": c, "chosen_score": 0.5, "runner_up": None, "trials": trials} for m, c in entries.items()},
    }
    rows = {ln.split(" | ")[0].removeprefix("| "): ln.split(" | ")[-1] for ln in task_section._search_table(search) if "| " in ln}
    assert rows["lowest"] == "trainer.learning_rate_scale lowest; method.r highest |"
    assert rows["inside"] == "method.r highest |"
    assert rows["both"] == "trainer.learning_rate_scale highest; method.r lowest |"
    one_value = {
        "chosen": {"method.ridge": 1.0},
        "chosen_score": 0.5,
        "runner_up": None,
        "trials": [{"values": {"method.ridge": 1.0}}],
    }
    assert task_section._grid_end(one_value) == "-"  # a single value tried is no grid end


def test_methods_with_the_same_survivors_go_on_in_one_multirun(tmp_path):
    loaded = space.load_space(space.space_path("smoke"), ["ia3", "lora", "gift"])
    out = tmp_path / "out"
    for method, scores in (
        ("ia3", [0.5, 0.7, 0.6, 0.7, 0.8, 0.55]),
        ("lora", [0.5, 0.6, 0.6, 0.7, 0.8, 0.55]),
        ("gift", [0.9, 0.7, 0.6, 0.7, 0.8, 0.55]),
    ):
        for scale, accuracy in zip(SCALES, scores):
            _fake_trial(
                out / "search" / TASK / method / "rung0" / f"trainer.learning_rate_scale={scale}",
                accuracy,
                {"trainer": {"learning_rate_scale": scale}},
            )
    commands = tune.rung_sweeps("smoke", loaded, out, [], 1)
    swept = sorted(
        (next(a for a in c if a.startswith("method=")), next(a for a in c if a.startswith("trainer.learning_rate_scale=")))
        for c in commands
    )
    assert swept == [
        ("method=gift", "trainer.learning_rate_scale=0.025,1.0"),
        ("method=ia3,lora", "trainer.learning_rate_scale=0.4,1.0"),
    ]


def test_a_generation_trial_is_scored_by_its_rouge_l_as_every_exact_match_is_zero(tmp_path):
    for scale, rouge in ((0.3, 0.25), (1.0, 0.21)):
        folder = tmp_path / "lora" / "rung0" / f"trainer.learning_rate_scale={scale}"
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "config.yaml").write_text(json.dumps({"trainer": {"learning_rate_scale": scale}}))
        write_json(
            folder / "metrics.json",
            record_dict(
                task_kind="generation",
                objective_metric="rouge_l",
                splits_read=["train", "validation"],
                scores={"rouge_l": rouge, "exact_match": 0.0, "log_likelihood_per_token": -2.0},
            ),
        )
    grid = {"trainer.learning_rate_scale": [0.3, 1.0]}
    found = tune.collect(tmp_path, "lora", grid, 0, space.trials(grid))
    assert [t.score for t in found] == [0.25, 0.21] and tune.choose(found).values == {"trainer.learning_rate_scale": 0.3}
    assert RunRecord.read(tmp_path / "lora" / "rung0" / "trainer.learning_rate_scale=1.0" / "metrics.json").objective == 0.21
    assert RunRecord(**record_dict(scores={"accuracy": 0.75, "macro_f1": 0.5})).objective == 0.75  # classification: accuracy


def test_a_search_whose_trials_read_test_is_refused():
    tune.check_no_test([_trial("lora", 0.7, 5e-3, method__r=4)])
    leaked = tune.Trial("lora", {"method.r": 4}, Path("runs/lora/method.r=4"), 0.9, 5e-3, ["train", "test"])
    with pytest.raises(SystemExit, match=r"read the test split.*\n  lora method.r=4 \(runs/lora/method.r=4\)"):
        tune.check_no_test([_trial("lora", 0.7, 5e-3, method__r=16), leaked])


def test_methods_outside_zoos_registry_are_refused_naming_the_valid_ones():
    with pytest.raises(SystemExit, match=r"--methods 'ia3,nope': \['nope'\] not among zoo's methods; valid: .*ia3"):
        suite.method_selection("ia3,nope")
    with pytest.raises(SystemExit, match=r"--methods 'peft_dora': \['peft_dora'\] not among zoo's methods"):
        suite.method_selection("peft_dora")  # the bridged tuners are --peft-bridge's
    assert suite.method_selection(" ia3 ,lora") == ["ia3", "lora"] and suite.method_selection(None) is None


def test_the_suite_without_a_tuned_config_says_to_tune_first(tmp_path):
    args = ["--profile", "smoke", "--tuned", "--tuned-dir", str(tmp_path), "--out", str(tmp_path / "runs")]
    with pytest.raises(SystemExit, match=rf"no tuned config at {tmp_path / TASK}.yaml; run `python -m benchmarks.tune"):
        suite.main([*args, "--records", str(tmp_path / "records")])


def test_the_tuned_rows_run_every_paired_run_and_the_default_rows_the_first(tmp_path):
    for task in suite.PLANS["full"]:
        tuned.write_tuned(tuned.tuned_path(tmp_path, task), {"lora": {"trainer.learning_rate_scale": 0.3}}, "test")
    commands = suite.tuned_sweeps("full", tmp_path / "out", [], tmp_path)
    runs = sorted(
        (next(a for a in c if a.startswith("task=")), " ".join(a for a in c if a.startswith(("seed=", "task.sample_seed="))))
        for c in commands
    )
    assert runs == sorted(
        [
            ("task=movie_sentiment", "seed=0"),
            ("task=movie_sentiment", "seed=1 task.sample_seed=1"),
            ("task=movie_sentiment", "seed=2 task.sample_seed=2"),
            ("task=bbc_headlines", "seed=0"),
            *(("task=tweet_sentiment", f"seed={i}" + (f" task.sample_seed={i}" if i else "")) for i in range(3)),
        ]
    )
    assert all("latency=false" in c and "trainer.learning_rate_scale=0.3" in c for c in commands)
    kinds = [
        (c[c.index("-m") + 2], next(a for a in c if a.startswith("seed=")))
        for c in suite.sweeps("full", tmp_path, [], tuned=True)
        if "task=movie_sentiment" in c
    ]
    assert kinds == [
        ("+sweep=all_methods", "seed=0"),
        ("baseline=zero_shot,linear_probe", "seed=0"),
        ("baseline=in_context", "seed=0"),
        ("baseline=zero_shot,linear_probe", "seed=1"),
        ("baseline=in_context", "seed=1"),
        ("baseline=zero_shot,linear_probe", "seed=2"),
        ("baseline=in_context", "seed=2"),
    ]
    assert len(suite.sweeps("full", tmp_path, [], tuned=False)) == 3 * (3 + 3 + 1)  # without tuned rows, every row every run


def test_the_latency_pass_times_every_row_once_one_job_at_a_time_after_the_training(tmp_path):
    (methods, baselines, in_context) = suite.latency_sweeps("full", tmp_path, [], None)
    assert (
        methods[methods.index("-m") + 2] == "+sweep=all_methods"
        and in_context[in_context.index("-m") + 2] == "baseline=in_context"
    )
    for command in (methods, baselines, in_context):
        assert {"latency=true", "hydra.launcher.n_jobs=1", "cpu_threads=2", "task=movie_sentiment", "seed=0"} <= set(command)
        assert f"hydra.sweep.dir={tmp_path / 'latency'}" in command
    assert suite.latency_sweeps("smoke", tmp_path, [], None) == []  # the smoke profile times inside its runs


def test_a_tuned_row_at_the_defaults_is_its_default_rows_first_run_copied_not_run_again(tmp_path):
    out, chosen = tmp_path / "out", {"lora": {"trainer.learning_rate_scale": 1}, "ia3": {"trainer.learning_rate_scale": 0.3}}
    for task in suite.PLANS["full"]:
        tuned.write_tuned(tuned.tuned_path(tmp_path, task), chosen, "test")
    commands = suite.tuned_sweeps("full", out, [], tmp_path)
    first = [c for c in commands if "seed=0" in c]
    assert len(first) == len(suite.PLANS["full"]) and all("method=ia3" in c for c in first)  # lora is not run again
    assert {a for c in commands if "seed=0" not in c for a in c if a.startswith("method=")} == {"method=ia3", "method=lora"}
    source = out / "movie_sentiment" / "lora" / "seed0"
    (source / ".hydra").mkdir(parents=True)
    (source / ".hydra" / "overrides.yaml").write_text(
        "- +benchmark=full\n- +sweep=all_methods\n- task=movie_sentiment\n- seed=0\n- method=lora\n"
    )
    write_json(source / "metrics.json", record_dict(scores={"accuracy": 0.8125, "macro_f1": 0.8}, task="movie_sentiment"))

    missing = suite.reuse_first_runs("full", out, tmp_path)

    target = out / "tuned" / "movie_sentiment" / "lora" / "seed0"
    assert (target / "metrics.json").read_bytes() == (source / "metrics.json").read_bytes()
    assert (target / "same_run_as").read_text() == "movie_sentiment/lora/seed0\n"
    assert (target / ".hydra" / "overrides.yaml").read_text().splitlines()[-1] == "- trainer.learning_rate_scale=1"
    assert [m.split(":")[0] for m in missing] == ["tweet_sentiment lora (tuned)", "bbc_headlines lora (tuned)"]
    assert "no default first run at" in missing[0] and not (out / "tuned" / "movie_sentiment" / "ia3").exists()
    report = results_md
    (entry,) = [r for r in report._tuned_runs(out / "tuned")]
    assert (entry["method"], entry["scores"]["accuracy"], entry["_overrides"]) == (
        "lora (tuned)",
        0.8125,
        "+benchmark=full task=movie_sentiment trainer.learning_rate_scale=1",
    )
    assert suite.reuse_first_runs("full", out, tmp_path) == missing  # copied once: a second call leaves it as it is
    assert (target / "metrics.json").read_bytes() == (source / "metrics.json").read_bytes()
    rerun = record_dict(scores={"accuracy": 0.75, "macro_f1": 0.7}, task="movie_sentiment")  # the default run, run again
    write_json(source / "metrics.json", rerun)  # (a new test set, say): the copy must follow, not keep the old answers
    suite.reuse_first_runs("full", out, tmp_path)
    assert RunRecord.read(target / "metrics.json").scores["accuracy"] == 0.75
