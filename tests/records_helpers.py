"""A complete run record for tests that write metrics.json by hand (resume, report), with the fields a test cares about."""

from __future__ import annotations

import dataclasses

from zoo.io.records import RunRecord


def record_dict(**fields) -> dict:
    """A valid RunRecord (a classification run's) as the JSON ``zoo`` writes, with ``fields`` replaced."""
    base = RunRecord(
        method="lora",
        method_config={},
        baseline=None,
        formulation="prompt",
        model="tiny-llama",
        model_config={},
        task="synthetic_sentiment",
        task_config={},
        task_kind="classification",
        n_train=8,
        n_eval=8,
        seed=0,
        learning_rate=1e-3,
        head_learning_rate=None,
        trainable_params=10,
        total_params=110,
        base_params=100,
        trainable_percent=10.0,
        train_steps=1,
        train_seconds=1.0,
        peak_memory_bytes=None,
        final_loss=0.5,
        diverged=False,
        divergence=None,
        max_abs_weight=1.0,
        objective_metric="accuracy",
        scores={"accuracy": 0.5, "macro_f1": 0.5},
        example_scores={},
        eval_details={},
        baseline_scores={},
        latency=None,
        adapter_bytes=None,
        head_bytes=None,
        history=[],
        zoo_version="0",
        device="cpu",
        device_name=None,
        run_config={},
        label_names=["negative", "positive"],
        flips=None,
    )
    return dataclasses.asdict(dataclasses.replace(base, **fields))
