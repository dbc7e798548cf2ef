"""The latency protocol (zoo.evaluation.latency) on a fake clock: base and tuned model in turn batch by batch, the warm-up
not counted, medians, the evaluation batches cycled, merged ratios outside the band flagged; baselines timed against the
bare prompt; zoo-report's mark on a flagged row."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from app_config import app_config
from records_helpers import record_dict

import zoo
import zoo.evaluation.latency as latency
import zoo.runner.pipeline.steps
from zoo.evaluation.latency import WARMUP, Timed, interleave, latency_record, merged_flag
from zoo.models.tiny import tiny_model
from zoo.report.table import LATENCY_MARK, load_runs, markdown, summarise
from zoo.runner.plan import plan_run
from zoo.runner.run import run
from zoo.runtime.atomic import write_json

BATCHES = [{"id": 0}, {"id": 1}, {"id": 2}]


@pytest.fixture
def clock(monkeypatch):
    """Every timed call as ``(model, batch)``; ``clock.cost(model, batch, call)`` says how many seconds a call takes."""
    state = SimpleNamespace(now=0.0, calls=[], cost=lambda model, batch, call: 1.0)

    def predict(model, batches, scorer):
        (batch,) = batches
        state.now += state.cost(model, batch, len(state.calls))
        state.calls.append((model, batch))

    monkeypatch.setattr(latency, "predict", predict)
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=lambda: state.now))
    return state


def test_base_and_model_take_turns_batch_by_batch_cycling_through_fewer_batches(clock):
    record = latency_record(Timed("tuned", BATCHES, None), Timed("base", BATCHES, None), batches=5)
    assert [model for model, _ in clock.calls] == ["base", "tuned"] * (WARMUP + 5)
    assert [batch["id"] for _, batch in clock.calls[::2]] == [i % 3 for i in range(WARMUP + 5)]
    assert [batch for _, batch in clock.calls[::2]] == [batch for _, batch in clock.calls[1::2]]  # each turn, the same batch
    assert (record["batches"], record["distinct_batches"], record["merged_ratio"], record["flag"]) == (5, 3, None, None)


def test_the_warm_up_turns_are_not_counted(clock):
    clock.cost = lambda model, batch, call: call + 1.0
    base, tuned = interleave(Timed("base", BATCHES, None), Timed("tuned", BATCHES, None), batches=3, warmup=2)
    assert (base, tuned) == ([5.0, 7.0, 9.0], [6.0, 8.0, 10.0])  # calls 1-4 were the two warm-up turns


def test_the_ratio_is_of_the_median_seconds_per_batch(clock):
    base_seconds = iter([100.0, 100.0, 1.0, 1.0, 1.0, 1.0, 10.0])  # two warm-up turns, then one slow batch
    clock.cost = lambda model, batch, call: next(base_seconds) if model == "base" else 2.0
    record = latency_record(Timed("tuned", BATCHES, None), Timed("base", BATCHES, None), batches=5)
    assert (record["base_seconds_per_batch"], record["seconds_per_batch"], record["ratio"]) == (
        1.0,
        2.0,
        2.0,
    )  # of means: 2 / 2.8


@pytest.fixture(scope="module")
def lora():
    return zoo.wrap(tiny_model("tiny-llama", vocab_size=32), "lora")


@pytest.mark.parametrize(
    "merged_seconds,flagged", [(1.0, False), (1.04, False), (0.97, False), (1.13, True), (0.9, True), (1.9, True)]
)
def test_a_merged_ratio_outside_the_band_is_flagged(clock, lora, merged_seconds, flagged):
    clock.cost = lambda model, batch, call: 1.0 if model == "base" else merged_seconds if model.merged else 1.5
    record = latency_record(Timed(lora, BATCHES, None), Timed("base", BATCHES, None), batches=4)
    assert record["ratio"] == 1.5 and record["merged_ratio"] == pytest.approx(merged_seconds)
    assert bool(record["flag"]) == flagged and not lora.merged  # timed merged, then unmerged
    assert [model for model, _ in clock.calls] == ["base", lora] * 2 * (WARMUP + 4)  # unmerged, then merged


def test_merged_flag_names_the_ratio():
    assert merged_flag(None) is None and merged_flag(1.0) is None and merged_flag(0.96) is None and merged_flag(1.0503) is None
    assert "1.13x" in merged_flag(1.13) and "left in the forward pass" in merged_flag(1.13)
    assert "0.93x" in merged_flag(0.93) and "faster than the base model" in merged_flag(0.93)


def _timed_runs(tmp_path, monkeypatch, *overrides: str) -> list[tuple[Timed, Timed, dict]]:
    """``(model, base, record)`` of each latency record the run made, its clock charging a batch's tokens."""
    seen = []

    def spy(model, base, batches):
        seen.append((model, base, latency_record(model, base, batches)))
        return seen[-1][2]

    clock = {"now": 0.0}
    monkeypatch.setattr(
        latency, "predict", lambda model, batches, scorer: clock.update(now=clock["now"] + batches[0]["input_ids"].numel())
    )
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    monkeypatch.setattr(zoo.runner.pipeline.steps, "latency_record", spy)
    run(
        app_config(
            "trainer=smoke",
            "task.n_train=16",
            "task.n_eval=16",
            "save_adapter=false",
            "latency_batches=3",
            f"predictions_cache={tmp_path / 'cache'}",
            *overrides,
        ),
        tmp_path,
    )
    return seen


def test_an_in_context_baseline_is_timed_against_the_base_model_on_the_bare_prompt(tmp_path, monkeypatch):
    ((model, base, record),) = _timed_runs(tmp_path, monkeypatch, "baseline=in_context", "task.demonstrations=1")
    assert model.model is base.model  # the base model both times: only the prompts differ
    assert base.batches[0]["input_ids"].shape[1] < model.batches[0]["input_ids"].shape[1]
    assert record["ratio"] > 1 and record["ratio"] == record["seconds_per_batch"] / record["base_seconds_per_batch"]


def test_the_zero_shot_baseline_is_timed_on_its_own_prompt(tmp_path, monkeypatch):
    ((model, base, record),) = _timed_runs(tmp_path, monkeypatch, "baseline=zero_shot")
    assert model.model is base.model and [b["input_ids"].shape for b in base.batches] == [
        b["input_ids"].shape for b in model.batches
    ]
    assert record["ratio"] == 1.0 and record["merged_ratio"] is None


def test_a_timed_run_needs_a_batch():
    with pytest.raises(ValueError, match="latency_batches must be at least 1"):
        plan_run(app_config("latency_batches=0"))
    assert plan_run(app_config("latency_batches=0", "latency=false")).latency is False


def test_zoo_report_marks_a_flagged_merged_ratio(tmp_path):
    timings = {"lora": (1.13, merged_flag(1.13)), "ia3": (1.01, None)}
    for method, (merged_ratio, flag) in timings.items():
        write_json(
            tmp_path / method / "metrics.json",
            record_dict(method=method, latency={"ratio": 1.2, "merged_ratio": merged_ratio, "flag": flag}),
        )
    rows = {row["method"]: row for row in summarise(load_runs(tmp_path))}
    assert (rows["lora"]["latency_flags"], rows["ia3"]["latency_flags"]) == (1, 0)
    table = markdown(list(rows.values()))
    assert f"| 1.20 (1.13{LATENCY_MARK}) |" in table and "| 1.20 (1.01) |" in table
