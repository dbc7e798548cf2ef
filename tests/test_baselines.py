"""Baselines: zero-shot, in-context, linear probe and full fine-tuning, and their rows in zoo-report."""

from __future__ import annotations

import pytest
import torch
from conftest import make_model
from hydra import compose, initialize_config_module
from hydra.errors import MissingConfigException
from safetensors.torch import load_file

import zoo
import zoo.runner.pipeline.steps as steps
from zoo.report.table import main as report_main
from zoo.runner.config import store_configs
from zoo.runner.run import run
from zoo.tasks.config import TASKS
from zoo.tasks.data import Splits
from zoo.tasks.synthetic import synthetic_sentiment


@pytest.fixture(autouse=True)
def in_memory_task(monkeypatch):
    data = synthetic_sentiment(48, 24, seed=5)
    monkeypatch.setitem(
        TASKS, "in_memory", lambda cfg: Splits({"train": data.train, "test": data.eval}, "memory", data.label_names)
    )


def _cfg(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose(
            "config", overrides=["trainer=smoke", "latency_batches=1", "task.name=in_memory", "task.n_eval=null", *overrides]
        )


def test_zero_shot_run_is_the_score_every_run_records(tmp_path):
    method_run = run(_cfg(), tmp_path / "lora")
    baseline = run(_cfg("baseline=zero_shot"), tmp_path / "zero_shot")
    assert baseline.method == "zero_shot" and baseline.method_config is None
    assert (
        baseline.scores["accuracy"]
        == method_run.baseline_scores["zero_shot"]["accuracy"]
        == baseline.baseline_scores["zero_shot"]["accuracy"]
    )
    assert (baseline.trainable_params, baseline.train_steps, baseline.flips["flipped"]) == (0, 0, 0)
    assert not (tmp_path / "zero_shot" / "adapter").exists()


def test_in_context_needs_demonstrations(tmp_path):
    with pytest.raises(ValueError, match="baseline=in_context needs demonstrations in the context: set task.demonstrations=1"):
        run(_cfg("baseline=in_context"), tmp_path)
    record = run(_cfg("baseline=in_context", "task.demonstrations=1"), tmp_path)
    assert record.scores["accuracy"] == record.baseline_scores["in_context"]["accuracy"] and record.formulation == "prompt"


def test_unknown_baseline_lists_the_valid_ones():
    with pytest.raises(MissingConfigException, match="Could not find 'baseline/few_shot'") as err:
        _cfg("baseline=few_shot")
    assert all(f"\t{name}\n" in str(err.value) for name in ("in_context", "linear_probe", "zero_shot"))


def test_linear_probe_trains_the_head_only(tmp_path, monkeypatch):
    seen = {}
    train = steps.train

    def spy(classifier, *args, **kwargs):  # what the trainer got: the base model (untouched so far) and the head
        seen["base"] = {n: p.detach().clone() for n, p in classifier.model.named_parameters()}
        seen["model"] = classifier.model
        return train(classifier, *args, **kwargs)

    monkeypatch.setattr(steps, "train", spy)
    record = run(_cfg("baseline=linear_probe"), tmp_path)
    assert (record.method, record.formulation) == ("linear_probe", "head")
    assert record.trainable_params == 2 * 64 + 2 and record.learning_rate is None and record.head_learning_rate == 1e-2
    after = dict(seen["model"].named_parameters())
    assert all(torch.equal(after[n], p) for n, p in seen["base"].items())  # the base did not move
    assert load_file(str(tmp_path / "head.safetensors"))["linear.weight"].abs().sum() > 0  # the head did
    assert not (tmp_path / "adapter").exists()


def test_full_finetune_saves_every_base_weight(tmp_path):
    base = make_model("tiny-gpt2")
    n_base = sum(p.numel() for p in base.parameters())  # tied input/output embeddings counted once
    model = zoo.wrap(base, "full_finetune")
    assert zoo.count_parameters(model) == (n_base, 2 * n_base)
    zoo.save_adapter(model, tmp_path / "adapter")
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert sum(t.numel() for t in saved.values()) == n_base


def test_full_finetune_moves_every_weight(batch):
    model = zoo.wrap(make_model("tiny-llama"), "full_finetune")
    model.train()
    model(**batch).logits.pow(2).mean().backward()
    deltas = [p for p in model.parameters() if p.requires_grad]
    assert len(deltas) == len(list(make_model("tiny-llama").parameters()))  # one ΔW per base tensor
    # every ΔW gets a gradient, as every weight does in full fine-tuning (the last norm and head included)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in deltas)


def test_report_shows_baselines_as_rows(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    run(_cfg("task.demonstrations=1"), sweep / "lora")
    run(_cfg("task.demonstrations=1", "method=full_finetune"), sweep / "full")
    run(_cfg("baseline=linear_probe"), sweep / "probe")
    assert report_main([str(sweep)]) == 0
    methods = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert sorted(methods) == ["full_finetune", "linear_probe", "lora"]

    assert report_main([str(sweep), "--baseline-rows"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    rows = {line.split("|")[1].strip(): line for line in lines}
    assert sorted(rows) == ["full_finetune", "in_context", "linear_probe", "lora", "zero_shot"]
    assert len(lines) == 5  # the base model's scores, recorded by three runs, are one row each
    assert "| 0 | 0.000 |" in rows["zero_shot"] and "demonstrations" not in rows["zero_shot"]
