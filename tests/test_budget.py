"""Training budgets: equal steps (the default) or equal seconds (``budget=time``), and what a budget bought (tokens, examples)."""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_module
from transformers import get_scheduler

from zoo.runner.config import store_configs
from zoo.training.budget import Budget, Seen, schedule_factor
from zoo.training.loop import TrainerConfig, make_accelerator, train


class FakeClock:
    """A clock that advances ``tick`` seconds each time it is read."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant_with_warmup"])
def test_time_schedule_is_the_step_schedule_on_the_fraction_spent(schedule):
    steps, warmup = 100, 0.1
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = get_scheduler(schedule, optimizer, num_warmup_steps=math.ceil(warmup * steps), num_training_steps=steps)
    for step in range(steps + 1):
        assert schedule_factor(schedule, step / steps, warmup) == pytest.approx(reference.lr_lambdas[0](step), abs=1e-12)


def test_time_budget_stops_when_the_seconds_are_spent_and_sets_the_rate_by_them(monkeypatch):
    monkeypatch.setattr(Budget, "clock", FakeClock(1.0))  # each step reads the clock once: 1 s a step
    accelerator = make_accelerator(TrainerConfig(device="cpu"))
    budget = Budget("time", max_steps=1, max_seconds=10.0, accelerator=accelerator)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = budget.scheduler(optimizer, "linear", warmup_ratio=0.2)
    budget.begin()
    rates, step = [], 0
    while True:
        step += 1
        optimizer.step()
        last = budget.done(step)
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
        if last:
            break
    assert step == 10  # max_steps=1 is not a limit under a time budget
    assert rates == pytest.approx([schedule_factor("linear", s / 10, 0.2) for s in range(1, 11)])
    assert rates[0] == pytest.approx(0.5) and rates[-1] == 0.0


def test_paused_time_does_not_count(monkeypatch):
    monkeypatch.setattr(Budget, "clock", FakeClock(1.0))
    budget = Budget("time", max_steps=1, max_seconds=3.0, accelerator=make_accelerator(TrainerConfig(device="cpu")))
    budget.begin()
    with budget.paused():  # two clock reads, 1 s apart: that second is not training
        pass
    assert not budget.done(1) and budget.spent == pytest.approx(2.0)  # read 3 s after begin, 1 s of it paused
    assert budget.done(2)


def _model_and_batches():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    batches = [
        {
            "input_ids": torch.ones(3, 5, dtype=torch.long),
            "attention_mask": torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]]),
            "x": torch.randn(3, 4),
            "y": torch.tensor([0, 1, 0]),
        },
        {
            "input_ids": torch.ones(2, 5, dtype=torch.long),
            "attention_mask": torch.ones(2, 5, dtype=torch.long),
            "x": torch.randn(2, 4),
            "y": torch.tensor([1, 1]),
        },
    ]
    return model, batches


def _loss(model, batch):
    return torch.nn.functional.cross_entropy(model(batch["x"]), batch["y"])


def test_train_counts_the_tokens_and_examples_it_read():
    model, batches = _model_and_batches()
    cfg = TrainerConfig(max_steps=3, batch_size=3, checkpoint_every=0, progress=False, device="cpu")
    result = train(model, [{"params": list(model.parameters()), "lr": 0.1}], batches, _loss, cfg, make_accelerator(cfg))
    assert result.steps == 3
    assert (result.examples, result.tokens) == (3 + 2 + 3, 12 + 10 + 12)  # the batches cycle: the first one twice


def test_train_under_a_time_budget_takes_the_steps_that_fit(monkeypatch):
    monkeypatch.setattr(Budget, "clock", FakeClock(1.0))
    model, batches = _model_and_batches()
    cfg = TrainerConfig(budget="time", max_seconds=5.0, max_steps=1, checkpoint_every=0, progress=False, device="cpu")
    result = train(model, [{"params": list(model.parameters()), "lr": 0.1}], batches, _loss, cfg, make_accelerator(cfg))
    assert result.steps == 5 and result.examples == 3 + 2 + 3 + 2 + 3


def test_seen_counts_every_token_without_a_mask():
    seen = Seen()
    seen.add({"input_ids": torch.ones(2, 7, dtype=torch.long)})
    assert (seen.examples, seen.tokens) == (2, 14)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"budget": "money"}, r"budget 'money' is not one of \('steps', 'time'\)"),
        ({"budget": "time"}, "budget=time needs max_seconds, a finite number of seconds above 0, got None"),
        ({"budget": "time", "max_seconds": 0.0}, "got 0.0"),
        ({"max_seconds": 30.0}, "max_seconds=30.0 is used only with budget=time"),
    ],
)
def test_bad_budgets_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**settings)


def test_budget_time_is_a_config_group():
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        timed = compose(config_name="config", overrides=["budget=time", "trainer.max_seconds=12"])
        default = compose(config_name="config")
    assert (timed.trainer.budget, timed.trainer.max_seconds) == ("time", 12)
    assert (default.trainer.budget, default.trainer.max_seconds) == ("steps", None)
