"""One method-agnostic training loop (accelerate), and the gradient-free ``fit`` path.

The loop never asks which method it trains: the spec's ``gradient_free`` flag picks
``fit`` over gradient steps, and its ``learning_rate`` fills in an unset trainer rate.
``accelerate launch zoo ...`` runs the same code on several processes. A NaN or infinite
loss or weight stops training, and every checkpoint is checked finite before it is written,
so the one an error points to is good; a run whose loss or weights ran away
(zoo.divergence) ends but is recorded as diverged, with a warning.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from zoo.adapter_io import save_adapter
from zoo.divergence import divergence, largest_weight
from zoo.memory import PeakMemory
from zoo.wrapped import ZooModel

log = logging.getLogger(__name__)
SCHEDULES = ("linear", "cosine", "constant_with_warmup")
Batch = dict[str, torch.Tensor]


@dataclass
class TrainerConfig:
    max_steps: int = 500
    """Optimiser steps (each over ``gradient_accumulation_steps`` batches)."""
    batch_size: int = 16
    learning_rate: float | None = None
    """None: the method's own default (its spec's ``learning_rate``); else a finite number above 0."""
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    """The fraction of ``max_steps`` over which the rate warms up from 0, in [0, 1]."""
    schedule: str = "linear"
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    """Clip the gradients' norm to this (0: no clipping)."""
    eval_every: int = 0
    """Evaluate every N steps (0: only at the end)."""
    checkpoint_every: int = 100
    """Save the adapter to ``checkpoint/`` every N steps (0: never); a non-finite loss keeps the last good one."""
    device: str = "auto"
    """auto (GPU when present), cpu or cuda."""
    mixed_precision: str = "no"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {self.device!r} is not one of auto, cpu, cuda")
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate is not None and not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be a finite number above 0 (or null: the method's default), got {self.learning_rate}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1] (a fraction of max_steps), got {self.warmup_ratio}")
        for name in ("weight_decay", "max_grad_norm"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: never), got {getattr(self, name)}")


class NonFiniteError(RuntimeError):
    """Training stopped on a NaN or infinite value."""


class NonFiniteLossError(NonFiniteError):
    """Training hit a NaN or infinite loss and stopped."""


class NonFiniteWeightError(NonFiniteError):
    """A trainable weight became NaN or infinite (the loss may still have been finite) and training stopped."""


@dataclass
class TrainResult:
    steps: int
    train_seconds: float
    peak_memory_bytes: int
    final_loss: float | None
    history: list[dict]
    max_abs_weight: float | None = None
    """The largest |trainable weight| at the end."""
    divergence: str | None = None
    """Why the run counts as diverged (zoo.divergence); None: it did not."""

    @property
    def diverged(self) -> bool:
        return self.divergence is not None


def make_accelerator(cfg: TrainerConfig) -> Accelerator:
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA device is visible; use trainer.device=auto or cpu")
    return Accelerator(cpu=cpu, gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=cfg.mixed_precision)


def _cycle(batches: list[Batch]):
    while True:
        yield from batches


def train(
    model: ZooModel,
    batches: list[Batch],
    loss_fn: Callable[[ZooModel, Batch], torch.Tensor],
    cfg: TrainerConfig,
    accelerator: Accelerator,
    out_dir: Path,
    evaluate: Callable[[ZooModel], dict] | None = None,
    head: nn.Module | None = None,
    head_learning_rate: float | None = None,
) -> TrainResult:
    """Train ``model``'s adapter, or ``fit`` it when its method is gradient-free.

    Args:
        head: a task's classification head, trained beside the method (it is not part of
            it: checkpoints hold the adapter only). With a head, ``model`` may also be a
            frozen base model, and then only the head trains (a linear probe).
        head_learning_rate: the head's learning rate; None: the method's.
    """
    spec = getattr(model, "spec", None)  # None: a frozen base model under a head
    if spec is not None and spec.gradient_free:
        return _fit(model, batches, accelerator)
    if head is not None and accelerator.num_processes > 1:
        raise NotImplementedError("a classification head trains in one process only (its gradients are not synchronised); run without accelerate launch")
    lr = cfg.learning_rate if cfg.learning_rate is not None else (spec.learning_rate if spec is not None else head_learning_rate)
    own = [p for p in model.parameters() if p.requires_grad]
    head_params = list(head.parameters()) if head is not None else []
    groups = [{"params": own}] if own else []
    if head_params:
        groups.append({"params": head_params, "lr": head_learning_rate if head_learning_rate is not None else lr})
    params = own + head_params
    if not params or lr is None:
        raise ValueError("nothing to train or no learning rate: give a wrapped model, or a head and its learning rate")
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
    scheduler = get_scheduler(cfg.schedule, optimizer, num_warmup_steps=math.ceil(cfg.warmup_ratio * cfg.max_steps), num_training_steps=cfg.max_steps)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    history, last_good, loss_value, losses = [], None, None, []
    start_weight = largest_weight(params)
    bar = tqdm(total=cfg.max_steps, disable=not (cfg.progress and accelerator.is_local_main_process), desc=model_name(model))
    start = time.perf_counter()
    with PeakMemory(accelerator.device) as memory:
        step, micro = 0, _cycle(list(loader))
        model.train()
        while step < cfg.max_steps:
            for _ in range(cfg.gradient_accumulation_steps):
                batch = next(micro)
                with accelerator.accumulate(model):
                    loss = loss_fn(model, batch)
                    if not torch.isfinite(loss):
                        raise NonFiniteLossError(f"loss became {loss.item()} at step {step + 1}; training stopped; {_kept(last_good, out_dir, lr)}")
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
            step += 1
            loss_value = loss.item()
            losses.append(loss_value)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if spec is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                _check_finite(params, step, last_good, out_dir, lr)  # on every process: they stop together
                if accelerator.is_main_process:
                    save_adapter(accelerator.unwrap_model(model), out_dir / "checkpoint")
                last_good = step
            if evaluate and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.max_steps:
                model.eval()
                history.append({"step": step, "loss": loss_value, **evaluate(accelerator.unwrap_model(model))})
                model.train()
    bar.close()
    model.eval()
    end_weight = _check_finite(params, step, last_good, out_dir, lr)
    why = divergence(losses, start_weight, end_weight)
    if why:
        log.warning("training diverged (%s); the run is recorded with diverged: true. Try a lower trainer.learning_rate (was %s)", why, lr)
    return TrainResult(step, time.perf_counter() - start, memory.peak_bytes, loss_value, history, end_weight, why)


def _kept(last_good: int | None, out_dir: Path, lr: float) -> str:
    """Where the last good checkpoint is, and what to try: the end of a non-finite error's message."""
    kept = f"the last good adapter (step {last_good}) is in {out_dir / 'checkpoint'}" if last_good else "no checkpoint was saved yet"
    return f"{kept}. Try a lower trainer.learning_rate (was {lr})"


def _check_finite(params: list[torch.Tensor], step: int, last_good: int | None, out_dir: Path, lr: float) -> float:
    """The largest |weight| of ``params``; raises NonFiniteWeightError where one is NaN or infinite."""
    largest = largest_weight(params)
    if not math.isfinite(largest):
        raise NonFiniteWeightError(f"a trainable weight became {largest} by step {step} (the loss was still finite); "
                                   f"training stopped; {_kept(last_good, out_dir, lr)}")
    return largest


def _fit(model: ZooModel, batches: list[Batch], accelerator: Accelerator) -> TrainResult:
    model = model.to(accelerator.device)
    model.eval()
    start = time.perf_counter()
    with PeakMemory(accelerator.device) as memory:
        summary = model.fit({k: v.to(accelerator.device) for k, v in b.items()} for b in batches)
    largest = largest_weight(model.adapter_state_dict().values())
    if not math.isfinite(largest):
        raise NonFiniteWeightError(f"{model.method}'s fit left a weight {largest}; nothing was saved")
    return TrainResult(0, time.perf_counter() - start, memory.peak_bytes, None, [{"fit": summary}], largest)


def model_name(model) -> str:
    return getattr(model, "method", None) or getattr(getattr(model, "module", None), "method", "train")

