"""What :func:`zoo.load_adapter` checks before it allocates anything for an adapter.

A saved config is rebuilt through its method's config class, after each value is checked
against the field's annotation (JSON has no tuples, ints and bools are easily confused, and
``NaN`` parses as a float). The tensors a config implies are worked out by wrapping a copy of
the base model whose tensors live on the meta device, so an absurd config (``r=10**9``) is
refused by comparing shapes, not by running out of memory.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import types
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from zoo.inject import adapter_parameters, freeze
from zoo.method import MethodConfig, MethodSpec

log = logging.getLogger(__name__)
Shapes = dict[str, tuple[int, ...]]


def fits(value: Any, annotation: Any) -> bool:
    """Whether ``value``, as parsed from JSON, is of type ``annotation``.

    Knows the forms method configs use: ``int``, ``float`` (finite; an int is a float),
    ``bool``, ``str``, ``None``, ``list[X]`` and unions of them. Any other annotation is
    left to the config's own ``__post_init__``.
    """
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(fits(v, item) for v in value)
    if annotation in (None, type(None)):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True


def _describe(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def _non_finite(value: Any) -> bool:
    return (isinstance(value, float) and not math.isfinite(value)) or (isinstance(value, list) and any(map(_non_finite, value)))


def method_config(spec: MethodSpec, values: Any, source: Path) -> MethodConfig:
    """``spec``'s config built from the ``values`` saved in ``source``.

    Raises:
        ValueError: naming ``source``, the field and its value: an unknown field, a value of
            the wrong type or not finite, or one the config's ``__post_init__`` refuses.
    """
    if not isinstance(values, dict):
        raise ValueError(f"{source}: 'config' must be a JSON object of {spec.name!r}'s fields, got {values!r}")
    fields = [f.name for f in dataclasses.fields(spec.config)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: config field(s) {unknown} are not fields of method {spec.name!r}; valid fields: {fields}")
    try:
        hints = typing.get_type_hints(spec.config)
    except NameError:  # a plugin annotating with a name it imports only for type checkers: left to __post_init__
        hints = {}
    for name, value in values.items():
        hint = hints.get(name, Any)
        if not fits(value, hint):
            note = " (NaN and infinity are not valid numbers)" if _non_finite(value) else ""
            raise ValueError(f"{source}: config field {name!r} of method {spec.name!r} is {value!r}; expected {_describe(hint)}{note}")
    try:
        return spec.config(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: the config of method {spec.name!r} is invalid: {err}") from err


def file_shapes(weights: Path) -> Shapes:
    """Every tensor's shape in a safetensors file, read from its header alone."""
    with safe_open(str(weights), framework="pt") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}


def _meta_copy(model: nn.Module) -> nn.Module:
    """``model``'s modules with every parameter and buffer replaced by a meta tensor: no data is copied."""
    memo: dict[int, Any] = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad) for p in model.parameters()}
    memo.update({id(b): torch.empty_like(b, device="meta") for b in model.buffers()})
    return copy.deepcopy(model, memo)


def implied_shapes(model: nn.Module, spec: MethodSpec, cfg: MethodConfig) -> Shapes | None:
    """The adapter tensors wrapping ``model`` with ``cfg`` would create, found without allocating them.

    Returns None when the method's wrap function cannot run on the meta device (it reads the
    base model's values); the shapes are then only checked after wrapping.
    """
    try:
        skeleton = _meta_copy(model)
        freeze(skeleton)
        with torch.device("meta"):  # tensors the wrap function creates without a device land on meta too
            wrapped = spec.wrap_fn(skeleton, cfg)
    except Exception as err:  # a real problem of the config (a target that matches nothing) recurs in the real wrap
        log.warning("method %r cannot be wrapped on the meta device (%s: %s); its adapter's shapes are checked after wrapping",
                    spec.name, type(err).__name__, err)
        return None
    return {name: tuple(p.shape) for name, p in adapter_parameters(wrapped).items()}


def check_shapes(found: Shapes, expected: Shapes, weights: Path, method: str) -> None:
    """Refuse a weights file whose tensors are not exactly the ones the method's config implies."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{weights} does not fit method {method!r} with its saved config: missing {missing}, unexpected {unexpected}")
    for name, shape in expected.items():
        if found[name] != shape:
            raise ValueError(f"{name} has shape {found[name]} in {weights}, but the saved config of method {method!r} "
                             f"implies {shape}; the config and the weights do not belong together")
