"""task.sample_seed: another training sample (and its demonstrations) on the same evaluation set; unset, the data of before."""

from __future__ import annotations

import csv

import pytest

from zoo.models.language import NEUTRAL, POSITIVE, VOCABULARY
from zoo.models.tokenizer import word_tokenizer
from zoo.runner.config import seed_folder
from zoo.tasks.config import TaskConfig, build_task, load_splits
from zoo.tasks.formulation import formulation_for
from zoo.tasks.splits import demonstrations, shots_per_class, stratified_sample
from zoo.tasks.synthetic import synthetic_sentiment


@pytest.fixture
def csv_task(tmp_path):
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        # distinct texts in the tiny tokenizer's words, so that other demonstrations are other tokens
        writer.writerows(
            [f"{NEUTRAL[i % 26]} {NEUTRAL[i // 26]} {POSITIVE[i % 10]}", "good" if i % 3 else "bad"] for i in range(300)
        )
    return {"name": "reviews", "path": str(path), "label_names": ["bad", "good"], "shots_per_class": 4, "n_eval": 20, "seed": 3}


def test_without_a_sample_seed_the_data_is_the_data_seeds_as_before(csv_task):
    """The draw every run made before sample_seed existed: training sample and evaluation set both from the data seed."""
    cfg = TaskConfig(**csv_task)
    splits = load_splits(cfg)
    data = build_task(cfg)
    assert cfg.sample_seed is None
    assert data.train == shots_per_class(splits.split("train"), 4, 3)
    assert data.eval == stratified_sample(splits.split("test"), 20, 3)
    assert build_task(TaskConfig(**csv_task, sample_seed=3)) == data  # sample seed = data seed: the same data


def test_a_sample_seed_draws_another_training_sample_on_the_same_evaluation_set(csv_task):
    base, other = build_task(TaskConfig(**csv_task)), build_task(TaskConfig(**csv_task, sample_seed=1))
    assert other.eval == base.eval
    assert other.train != base.train and len(other.train) == len(base.train) == 8
    assert other.train == shots_per_class(load_splits(TaskConfig(**csv_task)).split("train"), 4, 1)
    assert build_task(TaskConfig(**{**csv_task, "seed": 1})).eval != base.eval  # the data seed still moves the evaluation set


def test_demonstrations_come_from_the_sample_seeds_training_sample(csv_task):
    """The in-context baseline's demonstrations vary with the sample seed (drawn from that sample, with that seed)."""
    tokenizer = word_tokenizer(VOCABULARY)

    def shown(sample_seed):
        cfg = TaskConfig(**csv_task, demonstrations=1, sample_seed=sample_seed)
        data = build_task(cfg)
        return formulation_for(cfg, tokenizer, "causal_lm", train=data.train), demonstrations(data.train, 1, cfg.training_seed)

    (plain, expected_plain), (other, expected_other) = shown(None), shown(2)
    assert expected_plain == demonstrations(build_task(TaskConfig(**csv_task)).train, 1, 3)  # as before: the data seed
    assert expected_plain != expected_other
    query = "the film is great"
    assert plain.encode(query) != other.encode(query)  # other demonstrations before the same query
    for form, expected in ((plain, expected_plain), (other, expected_other)):
        prompt = tokenizer.decode(form.encode(query))
        assert all(e.text in prompt for e in expected), (prompt, expected)


def test_synthetic_task_generates_the_sample_seeds_training_split_and_the_data_seeds_evaluation_split():
    plain = build_task(TaskConfig(n_train=32, n_eval=16, seed=0))
    assert plain == synthetic_sentiment(32, 16, 0)  # unchanged without a sample seed
    assert build_task(TaskConfig(n_train=32, n_eval=16, seed=0, sample_seed=0)) == plain
    other = build_task(TaskConfig(n_train=32, n_eval=16, seed=0, sample_seed=4))
    assert other.eval == plain.eval and other.train == synthetic_sentiment(32, 16, 4).train != plain.train


def test_sample_seeds_have_run_folders_of_their_own_and_runs_without_keep_theirs():
    assert seed_folder(2, None) == seed_folder(2, "null") == "seed2"
    assert seed_folder(0, 1) == "seed0-sample1" != seed_folder(1, 0)
