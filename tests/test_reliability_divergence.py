"""Divergence is loud, checkpoints are finite, bad training input is refused before anything runs."""

from __future__ import annotations

import csv
import json
import logging
import math

import pytest
import torch
from conftest import make_model
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from train_helpers import train_adapter

import zoo
from zoo.report.table import main as report_main
from zoo.runner.config import store_configs
from zoo.runner.run import run
from zoo.training.divergence import divergence, largest_weight
from zoo.training.loop import (
    NonFiniteGradientError,
    NonFiniteLossError,
    NonFiniteWeightError,
    TrainerConfig,
    fit,
    make_accelerator,
)


def _batches():
    g = torch.Generator().manual_seed(0)
    return [
        {"input_ids": torch.randint(4, 60, (4, 6), generator=g), "attention_mask": torch.ones(4, 6, dtype=torch.long)}
        for _ in range(3)
    ]


def _loss(m, batch):
    return m(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits.pow(2).mean()


def _cfg(tmp_path, *overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config",
            overrides=[
                "trainer=smoke",
                "latency_batches=1",
                "model.pretrain_steps=0",
                "task.n_train=32",
                "task.n_eval=16",
                "save_adapter=false",
                f"predictions_cache={tmp_path / 'cache'}",
                *overrides,
            ],
        )


def _nan_gradient_at_call(broken: int):
    """A wrapped LoRA model, its parameters, a loss whose ``broken``-th call has a finite value but a NaN gradient, and its call count."""
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    own = [p for p in model.parameters() if p.requires_grad]
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += torch.is_grad_enabled()  # training calls only, not a checkpoint's check of the weights
        loss = _loss(m, batch)
        if calls["n"] == broken:  # sqrt at 0: the value is 0, its gradient NaN
            loss = loss + torch.sqrt(sum(((p - p.detach()) ** 2).sum() for p in own))
        return loss

    return model, own, loss_fn, calls


def test_a_step_that_breaks_the_gradients_stops_training_before_its_checkpoint(tmp_path):
    """Step 4's loss is finite but its gradient is NaN: training stops before the optimiser steps, and the checkpoint
    of step 3 is the one the error names."""
    model, own, loss_fn, calls = _nan_gradient_at_call(4)
    cfg = TrainerConfig(max_steps=10, checkpoint_every=1, progress=False, device="cpu")
    with pytest.raises(
        NonFiniteGradientError,
        match=r"the gradient norm became nan at step 4 \(the loss .* was finite\).*"
        r"training stopped; the last good checkpoint \(step 3\) is in .*checkpoint; "
        "try a lower trainer.learning_rate",
    ):
        train_adapter(model, _batches(), loss_fn, cfg, tmp_path)
    assert math.isfinite(largest_weight(own))  # no step was taken with the NaN gradient
    reloaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "checkpoint")
    assert math.isfinite(largest_weight(reloaded.adapter_state_dict().values()))
    assert calls["n"] == 4  # it stopped at once, not at the next (NaN) loss


def test_gradients_broken_by_the_last_step_fail_the_run(tmp_path):
    model, _, loss_fn, _ = _nan_gradient_at_call(3)
    cfg = TrainerConfig(max_steps=3, checkpoint_every=0, progress=False, device="cpu")
    with pytest.raises(NonFiniteGradientError, match="at step 3 .* no checkpoint was saved yet"):
        train_adapter(model, _batches(), loss_fn, cfg, tmp_path)


def test_a_non_finite_loss_still_stops_with_the_last_good_checkpoint(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += torch.is_grad_enabled()  # training calls only, not a checkpoint's check of the weights
        return _loss(m, batch) * (float("inf") if calls["n"] == 3 else 1)

    cfg = TrainerConfig(max_steps=10, checkpoint_every=1, progress=False, device="cpu")
    with pytest.raises(
        NonFiniteLossError,
        match=r"loss became inf at step 3; training stopped; the last good checkpoint \(step 2\) is in .*checkpoint",
    ):
        train_adapter(model, _batches(), loss_fn, cfg, tmp_path)


def test_a_fit_is_checked_and_recorded_too(tmp_path, monkeypatch):
    """A gradient-free method saves no checkpoint, but its weights are checked and their largest recorded."""
    model = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=[5, 6])
    cfg = TrainerConfig(progress=False, device="cpu")

    def filling_fit(batches, value):
        list(batches)
        with torch.no_grad():
            next(iter(model.adapter_state_dict().values())).fill_(value)
        return {}

    monkeypatch.setattr(model, "fit", lambda batches, reduce=None: filling_fit(batches, 2.5))
    assert fit(model, _batches(), make_accelerator(cfg)).max_abs_weight == 2.5
    monkeypatch.setattr(model, "fit", lambda batches, reduce=None: filling_fit(batches, float("inf")))
    with pytest.raises(NonFiniteWeightError, match="closed_form_head's fit left a weight inf; nothing was saved"):
        fit(model, _batches(), make_accelerator(cfg))


def test_a_huge_learning_rate_is_flagged_by_the_weights(tmp_path, caplog):
    cfg = TrainerConfig(max_steps=10, learning_rate=1e6, checkpoint_every=0, progress=False, device="cpu")
    with caplog.at_level(logging.WARNING, logger="zoo.training.loop"):
        result = train_adapter(zoo.wrap(make_model("tiny-llama"), "lora"), _batches(), _loss, cfg, tmp_path)
    assert result.diverged and result.max_abs_weight > 1e6
    assert f"largest |weight| {result.max_abs_weight:.4g} > 1000 x max(1, " in result.divergence
    assert "training diverged (largest |weight|" in caplog.text and "was 1000000.0" in caplog.text


def test_a_rising_loss_is_flagged(tmp_path):
    """The loss is 10x higher in the second half of the run: the last tenth's mean is far above the first's."""
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        return _loss(m, batch) * (10 if calls["n"] > 10 else 1)

    cfg = TrainerConfig(max_steps=20, learning_rate=1e-6, checkpoint_every=0, progress=False, device="cpu")
    result = train_adapter(zoo.wrap(make_model("tiny-llama"), "lora"), _batches(), loss_fn, cfg, tmp_path)
    assert result.divergence.startswith("mean loss of the last 2 steps") and "> 3 x that of the first 2" in result.divergence


def test_an_ordinary_run_is_not_flagged(tmp_path):
    cfg = TrainerConfig(max_steps=20, checkpoint_every=0, progress=False, device="cpu")
    result = train_adapter(zoo.wrap(make_model("tiny-llama"), "lora"), _batches(), _loss, cfg, tmp_path)
    assert not result.diverged and result.divergence is None
    assert 0 < result.max_abs_weight < 10


def test_the_divergence_rule():
    assert divergence([0.7] * 90 + [2.2] * 10, 1.0, 1.0).startswith(
        "mean loss of the last 10 steps 2.2 > 3 x that of the first 10 (0.7)"
    )
    assert divergence([0.7] * 90 + [2.0] * 10, 1.0, 1.0) is None  # 2.0 < 3 x 0.7
    assert divergence([1.0] * 9 + [3.5], 1.0, 1.0).startswith("mean loss of the last 1 steps 3.5")  # 10 steps: k = 1
    assert divergence([1.0] * 8 + [3.5], 1.0, 1.0) is None  # 9 steps: too few to tell a trend from one bad batch
    assert divergence([1.0] * 1000, 1.0, 1.0) is None and "last 50 steps" in divergence([1.0] * 900 + [5.0] * 100, 1.0, 1.0)
    assert divergence([], 0.5, 1000.0) is None  # limit 1000 x max(1, 0.5)
    assert divergence([], 0.5, 1000.5) == "largest |weight| 1000 > 1000 x max(1, 0.5) at the start"
    assert divergence([], 4.0, 3999.0) is None and divergence([], 4.0, 4001.0) is not None
    assert largest_weight([torch.tensor([1.0, -3.0]), torch.zeros(0)]) == 3.0
    assert math.isnan(largest_weight([torch.tensor([1.0, -3.0]), torch.tensor([float("nan")])]))  # one check covers NaN too


def test_a_diverged_run_is_recorded_and_marked_in_the_report(tmp_path, capsys):
    """trainer.learning_rate=1e6 on the tiny model ends without NaN: metrics.json and zoo-report say it diverged."""
    run(_cfg(tmp_path, "trainer.learning_rate=1e6"), tmp_path / "runs" / "bad")
    good = run(_cfg(tmp_path), tmp_path / "runs" / "good")
    on_disk = json.loads((tmp_path / "runs" / "bad" / "metrics.json").read_text())
    assert on_disk["diverged"] is True and on_disk["max_abs_weight"] > 1e5 and "largest |weight|" in on_disk["divergence"]
    assert (good.diverged, good.divergence) == (False, None) and good.max_abs_weight < 10
    assert report_main([str(tmp_path / "runs")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| lora")]
    assert len(rows) == 1 and rows[0].startswith("| lora [diverged 1/2] |")  # one row: the two runs differ in no override
    (row,) = csv.DictReader((tmp_path / "runs" / "report.csv").open())
    assert row["diverged"] == "1"


@pytest.mark.parametrize(
    "field,value,match",
    [
        (
            "learning_rate",
            0.0,
            r"learning_rate must be a finite number above 0 \(or null: the method's default; auto: .*\), got 0.0",
        ),
        ("learning_rate", -1e-3, "learning_rate must be a finite number above 0 .*, got -0.001"),
        ("learning_rate", math.nan, "learning_rate must be .*, got nan"),
        ("learning_rate", math.inf, "learning_rate must be .*, got inf"),
        ("warmup_ratio", -1.0, r"warmup_ratio must be in \[0, 1\] \(a fraction of the budget\), got -1.0"),
        ("warmup_ratio", 1.5, r"warmup_ratio must be in \[0, 1\] .*, got 1.5"),
        ("weight_decay", -0.1, "weight_decay must be a finite number >= 0, got -0.1"),
        ("max_grad_norm", -1.0, "max_grad_norm must be a finite number >= 0, got -1.0"),
        ("checkpoint_every", -1, r"checkpoint_every must be >= 0 \(0: never\), got -1"),
    ],
)
def test_trainer_config_refuses_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig(**{field: value})


def test_edges_of_the_valid_ranges_are_accepted():
    TrainerConfig(learning_rate=1e-12, warmup_ratio=0.0)
    TrainerConfig(warmup_ratio=1.0, max_grad_norm=0.0, weight_decay=0.0, eval_every=0, checkpoint_every=0)


@pytest.mark.parametrize(
    "override,field",
    [
        ("trainer.learning_rate=0", "learning_rate"),
        ("trainer.warmup_ratio=-1", "warmup_ratio"),
        ("trainer.warmup_ratio=1.01", "warmup_ratio"),
        ("task.head_learning_rate=nan", "head_learning_rate"),
        ("task.head_learning_rate=-1", "head_learning_rate"),
    ],
)
def test_bad_values_through_hydra_name_the_field(tmp_path, override, field):
    cfg = _cfg(tmp_path, override)
    group = override.split(".")[0]
    with pytest.raises(ValueError, match=f"^{field} must be .*, got {override.split('=')[1]}"):
        OmegaConf.to_object(cfg[group])


@pytest.mark.parametrize(
    "override,match",
    [
        ("trainer.learning_rate=-1e-3", "learning_rate must be a finite number above 0"),
        ("+method_learning_rates={lora:0}", r"method_learning_rates must be finite numbers above 0, got \{'lora': 0.0\}"),
        ("+method_learning_rates={ia3:-1}", r"method_learning_rates must be finite numbers above 0, got \{'ia3': -1.0\}"),
    ],
)
def test_a_run_refuses_bad_rates_before_it_starts(tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        run(_cfg(tmp_path, override), tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # nothing was loaded, scored or written


# numerics are loud: a method's own fields, its gradient norm, and which checkpoint counts as good


@pytest.mark.parametrize(
    "override,field", [("method.alpha=nan", "alpha"), ("method.alpha=inf", "alpha"), ("method.dropout=nan", "dropout")]
)
def test_a_method_field_that_is_not_a_finite_number_is_refused_naming_it(tmp_path, override, field):
    with pytest.raises(
        ValueError, match=rf"^{field} must be a finite float, got (nan|inf) \(NaN and infinity are not valid numbers\)"
    ):
        run(_cfg(tmp_path, override), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_size_field_too_large_for_memory_is_refused_before_anything_is_allocated():
    """reduction_factor=1e-9 asks for a bottleneck of 6.4e10 features: refused naming the field, not by the allocator."""
    with pytest.raises(
        ValueError,
        match=r"method 'adapter' with reduction_factor=1e-09 would add [\d,]+ parameters .* more than "
        r"the cpu memory .*: one of these size fields is out of range",
    ):
        zoo.wrap(make_model("tiny-llama"), "adapter", reduction_factor=1e-9)
    with pytest.raises(ValueError, match=r"method 'lora' with r=1000000000000 would add"):
        zoo.wrap(make_model("tiny-llama"), "lora", r=10**12)


def test_an_infinite_gradient_norm_stops_the_run_naming_it(tmp_path):
    """method.alpha=1e30: the gradient norm overflows to inf at the first step. Clipping it would scale every step by 0
    and report the zero-shot model as trained; the run stops instead, and nothing is recorded as a result."""
    with pytest.raises(
        NonFiniteGradientError,
        match=r"the gradient norm became inf at step 1 \(the loss [\d.]+ was finite\): a "
        r"scale in the method's config \(such as method.alpha\)",
    ):
        run(_cfg(tmp_path, "method.alpha=1e30"), tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_the_last_good_checkpoint_is_one_the_run_does_not_count_as_diverged(tmp_path, caplog):
    """trainer.learning_rate=1e6: from step 2 the weights are far past the run's own divergence limit (finite, yet useless),
    and step 8's loss is infinite. The checkpoint kept is step 1's, not step 7's."""
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    start = largest_weight(model.adapter_state_dict().values())
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += torch.is_grad_enabled()  # training calls only, not a checkpoint's check of the weights
        return _loss(m, batch) * (float("inf") if calls["n"] == 8 else 1)

    cfg = TrainerConfig(max_steps=10, learning_rate=1e6, checkpoint_every=1, progress=False, device="cpu")
    with (
        caplog.at_level(logging.WARNING, logger="zoo.training.loop"),
        pytest.raises(
            NonFiniteLossError, match=r"loss became inf at step 8; training stopped; the last good checkpoint \(step 1\) is in"
        ),
    ):
        train_adapter(model, _batches(), loss_fn, cfg, tmp_path)
    assert "step 2: no checkpoint of these weights (largest |weight|" in caplog.text
    kept = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "checkpoint")
    assert largest_weight(kept.adapter_state_dict().values()) <= 1000 * max(1.0, start)
