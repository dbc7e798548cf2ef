"""What :func:`zoo.load_adapter` checks before it allocates anything for an adapter.

A saved config is rebuilt through its method's config class, after each value is checked
against the field's annotation (JSON has no tuples, ints and bools are easily confused, and
``NaN`` parses as a float). The tensors a config implies are worked out by wrapping a copy of
the base model whose tensors live on the meta device (:mod:`zoo.dry_run`), so an absurd config (``r=10**9``) is
refused by comparing shapes, not by running out of memory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from safetensors import safe_open

from zoo.method import MethodConfig, MethodSpec
from zoo.runtime.typed_fields import describe, field_hints, fits, non_finite

Shapes = dict[str, tuple[int, ...]]


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
    hints = field_hints(spec.config)
    for name, value in values.items():
        hint = hints.get(name, Any)
        if not fits(value, hint):
            note = " (NaN and infinity are not valid numbers)" if non_finite(value) else ""
            raise ValueError(
                f"{source}: config field {name!r} of method {spec.name!r} is {value!r}; expected {describe(hint)}{note}"
            )
    try:
        return spec.config(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: the config of method {spec.name!r} is invalid: {err}") from err


def file_shapes(weights: Path) -> Shapes:
    """Every tensor's shape in a safetensors file, read from its header alone."""
    with safe_open(str(weights), framework="pt") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}


def check_shapes(found: Shapes, expected: Shapes, weights: Path, method: str) -> None:
    """Refuse a weights file whose tensors are not exactly the ones the method's config implies."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not fit method {method!r} with its saved config: missing {missing}, unexpected {unexpected}"
        )
    for name, shape in expected.items():
        if found[name] != shape:
            raise ValueError(
                f"{name} has shape {found[name]} in {weights}, but the saved config of method {method!r} "
                f"implies {shape}; the config and the weights do not belong together"
            )
