"""The tiny models and the batch every contract check runs on, built without a download.

Each family of :data:`zoo.models.tiny.TINY_FAMILIES` is built once per process and handed out as a
deep copy, since checks change models in place (wrapping, merging, optimiser steps). They are
handed out on the CPU, or on the device ``ZOO_TEST_DEVICE`` names (``cuda``: the contract checks on
a GPU, as ``benchmarks/gpu_check.sh`` runs them); the models are built, and the batch drawn, on the
CPU first, so the numbers are the same on every device.
"""

from __future__ import annotations

import copy
import functools
import os

import torch
from torch import nn

from zoo.models.tiny import tiny_model

WORDS = [f"w{i}" for i in range(60)] + ["good", "bad", "it", "was", "."]
"""The word tokenizer's vocabulary (:func:`zoo.models.tokenizer.word_tokenizer`); four special ids come first."""
VOCAB_SIZE = len(WORDS) + 4
DEVICES = ("cpu", "cuda")


def checks_device() -> torch.device:
    """The device of :func:`make_model`'s models and :func:`tiny_batch`'s tensors: ``ZOO_TEST_DEVICE``, else the CPU.

    Raises:
        ValueError: an unknown device. RuntimeError: ``cuda`` where none is visible.
    """
    name = os.environ.get("ZOO_TEST_DEVICE", "cpu")
    if name not in DEVICES:
        raise ValueError(f"ZOO_TEST_DEVICE={name!r} is not one of {DEVICES}")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("ZOO_TEST_DEVICE=cuda but no CUDA device is visible; unset it to test on the CPU")
    return torch.device(name)


@functools.cache
def built(kind: str, seed: int = 0) -> nn.Module:
    """The tiny model ``kind``, seeded, shared: read it, never change it (:func:`make_model` gives a copy to change)."""
    return tiny_model(kind, vocab_size=VOCAB_SIZE, seed=seed)


def make_model(kind: str, seed: int = 0) -> nn.Module:
    """A fresh tiny model ``kind`` (one of ``TINY_FAMILIES``), the same for the same ``seed``, on :func:`checks_device`."""
    return copy.deepcopy(built(kind, seed)).to(checks_device())


def tiny_batch() -> dict[str, torch.Tensor]:
    """Three rows of seven random token ids, the first left-padded by two."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB_SIZE, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[0, :2] = 0
    mask[0, :2] = 0
    return {"input_ids": ids.to(checks_device()), "attention_mask": mask.to(checks_device())}


def labelled(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` with class labels, for a gradient-free method's ``fit``."""
    return {**batch, "labels": torch.tensor([0, 1, 0], device=batch["input_ids"].device)}
