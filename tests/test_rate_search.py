"""``trainer.learning_rate=auto`` (zoo.runner.rate_search): successive halving of the method's rate on the validation split
before the run, its trials in the record, never a look at the test split; and what zoo returns to an optimising sweeper."""

from __future__ import annotations

import math

import pytest
from app_config import app_config
from hydra.types import RunMode
from omegaconf import OmegaConf
from records_helpers import record_dict

import zoo
from zoo.io.records import RunRecord
from zoo.runner import rate_search
from zoo.runner.sweeper_objective import BASIC_SWEEPER, check_sweeper_objective
from zoo.tasks.data import Splits
from zoo.training.halving import RATE_SCALES, Halving, check_log_grid, survivors
from zoo.training.learning_rate import resolve

OVERRIDES = (
    "method=ia3",
    "trainer=smoke",
    "trainer.max_steps=6",
    "task.n_train=32",
    "task.n_eval=16",
    "save_adapter=false",
    "latency=false",
    "forgetting.text=none",
)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One run at trainer.learning_rate=auto, every split each of its runs asked for recorded by a spy."""
    out, calls = tmp_path_factory.mktemp("auto"), []
    real = Splits.split

    def spy(self, name):
        calls.append(name)
        return real(self, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Splits, "split", spy)
        cfg = app_config(*OVERRIDES, "trainer.learning_rate=auto", f"predictions_cache={out / 'predictions'}")
        record = rate_search.run_with_rate_search(cfg, out)
    return out, record, calls


def test_auto_runs_six_rates_then_the_best_two_on_validation_and_trains_at_the_best(searched):
    out, record, _ = searched
    trials = record.learning_rate_search["trials"]
    default = zoo.get_method("ia3").learning_rate
    assert [(t["rung"], t["steps"]) for t in trials] == [(0, 1)] * 6 + [(1, 3)] * 2
    assert [t["learning_rate"] for t in trials[:6]] == pytest.approx([s * default for s in RATE_SCALES])
    rung0 = sorted(trials[:6], key=lambda t: (-t["score"], abs(math.log(t["scale"])), t["scale"]))
    assert [t["scale"] for t in trials[6:]] == [t["scale"] for t in rung0[:2]]  # the best two of rung 0 go on
    best = min(trials[6:], key=lambda t: (-t["score"], abs(math.log(t["scale"])), t["scale"]))
    assert record.learning_rate == pytest.approx(best["learning_rate"]) == pytest.approx(record.learning_rate_search["chosen"])
    assert record.train_steps == 6 and record.splits_read == ["train", "test"]  # the run itself, as any run
    for t in trials:
        trial = RunRecord.read(out / "learning_rate_search" / f"rung{t['rung']}" / f"scale={t['scale']:g}" / "metrics.json")
        assert trial.splits_read == ["train", "validation"] and trial.objective == t["score"] and trial.train_steps == t["steps"]
    assert RunRecord.read(out / "metrics.json").learning_rate_search == record.learning_rate_search


def test_auto_never_reads_the_test_split_before_the_run_itself(searched):
    _, _, calls = searched
    assert calls == ["train", "validation"] * 8 + ["train", "test"]  # the 8 trials, then the run


def test_a_resumed_auto_run_runs_nothing_again(searched, monkeypatch):
    out, record, _ = searched
    monkeypatch.setattr(rate_search, "run", lambda cfg, folder: pytest.fail(f"ran {folder} again"))
    cfg = app_config(*OVERRIDES, "trainer.learning_rate=auto", f"predictions_cache={out / 'predictions'}", "resume=true")
    assert rate_search.run_with_rate_search(cfg, out).scores == record.scores


def test_a_trial_that_read_test_stops_the_search(tmp_path, monkeypatch):
    leaky = rate_search._trial_config
    monkeypatch.setattr(
        rate_search,
        "_trial_config",
        lambda cfg, scale, steps: OmegaConf.merge(leaky(cfg, scale, steps), {"task": {"eval_split": "test"}}),
    )
    cfg = app_config(*OVERRIDES, "trainer.learning_rate=auto", f"predictions_cache={tmp_path / 'predictions'}")
    with pytest.raises(RuntimeError, match=r"learning-rate search's trial in .*scale=0.025 read the test split"):
        rate_search.search_rate(cfg, tmp_path)


def test_a_trial_that_diverged_is_never_chosen_however_it_scored(tmp_path, monkeypatch):
    """The top scale scores best on validation but its run diverged (its loss blew up): the search goes on with the others
    and the run trains at the best of those."""
    scores = dict(zip(rate_search.RATE_SCALES, (0.5, 0.6, 0.7, 0.65, 0.55, 0.9)))
    diverged = max(rate_search.RATE_SCALES)

    def fake(cfg, out_dir, rung, scale, steps):
        fields = {"scores": {"accuracy": scores[scale], "macro_f1": 0.5}, "learning_rate": 1e-2 * scale}
        return RunRecord(**record_dict(**fields, diverged=scale == diverged, splits_read=["train", "validation"]))

    monkeypatch.setattr(rate_search, "_trial", fake)
    rate, summary = rate_search.search_rate(app_config(*OVERRIDES, "trainer.learning_rate=auto"), tmp_path)
    best = max((s for s in rate_search.RATE_SCALES if s != diverged), key=scores.get)
    assert rate == pytest.approx(1e-2 * best) and summary["chosen"] == pytest.approx(1e-2 * best)
    assert [t["scale"] for t in summary["trials"] if t.get("diverged")] == [diverged]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("method=closed_form_head",), "this method, which is gradient-free, trains none"),
        (("baseline=linear_probe",), "baseline linear_probe trains none"),
        (("method=lora", "trainer.budget=time", "trainer.max_seconds=5"), "shares out the run's steps .*budget=time"),
    ],
)
def test_auto_is_refused_where_there_is_no_rate_or_no_steps_to_share(tmp_path, overrides, message):
    cfg = app_config("trainer=smoke", "trainer.learning_rate=auto", *overrides)
    with pytest.raises(ValueError, match=message):
        rate_search.search_rate(cfg, tmp_path)


def test_auto_or_a_bad_rate_is_refused_where_a_number_is_needed():
    with pytest.raises(ValueError, match="trainer.learning_rate=auto is searched before a run is planned"):
        resolve("auto", {}, zoo.get_method("lora"), False, None)
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number above 0 .*auto: .*got 'fast'"):
        OmegaConf.to_object(app_config("trainer.learning_rate=fast").trainer)


def test_halving_keeps_the_best_ceil_n_over_eta_of_each_rung():
    schedule = Halving(3, (0.34, 1.0))
    assert schedule.sizes(6) == [6, 2] and schedule.sizes(10) == [10, 4] and schedule.trials(6) == 8
    assert schedule.steps(15) == [5, 15] and schedule.steps(2) == [1, 2]
    scores = {"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.9}
    assert survivors(list(scores), 2, lambda k: (-scores[k], k)) == ["b", "d"]
    for eta, fractions in ((1, (0.5, 1.0)), (3, (1.0, 0.5)), (3, (0.0, 1.0)), (3, ())):
        with pytest.raises(ValueError, match="halving"):
            Halving(eta, fractions)
    check_log_grid(RATE_SCALES, "scales")
    with pytest.raises(ValueError, match="span at least 2 decades"):
        check_log_grid([1, 2, 4, 8, 16, 32], "rates")


def _hydra(sweeper: str, mode: RunMode = RunMode.MULTIRUN):
    return OmegaConf.create({"sweeper": {"_target_": sweeper}, "mode": mode})


def test_an_optimising_sweeper_on_the_test_split_is_refused_with_the_fix_named():
    optuna = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    with pytest.raises(
        ValueError, match=r"OptunaSweeper optimises what zoo returns.*evaluates on 'test'.*Add task.eval_split=validation"
    ):
        check_sweeper_objective(app_config(), _hydra(optuna))
    check_sweeper_objective(app_config("task.eval_split=validation"), _hydra(optuna))  # returns the validation score
    check_sweeper_objective(app_config(), _hydra(BASIC_SWEEPER))  # the basic sweeper ignores what a run returns
    check_sweeper_objective(app_config(), _hydra(optuna, RunMode.RUN))  # a single run returns to nobody
