"""Where a loaded model lives: moved to the trainer's device, unless transformers placed it as it loaded.

A model loaded with ``model.device_map`` (one device, or accelerate's dispatch across GPUs and the
CPU) or with quantized weights (bitsandbytes quantizes them as they reach the GPU) is where
from_pretrained put it: ``.to(device)`` would undo a dispatch across devices, or overrule the
device the user named, so the run leaves such a model where it is and checks that it can run there.
"""

from __future__ import annotations

import torch
from torch import nn


def to_device(model: nn.Module, device: torch.device, placed: bool) -> nn.Module:
    """``model`` moved to ``device``; where it was ``placed`` as it loaded (:attr:`ModelConfig.placed_on_load`), as it is.

    Raises:
        ValueError: a placed model lies whole on another device than ``device`` (``model.device_map=cpu`` while the
            trainer runs on CUDA): its inputs would go to one device and its weights stay on the other.
    """
    if not placed:
        return model.to(device)
    devices = {p.device for p in model.parameters()}
    if len(devices) == 1 and not _same(where := devices.pop(), device):  # several: a dispatch, whose hooks move the inputs
        raise ValueError(
            f"model.device_map (or model.quantization) put the model on {where}, but the run trains on {device} "
            f"(trainer.device); set trainer.device or model.device_map so that they agree"
        )
    return model


def _same(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one, an index left out meaning the current one."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
