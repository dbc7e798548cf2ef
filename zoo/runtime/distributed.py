"""Work split among the processes of a distributed launch (``accelerate launch --multi_gpu --num_processes N -m zoo.runner.run``).

Every batch the runner builds is a global batch: ``trainer.batch_size`` examples, as in a
single process. Under N processes each takes a contiguous slice of its rows and weights its
loss so that the gradients accelerate averages across processes are the global batch's mean
gradient, whatever the slices' sizes: a run on N processes follows the single-process run's
trajectory to float tolerance. Evaluation batches and a gradient-free fit's batches are dealt
round-robin, and what each process computed is gathered (predictions) or summed (a fit's
statistics). With one process every function here returns its input unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TypeVar

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

Batch = dict[str, torch.Tensor]
T = TypeVar("T")


def batch_slice(batch: Batch, accelerator: Accelerator) -> tuple[Batch, float]:
    """This process's rows of a global ``batch`` and the weight of their mean loss.

    The weight is ``rows here × processes / rows in all``, so the processes' weighted losses
    average to the global batch's mean loss. A process left without rows (a last batch
    smaller than the number of processes) runs the first row with weight 0: it must still
    take part in the gradient exchange.
    """
    world, rank = accelerator.num_processes, accelerator.process_index
    if world == 1:
        return batch, 1.0
    rows = len(batch["input_ids"])
    bounds = torch.linspace(0, rows, world + 1).round().long().tolist()
    start, stop = bounds[rank], bounds[rank + 1]
    if start == stop:
        return {k: v[:1] for k, v in batch.items()}, 0.0
    return {k: v[start:stop] for k, v in batch.items()}, (stop - start) * world / rows


def dealt(items: Sequence[T], accelerator: Accelerator) -> list[T]:
    """This process's share of ``items``, dealt round-robin (process r takes items r, r+N, ...)."""
    return list(items[accelerator.process_index :: accelerator.num_processes])


def gathered(mine: list, accelerator: Accelerator) -> list:
    """Every process's ``mine`` lists joined, on every process (picklable items)."""
    return mine if accelerator.num_processes == 1 else gather_object(mine)


def summed(tensor: torch.Tensor, accelerator: Accelerator) -> torch.Tensor:
    """``tensor`` summed over the processes, on every process."""
    return tensor if accelerator.num_processes == 1 else accelerator.reduce(tensor.contiguous(), reduction="sum")


def launch_rank() -> int:
    """This process's rank in a distributed launch (torchrun's ``RANK``, which accelerate's launcher sets); 0 alone.

    Read from the environment because Hydra needs it before any accelerator exists: the
    processes other than the main one write no Hydra folder (``hydra.output_subdir``) and no log file, and print no summary.
    """
    return int(os.environ.get("RANK", "0"))


def main_process_only(value: str) -> str | None:
    """``value`` in the main process, None in the others (the ``zoo.main_process_only`` resolver)."""
    return value if launch_rank() == 0 else None


def quiet_other_processes() -> None:
    """In a process other than the main one: no log file (the main one writes Hydra's ``<job>.log``), warnings only on the console."""
    if launch_rank() == 0:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
        else:
            handler.setLevel(max(handler.level, logging.WARNING))
