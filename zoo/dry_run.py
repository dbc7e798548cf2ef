"""Wrapping a model on the meta device: the adapter a config implies, found without allocating it.

:func:`zoo.wrap` refuses a config whose adapter could not fit in memory (``reduction_factor=1e-9``
asks for terabytes) before it allocates anything, naming the config's size fields; ``zoo.load_adapter``
compares the shapes a saved config implies with the file's before it wraps.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from zoo.inject import adapter_parameters, freeze
from zoo.method import MethodConfig, MethodSpec

log = logging.getLogger(__name__)
Shapes = dict[str, tuple[int, ...]]


def _meta_copy(model: nn.Module) -> nn.Module:
    """``model``'s modules with every parameter and buffer replaced by a meta tensor: no data is copied."""
    memo: dict[int, Any] = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad) for p in model.parameters()}
    memo.update({id(b): torch.empty_like(b, device="meta") for b in model.buffers()})
    return copy.deepcopy(model, memo)


def dry_wrap(model: nn.Module, spec: MethodSpec, cfg: MethodConfig) -> dict[str, torch.Tensor]:
    """The adapter parameters (meta tensors) wrapping ``model`` with ``cfg`` creates; raises what the wrap function raises."""
    skeleton = _meta_copy(model)
    freeze(skeleton)
    with torch.device("meta"):  # tensors the wrap function creates without a device land on meta too
        return adapter_parameters(spec.wrap_fn(skeleton, cfg))


def implied_shapes(model: nn.Module, spec: MethodSpec, cfg: MethodConfig) -> Shapes | None:
    """The adapter tensors wrapping ``model`` with ``cfg`` would create, found without allocating them.

    Returns None when the method's wrap function cannot run on the meta device (it reads the
    base model's values); the shapes are then only checked after wrapping.
    """
    try:
        params = dry_wrap(model, spec, cfg)
    except Exception as err:  # a real problem of the config (a target that matches nothing) recurs in the real wrap
        log.warning(
            "method %r cannot be wrapped on the meta device (%s: %s); its adapter's shapes are checked after wrapping",
            spec.name,
            type(err).__name__,
            err,
        )
        return None
    return {name: tuple(p.shape) for name, p in params.items()}


def memory_bytes(device: torch.device) -> int | None:
    """The memory of ``device`` (the machine's RAM for the CPU); None where it is not known."""
    if device.type == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return None


def size_fields(cfg: MethodConfig) -> dict[str, Any]:
    """The config's numeric fields that differ from their defaults (all numeric fields if none do)."""
    numeric = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if isinstance(getattr(cfg, f.name), int | float) and not isinstance(getattr(cfg, f.name), bool)
    }
    defaults = {f.name: f.default for f in dataclasses.fields(cfg) if f.default is not dataclasses.MISSING}
    changed = {name: value for name, value in numeric.items() if defaults.get(name, dataclasses.MISSING) != value}
    return changed or numeric


@contextmanager
def naming_size_fields(spec: MethodSpec, cfg: MethodConfig) -> Iterator[None]:
    """Turn the allocator's refusal inside a wrap function into a ValueError naming the config's size fields.

    For the methods :func:`check_fits_in_memory` cannot check ahead (their wrap function does not run on the meta device).
    """
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        # the allocator's "cannot allocate", or torch's "Storage size calculation overflowed" for more than 2**63 bytes
        if not isinstance(err, MemoryError) and not any(word in str(err) for word in ("allocate", "overflowed")):
            raise
        fields = ", ".join(f"{name}={value!r}" for name, value in size_fields(cfg).items())
        raise ValueError(
            f"method {spec.name!r} with {fields} asks for more memory than there is ({err}): one of these "
            "size fields is out of range"
        ) from err


def check_fits_in_memory(model: nn.Module, spec: MethodSpec, cfg: MethodConfig) -> None:
    """Refuse ``cfg`` when the adapter it implies on ``model`` is larger than the memory of the model's device.

    A method whose wrap function cannot run on the meta device is not checked here.

    Raises:
        ValueError: naming the method, the adapter's size and the config's size fields.
    """
    device = next(model.parameters()).device
    limit = memory_bytes(device)
    if limit is None:
        return
    try:
        params = dry_wrap(model, spec, cfg)
    except Exception:  # noqa: BLE001 - the real wrap raises it again, or runs where the meta device cannot
        return
    count = sum(p.numel() for p in params.values())
    size = sum(p.numel() * p.element_size() for p in params.values())
    if size > limit:
        fields = ", ".join(f"{name}={value!r}" for name, value in size_fields(cfg).items())
        raise ValueError(
            f"method {spec.name!r} with {fields} would add {count:,} parameters ({size / 2**30:,.1f} GiB), more than "
            f"the {device.type} memory ({limit / 2**30:,.1f} GiB): one of these size fields is out of range"
        )
