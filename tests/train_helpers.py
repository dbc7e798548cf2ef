"""Training a wrapped model in tests through zoo.training.loop's method-agnostic loop, as the runner does."""

from __future__ import annotations

from pathlib import Path

import zoo
from zoo.training.loop import TrainerConfig, TrainResult, make_accelerator, train


def train_adapter(model: zoo.ZooModel, batches: list[dict], loss_fn, cfg: TrainerConfig, out_dir: Path) -> TrainResult:
    """Train ``model``'s adapter at the trainer's rate (else its method's), checkpointing into ``out_dir/checkpoint``."""
    lr = cfg.learning_rate if cfg.learning_rate is not None else model.spec.learning_rate
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    return train(
        model,
        groups,
        batches,
        loss_fn,
        cfg,
        make_accelerator(cfg),
        checkpoint=lambda: zoo.save_adapter(model, out_dir / "checkpoint"),
    )
