"""One training loop (accelerate) that knows no method, head or baseline, and the gradient-free ``fit``.

:func:`train` steps parameter groups by a loss; the runner (zoo.runner.pipeline) decides what they
are, their learning rates (zoo.training.learning_rate) and what a checkpoint saves, and calls
:func:`fit` instead for a method whose spec is ``gradient_free``.
``accelerate launch --multi_gpu --num_processes N -m zoo.runner.run ...`` runs the same code on N
processes (GPUs, or CPU processes over gloo): every batch is a global batch that the
processes split (zoo.runtime.distributed), so the run follows the single-process one. A NaN or infinite
loss, gradient norm or weight stops training, and a checkpoint is written only of good weights (finite,
not diverged by the run's own rule so far, a finite loss on the step's batch), so the one an error points to is good; a run whose loss or weights ran away
(zoo.training.divergence) ends but is recorded as diverged, with a warning.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.tracking import get_available_trackers
from accelerate.utils import DataLoaderConfiguration, LoggerType, ProjectConfiguration
from torch import nn
from tqdm.auto import tqdm

from zoo.runtime.distributed import batch_slice, dealt, summed
from zoo.runtime.memory import PeakMemory
from zoo.runtime.typed_fields import check_fields
from zoo.training.budget import BUDGETS, Budget, Seen
from zoo.training.divergence import divergence, largest_weight
from zoo.training.learning_rate import check_rate, check_scale
from zoo.training.optimizer import MakeOptimizer, build_optimizer
from zoo.wrapped import ZooModel

log = logging.getLogger(__name__)
SCHEDULES = ("linear", "cosine", "constant_with_warmup")
TRACKERS = tuple(str(t) for t in LoggerType if str(t) != "all")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
Batch = dict[str, torch.Tensor]


@dataclass
class TrainerConfig:
    max_steps: int = 500
    """Optimiser steps (each over ``gradient_accumulation_steps`` batches); not used under ``budget=time``."""
    budget: str = "steps"
    """steps: train for ``max_steps``; time: for ``max_seconds`` of training time, as many steps as fit (zoo.training.budget)."""
    max_seconds: float | None = None
    """``budget=time`` only: seconds of training (evaluations and checkpoint writes not counted)."""
    batch_size: int = 16
    learning_rate: Any = None
    """None: the method's own default (its spec's ``learning_rate``); a finite number above 0; or ``auto``: a search on the
    validation split chooses it first (zoo.runner.rate_search; typed Any as OmegaConf 2.3 has no unions of number and string)."""
    learning_rate_scale: float = 1.0
    """Multiplies the method's resolved rate (zoo.training.learning_rate): one sweep of it searches every method around its own rate."""
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    """The fraction of the budget (``max_steps``, or ``max_seconds``) over which the rate warms up from 0, in [0, 1]."""
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
    """no, bf16 (accelerate's autocast, on CPU too) or fp16 (autocast with loss scaling, CUDA only)."""
    progress: bool = True
    log_with: str | None = None
    """An experiment tracker, through accelerate (its package installed): tensorboard, wandb, mlflow, aim, comet_ml,
    clearml, dvclive, ...; None: none. Logs go to the run folder's ``logs/`` (wandb offline: ``WANDB_MODE=offline``)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {self.device!r} is not one of auto, cpu, cuda")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision {self.mixed_precision!r} is not one of {MIXED_PRECISIONS}")
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_rate(self.learning_rate)
        check_scale(self.learning_rate_scale)
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1] (a fraction of the budget), got {self.warmup_ratio}")
        for name in ("weight_decay", "max_grad_norm"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: never), got {getattr(self, name)}")
        if self.budget not in BUDGETS:
            raise ValueError(f"budget {self.budget!r} is not one of {BUDGETS}")
        if self.budget == "time" and (self.max_seconds is None or not 0 < self.max_seconds < math.inf):
            raise ValueError(f"budget=time needs max_seconds, a finite number of seconds above 0, got {self.max_seconds}")
        if self.budget == "steps" and self.max_seconds is not None:
            raise ValueError(
                f"max_seconds={self.max_seconds} is used only with budget=time (this run's budget is steps: max_steps="
                f"{self.max_steps}); set trainer.budget=time or trainer.max_seconds=null"
            )
        if self.log_with is not None and self.log_with not in TRACKERS:
            raise ValueError(f"log_with {self.log_with!r} is not one of accelerate's trackers {TRACKERS} (or null: none)")


class NonFiniteError(RuntimeError):
    """Training stopped on a NaN or infinite value."""


class NonFiniteLossError(NonFiniteError):
    """Training hit a NaN or infinite loss and stopped."""


class NonFiniteGradientError(NonFiniteError):
    """The gradients' norm became NaN or infinite (the loss was still finite) and training stopped."""


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
    """Why the run counts as diverged (zoo.training.divergence); None: it did not."""
    tokens: int = 0
    """Tokens (not padding) of the batches trained or fitted on, over all processes."""
    examples: int = 0
    """Examples trained or fitted on, counted once per pass (an example seen twice counts twice)."""
    optimizer: dict | None = None
    """The optimiser trained with, its groups and its state's memory (zoo.training.optimizer.RunOptimizer.record); None: a fit."""

    @property
    def diverged(self) -> bool:
        return self.divergence is not None


def make_accelerator(cfg: TrainerConfig, project_dir: Path | None = None) -> Accelerator:
    """The run's accelerator; ``project_dir`` (the run folder) holds a tracker's ``logs/``."""
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA device is visible; use trainer.device=auto or cpu")
    if cpu and cfg.mixed_precision == "fp16":  # accelerate accepts it, then trains in float32 on CPU without a word
        raise ValueError(
            "trainer.mixed_precision='fp16' needs a CUDA device (this run trains on the CPU, where accelerate does "
            "not autocast to float16); use trainer.mixed_precision=bf16 or no on CPU"
        )
    if cfg.log_with is not None and cfg.log_with not in {str(t) for t in get_available_trackers()}:
        raise ImportError(
            f"trainer.log_with={cfg.log_with} needs its package, which is not installed: "
            f"pip install {cfg.log_with.replace('_', '-')} (or trainer.log_with=null)"
        )
    if cfg.log_with is not None and project_dir is None:
        raise ValueError(f"trainer.log_with={cfg.log_with} needs a folder for its logs (make_accelerator's project_dir)")
    tracking = (
        {}
        if cfg.log_with is None
        else {
            "log_with": cfg.log_with,
            "project_config": ProjectConfiguration(project_dir=str(project_dir), logging_dir=str(project_dir / "logs")),
        }
    )
    # split_batches: each global batch is split among the processes (zoo.runtime.distributed), so the
    # scheduler steps once per optimiser step, not once per process
    return Accelerator(
        cpu=cpu,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=cfg.mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        **tracking,
    )


def _cycle(batches: list[Batch]):
    while True:
        yield from batches


def train(
    model: nn.Module,
    groups: list[dict],
    batches: list[Batch],
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    cfg: TrainerConfig,
    accelerator: Accelerator,
    *,
    checkpoint: Callable[[], Path] | None = None,
    evaluate: Callable[[], dict] | None = None,
    desc: str = "train",
    make_optimizer: MakeOptimizer = torch.optim.AdamW,
) -> TrainResult:
    """Train the parameters of ``groups`` (torch optimiser parameter groups, each with its ``lr``) by ``loss_fn(model, batch)``.

    ``model`` is what the loss calls (prepared by accelerate, so under several processes its
    gradients are synchronised: everything that trains must be inside it). The loop knows no
    method, head or baseline: ``checkpoint()`` (which returns where it wrote) is called every
    ``checkpoint_every`` steps once the weights are checked finite, ``evaluate()`` every ``eval_every`` steps.
    ``make_optimizer(groups, weight_decay=...)`` builds the optimiser: the method's own (zoo.training.optimizer.optimizer_of).
    """
    run_optimizer = build_optimizer(groups, make_optimizer, cfg.weight_decay)
    optimizer, params, lr = run_optimizer.optimizer, [p for group in groups for p in group["params"]], groups[0]["lr"]
    budget = Budget(cfg.budget, cfg.max_steps, cfg.max_seconds, accelerator)
    scheduler = budget.scheduler(optimizer, cfg.schedule, cfg.warmup_ratio)
    prepared, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    history, last_good, losses, seen = [], "no checkpoint was saved yet", [], Seen()
    start_weight = largest_weight(params)
    bar = tqdm(total=budget.last_step, disable=not (cfg.progress and accelerator.is_local_main_process), desc=desc)
    _start_tracking(accelerator, cfg, desc)
    start = time.perf_counter()
    with PeakMemory(accelerator.device) as memory:
        micro = seen.counting(_cycle(batches))
        prepared.train()
        budget.begin()
        for step in itertools.count(1):
            loss, rows = _step(prepared, micro, loss_fn, accelerator, optimizer, params, cfg, step, f"{last_good}; {_advice(lr)}")
            last = budget.done(step)  # before the scheduler steps: a time budget sets the next rate by the time spent
            scheduler.step()
            losses.append(loss)
            accelerator.log({"train/loss": loss, "train/learning_rate": scheduler.get_last_lr()[0]}, step=step)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if checkpoint is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                with budget.paused():
                    good = _Good(params, losses, start_weight, partial(_batch_loss, prepared, loss_fn, rows, accelerator))
                    last_good = _checkpointed(checkpoint, good, step, last_good, _advice(lr), accelerator)
            if evaluate and cfg.eval_every and step % cfg.eval_every == 0 and not last:
                with budget.paused():
                    history.append(_evaluated(prepared, evaluate, accelerator, step, loss))
            if last:
                break
    bar.close()
    if accelerator.log_with:
        accelerator.end_training()
    prepared.eval()  # and with it the model inside
    end_weight = _check_finite(params, step, f"{last_good}; {_advice(lr)}")
    why, elapsed = _diverged(losses, start_weight, end_weight, lr), time.perf_counter() - start
    counted = {"tokens": seen.tokens, "examples": seen.examples, "optimizer": run_optimizer.record()}
    return TrainResult(step, elapsed, memory.peak_bytes, losses[-1], history, end_weight, why, **counted)


@dataclass
class _Good:
    """What tells whether the weights at a checkpoint are worth keeping."""

    params: list[torch.Tensor]
    losses: list[float]
    start_weight: float
    batch_loss: Callable[[], float]
    """The loss of the current weights on the step's training batch."""


def _checkpointed(
    checkpoint: Callable[[], Path], good: _Good, step: int, last_good: str, advice: str, accelerator: Accelerator
) -> str:
    """Save a checkpoint of good weights; what an error then says about the last good one.

    Good: finite, not diverged by the run's own rule (zoo.training.divergence) so far, and with a
    finite loss on the step's training batch. Weights that are finite but not good keep the last good
    checkpoint where it is, with a warning.
    """
    largest = _check_finite(good.params, step, f"{last_good}; {advice}")  # on every process: they stop together
    why = divergence(good.losses, good.start_weight, largest)
    if why is None and not math.isfinite(loss := good.batch_loss()):
        why = f"the loss of the weights on the step's training batch is {loss}"
    if why is not None:
        log.warning("step %d: no checkpoint of these weights (%s); %s; %s", step, why, last_good, advice)
        return last_good
    where = checkpoint() if accelerator.is_main_process else "the main process's checkpoint folder"
    return f"the last good checkpoint (step {step}) is in {where}"


@torch.no_grad()
def _batch_loss(
    model: nn.Module, loss_fn: Callable[[nn.Module, Batch], torch.Tensor], rows: Batch, accelerator: Accelerator
) -> float:
    """``loss_fn`` of the current weights on ``rows`` (mean over the processes), in eval mode: no dropout, no random numbers drawn."""
    model.eval()
    try:
        return accelerator.reduce(loss_fn(model, rows).detach(), reduction="mean").item()
    finally:
        model.train()


def _diverged(losses: list[float], start_weight: float, end_weight: float, lr: float) -> str | None:
    """Why the run counts as diverged (zoo.training.divergence), warned about; None: it did not."""
    why = divergence(losses, start_weight, end_weight)
    if why:
        log.warning(
            "training diverged (%s); the run is recorded with diverged: true. Try a lower trainer.learning_rate (was %s)", why, lr
        )
    return why


def _start_tracking(accelerator: Accelerator, cfg: TrainerConfig, desc: str) -> None:
    """Start the accelerator's trackers (trainer.log_with), if any, with the trainer's settings as the run's config."""
    if accelerator.log_with:
        accelerator.init_trackers(
            "zoo", config={"run": desc, **{k: v for k, v in dataclasses.asdict(cfg).items() if v is not None}}
        )


def _evaluated(model: nn.Module, evaluate: Callable[[], dict], accelerator: Accelerator, step: int, loss: float) -> dict:
    """A history entry: ``evaluate()`` at ``step`` in eval mode, its numbers also sent to the trackers."""
    model.eval()
    entry = {"step": step, "loss": loss, **evaluate()}
    accelerator.log({f"eval/{k}": v for k, v in entry.items() if isinstance(v, float)}, step=step)
    model.train()
    return entry


def _step(model, micro, loss_fn, accelerator, optimizer, params, cfg: TrainerConfig, step: int, kept: str) -> tuple[float, Batch]:
    """One optimiser step over ``gradient_accumulation_steps`` global batches; the last one's mean loss (over all processes)
    and this process's rows of it."""
    for _ in range(cfg.gradient_accumulation_steps):
        rows, weight = batch_slice(next(micro), accelerator)
        with accelerator.accumulate(model):
            loss = loss_fn(model, rows) * weight
            mean = accelerator.reduce(loss.detach(), reduction="mean")  # the same on every process: they stop together
            if not torch.isfinite(mean):
                raise NonFiniteLossError(f"loss became {mean.item()} at step {step}; training stopped; {kept}")
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                _clip(accelerator, params, cfg.max_grad_norm, step, mean.item(), kept)
            optimizer.step()
            optimizer.zero_grad()
    return mean.item(), rows


def _clip(accelerator: Accelerator, params: list[torch.Tensor], max_norm: float, step: int, loss: float, kept: str) -> None:
    """Clip the gradients' norm to ``max_norm`` (0: measure it only); a NaN or infinite norm stops training.

    Clipping an infinite norm would scale every gradient by 0 (or NaN) and leave the weights where they
    are, step after step, without a word. Under fp16 loss scaling an infinite norm is the scaler's
    business: it skips the step and lowers the scale.
    """
    norm = accelerator.clip_grad_norm_(params, max_norm if max_norm > 0 else math.inf)
    if norm is not None and accelerator.scaler is None and not torch.isfinite(torch.as_tensor(norm)):
        raise NonFiniteGradientError(
            f"the gradient norm became {float(norm)} at step {step} (the loss {loss:.4g} was finite): "
            f"a scale in the method's config (such as method.alpha) or the learning rate is too large; "
            f"training stopped; {kept}"
        )


def _advice(lr: float) -> str:
    """What to try: the end of a non-finite error's message."""
    return f"try a lower trainer.learning_rate (was {lr})"


def _check_finite(params: list[torch.Tensor], step: int, kept: str) -> float:
    """The largest |weight| of ``params``; raises NonFiniteWeightError where one is NaN or infinite."""
    largest = largest_weight(params)
    if not math.isfinite(largest):
        raise NonFiniteWeightError(
            f"a trainable weight became {largest} by step {step} (the loss was still finite); training stopped; {kept}"
        )
    return largest


def fit(model: ZooModel, batches: list[Batch], accelerator: Accelerator) -> TrainResult:
    """Solve a gradient-free method (its spec's ``gradient_free`` flag) in closed form over ``batches``.

    Under several processes each reads its share of the batches and the fit sums its
    statistics across them (``reduce``), so every process solves the same system.
    """
    model = model.to(accelerator.device)
    model.eval()
    start = time.perf_counter()
    mine = ({k: v.to(accelerator.device) for k, v in b.items()} for b in dealt(batches, accelerator))
    with PeakMemory(accelerator.device) as memory:
        summary = model.fit(mine, reduce=lambda t: summed(t, accelerator))
    largest = largest_weight(model.adapter_state_dict().values())
    if not math.isfinite(largest):
        raise NonFiniteWeightError(f"{model.method}'s fit left a weight {largest}; nothing was saved")
    seen = Seen()
    for batch in batches:
        seen.add(batch)
    return TrainResult(
        0,
        time.perf_counter() - start,
        memory.peak_bytes,
        None,
        [{"fit": summary}],
        largest,
        tokens=seen.tokens,
        examples=seen.examples,
    )
